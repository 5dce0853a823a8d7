"""State-change events, built as the EventBridge documents SageMaker sends, and their delivery.

`--event-sink` is either an http(s) URL (the document is POSTed as JSON) or `events:BUSNAME`
(the event is put on that EventBridge bus, on the endpoint the environment names). Delivery
runs on one background thread, in order, so a slow sink never blocks the control plane.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import time
import urllib.request
import uuid
from typing import Any

import boto3

log = logging.getLogger("maas_local.sagemaker.events")

TRAINING_JOB = "SageMaker Training Job State Change"
ENDPOINT = "SageMaker Endpoint State Change"

# EventBridge spells endpoint states in upper snake case (IN_SERVICE), unlike the API.
_ENDPOINT_STATUS = {
    "OutOfService": "OUT_OF_SERVICE",
    "Creating": "CREATING",
    "Updating": "UPDATING",
    "SystemUpdating": "SYSTEM_UPDATING",
    "RollingBack": "ROLLING_BACK",
    "InService": "IN_SERVICE",
    "Deleting": "DELETING",
    "Failed": "FAILED",
    "UpdateRollbackFailed": "UPDATE_ROLLBACK_FAILED",
}


def _millis(value: Any) -> Any:
    """Events carry times as epoch milliseconds, everywhere in `detail`."""
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _millis(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_millis(v) for v in value]
    return value


def _tags_map(tags: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in tags}


def build(detail_type: str, arn: str, detail: dict[str, Any], *, account: str, region: str) -> dict:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.sagemaker",
        "account": account,
        "time": dt.datetime.now(tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [arn],
        "detail": _millis(detail),
    }


def training_job_event(describe: dict, tags: list, *, account: str, region: str) -> dict:
    detail = dict(describe)
    detail["Tags"] = _tags_map(tags)
    return build(TRAINING_JOB, describe["TrainingJobArn"], detail, account=account, region=region)


def endpoint_event(describe: dict, tags: list, *, account: str, region: str) -> dict:
    detail = {k: v for k, v in describe.items() if k != "EndpointStatus"}
    detail["EndpointStatus"] = _ENDPOINT_STATUS.get(describe["EndpointStatus"], "UNKNOWN")
    detail["Tags"] = _tags_map(tags)
    return build(ENDPOINT, describe["EndpointArn"], detail, account=account, region=region)


class EventSink:
    """Delivers events in order on a background thread; retries with backoff, logs failures."""

    def __init__(self, target: str | None, *, attempts: int = 4, backoff_s: float = 0.2) -> None:
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


def validate_target(target: str | None) -> str | None:
    if not target:
        return None
    if target.startswith(("http://", "https://")) or target.startswith("events:"):
        return target
    raise ValueError(f"--event-sink must be an http(s) URL or events:BUSNAME, not {target!r}")
