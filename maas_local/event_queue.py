"""How SageMaker's state changes reach the events function locally, as an EventBridge rule's
Lambda target receives them in the cloud. Two ways, by backend:

- `EventReceiver`: the embedded default. The emulator POSTs each event document to the
  gateway's internal path `/_local/events/{token}` (loopback only, with a secret made at
  start-up), and the receiver hands them on, one at a time in arrival order, off the HTTP thread.
  As Lambda's asynchronous invocation does, an event is on disk (its spool folder) before the
  202 that acknowledges it, a failed handling is retried twice, after one and two minutes
  (scaled by the stack's time scale), and an event that fails all three goes to the dead-letter
  folder: https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html.
  A gateway restarted after a crash handles what its spool still holds, in order.
- `QueueDrainer`: with the LocalStack backend, the emulator puts each event on EventBridge, a rule
  on `aws.sagemaker` sends it to a queue, and the drainer hands it on. A message is deleted only
  after the handler took it, so an event whose handling failed comes back after the visibility
  timeout: nothing is lost.
"""

from __future__ import annotations

import hmac
import json
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from maas_contract.errors import error_body
from maas_contract.events import HANDLED_DETAIL_TYPES, SOURCE
from maas_local.aws_resources import local_client
from maas_local.config import write_durably
from maas_local.proxy_event import HttpResponse

log = logging.getLogger("maas_local.event_queue")
EVENTS_PATH = "/_local/events/"  # then the token
LOOPBACK = {"127.0.0.1", "::1"}
TOKEN_HEADER = "X-Maas-Event-Token"  # noqa: S105 - a header's name, not a secret

QUEUE_NAME = "maas-local-sagemaker-events"
RULE_NAME = "maas-local-sagemaker-state-changes"
QUEUE_ENV = "MAAS_EVENT_QUEUE_URL"
VISIBILITY_TIMEOUT_S = 30


def create_route(endpoint_url: str) -> str:
    """The queue, the rule that feeds it, and the queue policy that lets the rule send."""
    sqs = local_client("sqs", endpoint_url)
    events = local_client("events", endpoint_url)
    queue_url = sqs.create_queue(
        QueueName=QUEUE_NAME,
        Attributes={"VisibilityTimeout": str(VISIBILITY_TIMEOUT_S), "SqsManagedSseEnabled": "true"},
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    pattern = {"source": [SOURCE], "detail-type": list(HANDLED_DETAIL_TYPES)}
    rule_arn = events.put_rule(Name=RULE_NAME, EventPattern=json.dumps(pattern))["RuleArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    events.put_targets(Rule=RULE_NAME, Targets=[{"Id": "state-changes", "Arn": queue_arn}])
    return queue_url


class QueueDrainer:
    """Long-polls the queue on one thread and delivers each event, in order, to `deliver`."""

    def __init__(self, queue_url: str, deliver: Callable[[dict[str, Any]], None]) -> None:
        self.queue_url = queue_url
        self._deliver = deliver
        self._sqs = boto3.client("sqs", config=Config(retries={"mode": "standard"}))
        self._stopping = threading.Event()
        self.delivered = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="event-queue", daemon=True)

    def start(self) -> QueueDrainer:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                ).get("Messages", [])
            except Exception:  # the queue being briefly unreachable must not end the drainer
                log.exception("receiving from %s failed", self.queue_url)
                self._stopping.wait(1.0)
                continue
            for message in messages:
                self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        try:
            event = json.loads(message["Body"])
            self._deliver(event)
        except Exception:  # left on the queue: it comes back after the visibility timeout
            self.failed += 1
            log.exception("event from the queue was not handled; it will be redelivered")
            return
        self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        self.delivered += 1
        log.info("event %s handled from the queue", event.get("detail-type"))


Deliver = Callable[[dict[str, Any]], None]


# Lambda's asynchronous retries: two, one minute and then two minutes after a failure.
RETRY_DELAYS_S = (60.0, 120.0)


