"""The gateway's event receiver loses no event it acknowledged: each is on disk before its 202,
a failed handling is retried as Lambda retries an asynchronous invocation (twice, after one
and two minutes: https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html),
an event that fails every attempt goes to the dead-letter folder, and a receiver started after a
crash handles what the last one left, in order."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from maas_local.event_queue import RETRY_DELAYS_S, EventReceiver

TOKEN = "t" * 32
FAST = (0.01, 0.02)


def _post(receiver: EventReceiver, *events: dict) -> int:
    body = json.dumps(list(events)).encode()
    return receiver.accept(receiver.path, "", "application/json", "127.0.0.1", body).status


def _settled(receiver: EventReceiver, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while receiver.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert receiver.pending == 0


def test_lambdas_retry_waits_are_one_and_two_minutes():
    assert RETRY_DELAYS_S == (60.0, 120.0)


def test_an_event_is_on_disk_before_it_is_acknowledged_and_gone_once_handled(tmp_path: Path):
    gate, handled = threading.Event(), []

    def deliver(event: dict) -> None:
        gate.wait(10)
        handled.append(event["id"])

    receiver = EventReceiver(deliver, TOKEN, spool=tmp_path, retry_delays_s=FAST)
    assert _post(receiver, {"id": "a"}) == 202

    (kept,) = tmp_path.glob("*.json")
    assert json.loads(kept.read_text()) == {"id": "a"}
    gate.set()
    _settled(receiver)
    assert handled == ["a"] and not list(tmp_path.glob("*.json"))
    receiver.stop()


def test_a_failed_handling_is_tried_twice_more(tmp_path: Path):
    attempts: list[str] = []

    def flaky(event: dict) -> None:
        attempts.append(event["id"])
        if len(attempts) < 3:
            raise ConnectionError("moto is restarting")

    receiver = EventReceiver(flaky, TOKEN, spool=tmp_path, retry_delays_s=FAST)
    _post(receiver, {"id": "a"})
    _settled(receiver)

    assert attempts == ["a", "a", "a"]
    assert (receiver.delivered, receiver.failed) == (1, 0)
    assert not list(tmp_path.rglob("*.json"))
    receiver.stop()


def test_an_event_that_fails_three_times_goes_to_the_dead_letter_folder(tmp_path: Path):
    attempts: list[str] = []

    def broken(event: dict) -> None:
        attempts.append(event["id"])
        raise RuntimeError("handler bug")

    receiver = EventReceiver(broken, TOKEN, spool=tmp_path, retry_delays_s=FAST)
    _post(receiver, {"id": "a"})
    _settled(receiver)

    assert len(attempts) == 3 and receiver.failed == 1
    (dead,) = (tmp_path / "dead-letter").glob("*.json")
    assert json.loads(dead.read_text()) == {"id": "a"}
    assert not list(tmp_path.glob("*.json"))
    receiver.stop()


def test_a_receiver_started_after_a_crash_handles_what_was_left_in_order(tmp_path: Path):
    never = threading.Event()
    first = EventReceiver(lambda event: never.wait(), TOKEN, spool=tmp_path)
    _post(first, {"id": "a"}, {"id": "b"})
    _post(first, {"id": "c"})
    # The process dies here: nothing was handled, all three were acknowledged.
    assert len(list(tmp_path.glob("*.json"))) == 3

    handled: list[str] = []
    second = EventReceiver(lambda event: handled.append(event["id"]), TOKEN, spool=tmp_path)
    _settled(second)

    assert handled == ["a", "b", "c"]
    assert not list(tmp_path.glob("*.json"))
    second.stop()
    never.set()
