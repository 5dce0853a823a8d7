"""Delivers the emulator's SageMaker events (built by `events.py`) to where the local stack
listens: the gateway's event receiver over HTTP, or an EventBridge bus (`events:BUSNAME`), in
order, on a background thread, with retries."""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import urllib.request

import boto3

log = logging.getLogger("maas_local.sagemaker.events")


class EventPublisher:
    """Sends the emulator's events to the `--event-sink` target, in order, on a background
    thread; retries with backoff, and logs what it had to drop."""

    # Eight attempts back off over about 50 s: long enough for a gateway that is starting (or
    # restarting) to take the events, as EventBridge keeps retrying a target that is down.
    def __init__(self, target: str | None, *, attempts: int = 8, backoff_s: float = 0.2) -> None:
        self.target = target
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.delivered = 0
        self.failed = 0
        self._queue: queue.Queue[dict | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="event-sink", daemon=True)
        if target:
            self._thread.start()

    def emit(self, event: dict) -> None:
        log.info("event %s %s", event["detail-type"], event["resources"][0])
        if self.target:
            self._queue.put(event)

    def close(self, timeout: float = 5.0) -> None:
        """Flushes what is queued (bounded by timeout), then stops the thread."""
        if self.target and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            for attempt in range(self.attempts):
                try:
                    self._send(event)
                    self.delivered += 1
                    break
                except Exception as exc:  # any failure of the sink is retried, then logged
                    log.warning("event delivery attempt %d failed: %s", attempt + 1, exc)
                    time.sleep(self.backoff_s * 2**attempt)
            else:
                self.failed += 1
                log.error("dropped event %s after %d attempts", event["id"], self.attempts)

    def _send(self, event: dict) -> None:
        assert self.target
        if self.target.startswith("events:"):
            _put_on_bus(self.target.removeprefix("events:"), event)
            return
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in validate_target
            self.target,
            data=json.dumps(event).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            if response.status >= 300:
                raise RuntimeError(f"sink answered {response.status}")


def _put_on_bus(bus: str, event: dict) -> None:
    client = boto3.client("events", region_name=event["region"])
    result = client.put_events(
        Entries=[
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
                "Resources": event["resources"],
                "EventBusName": bus,
            }
        ]
    )
    if result.get("FailedEntryCount"):
        raise RuntimeError(f"put_events failed: {result['Entries']}")


# Where the sink is when `--event-sink` is not given. The local stack's sink URL carries a
# secret, so the stack passes it here: a process's environment is readable by its owner alone,
# where its command line is visible to every user (`ps`).
SINK_ENV = "MAAS_EVENT_SINK"


def validate_target(target: str | None) -> str | None:
    target = target or os.environ.get(SINK_ENV) or None
    if not target:
        return None
    if target.startswith(("http://", "https://")) or target.startswith("events:"):
        return target
    raise ValueError(f"--event-sink must be an http(s) URL or events:BUSNAME, not {target!r}")