class EventReceiver:
    """Takes event documents POSTed to EVENTS_PATH + token and hands each to `deliver`, in
    arrival order, on a thread of its own, so that a slow handler never holds the sender.

    With a `spool` folder, each accepted event is written there (fsync'd) before the answer,
    and removed once handled, or moved to `spool/dead-letter/` after its last attempt."""

    def __init__(
        self,
        deliver: Deliver,
        token: str,
        *,
        spool: Path | None = None,
        retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S,
    ) -> None:
        self._deliver = deliver
        self._token = token
        self._spool = spool
        self._retry_delays_s = retry_delays_s
        self._queue: queue.Queue[tuple[dict[str, Any], Path | None] | None] = queue.Queue()
        self.delivered = 0
        self.failed = 0
        self.pending = 0  # accepted and not yet handled: tests and tools wait for 0
        self._count_lock = threading.Lock()
        self._sequence = 0
        if spool is not None:
            spool.mkdir(mode=0o700, parents=True, exist_ok=True)
            for left in sorted(spool.glob("*.json")):  # accepted before a crash: handled now
                self._enqueue(json.loads(left.read_text()), left)
        self._worker = threading.Thread(target=self._drain, name="event-receiver", daemon=True)
        self._worker.start()

    @property
    def path(self) -> str:
        return EVENTS_PATH + self._token

    def accept(
        self, path: str, token_header: str, content_type: str, client_ip: str, body: bytes
    ) -> HttpResponse:
        """The answer to one POST; the token comes in the path or in X-Maas-Event-Token."""
        presented = [path.removeprefix(EVENTS_PATH), token_header]
        if client_ip not in LOOPBACK or not any(self._accepts(p) for p in presented):
            return _refused(403, "Forbidden", "Forbidden")
        if content_type.split(";")[0].strip() != "application/json":
            # Also keeps out "simple" cross-site requests a browser page could send.
            message = "events must be application/json"
            return _refused(415, "UnsupportedMediaType", message)
        try:
            payload = json.loads(body)
        except json.JSONDecodeError:
            return _refused(400, "BadRequest", "event body is not JSON")
        events = payload if isinstance(payload, list) else [payload]
        for event in events:
            self._enqueue(event, self._keep(event))
        return HttpResponse.of_json(202, {"accepted": len(events)})

    def _enqueue(self, event: dict[str, Any], kept: Path | None) -> None:
        with self._count_lock:
            self.pending += 1
        self._queue.put((event, kept))

    def _keep(self, event: dict[str, Any]) -> Path | None:
        """The event on disk before it is acknowledged; names sort in arrival order."""
        if self._spool is None:
            return None
        with self._count_lock:
            self._sequence += 1
            name = f"{time.time_ns():020d}-{self._sequence:06d}.json"
        path = self._spool / name
        write_durably(path, json.dumps(event).encode())
        return path

    def _accepts(self, presented: str) -> bool:
        return bool(self._token) and hmac.compare_digest(presented.encode(), self._token.encode())

    def _drain(self) -> None:
        while (item := self._queue.get()) is not None:
            event, kept = item
            try:
                if self._handle(event):
                    self.delivered += 1
                    if kept is not None:
                        kept.unlink(missing_ok=True)
                else:
                    self.failed += 1
                    if kept is not None:
                        dead = self._spool / "dead-letter"  # type: ignore[operator]
                        dead.mkdir(mode=0o700, exist_ok=True)
                        kept.replace(dead / kept.name)
            finally:
                with self._count_lock:
                    self.pending -= 1

    def _handle(self, event: dict[str, Any]) -> bool:
        """One event through the handler, with Lambda's retries; False once all failed."""
        kind = event.get("detail-type")
        for attempt, delay in enumerate((0.0, *self._retry_delays_s), start=1):
            time.sleep(delay)
            try:
                self._deliver(event)
                log.info("event %s handled", kind)
                return True
            except Exception:
                log.exception("event handler failed on %s (attempt %d)", kind, attempt)
        log.error(
            "event %s %s failed every attempt: to the dead-letter folder", kind, event.get("id")
        )
        return False

    def stop(self) -> None:
        self._queue.put(None)


def _refused(status: int, code: str, message: str) -> HttpResponse:
    return HttpResponse.of_json(status, error_body(code, message, str(uuid.uuid4())))
