"""Data capture for real-time endpoints, as an endpoint config's `DataCaptureConfig` asks.

A sampled invocation becomes one JSON line in SageMaker's capture format:

    {"captureData": {"endpointInput": {...}, "endpointOutput": {...}},
     "eventMetadata": {"eventId": "...", "inferenceTime": "2022-02-14T17:25:49Z"},
     "eventVersion": "0"}

where each side is `{"observedContentType", "mode": "INPUT"|"OUTPUT", "data", "encoding"}`, and
data is the payload as text for content types the config lists as CSV or JSON, base64 otherwise
(SageMaker's default when no CaptureContentTypeHeader names the type). Lines are buffered and
written, like the service's periodic uploads, to
`{DestinationS3Uri}/{EndpointName}/{VariantName}/yyyy/mm/dd/hh/<file>.jsonl` (the hour of the
invocation, UTC), every FLUSH_INTERVAL_S and when the fleet stops (endpoint deleted, replaced by
a deployment, or the emulator shut down); with the config's KmsKeyId as SSE-KMS key.

Sources:
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DataCaptureConfig.html
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CaptureContentTypeHeader.html
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import random
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from maas_local.sagemaker import s3io

log = logging.getLogger("maas_local.sagemaker.capture")

FLUSH_INTERVAL_S = 60.0
EVENT_VERSION = "0"
# CaptureMode values: the API's Input and Output; CloudFormation also lists InputAndOutput.
_MODES = {"Input": {"Input"}, "Output": {"Output"}, "InputAndOutput": {"Input", "Output"}}


@dataclass(frozen=True)
class CaptureSettings:
    percentage: int
    destination: str
    modes: frozenset[str]
    csv_types: frozenset[str] = frozenset()
    json_types: frozenset[str] = frozenset()
    kms_key_id: str | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> CaptureSettings:
        modes: set[str] = set()
        for option in config.get("CaptureOptions") or []:
            modes |= _MODES[option["CaptureMode"]]
        header = config.get("CaptureContentTypeHeader") or {}
        return cls(
            percentage=int(config["InitialSamplingPercentage"]),
            destination=config["DestinationS3Uri"].rstrip("/"),
            modes=frozenset(modes),
            csv_types=frozenset(t.lower() for t in header.get("CsvContentTypes") or []),
            json_types=frozenset(t.lower() for t in header.get("JsonContentTypes") or []),
            kms_key_id=config.get("KmsKeyId"),
        )

    def encoding(self, content_type: str) -> str:
        media = content_type.split(";", 1)[0].strip().lower()
        if media in self.csv_types:
            return "CSV"
        if media in self.json_types:
            return "JSON"
        return "BASE64"


@dataclass
class Observed:
    """One side of an invocation, as the endpoint saw it."""

    content_type: str
    body: bytes


@dataclass
class DataCapture:
    """One endpoint config's capture: sampling, the buffer and its uploads."""

    settings: CaptureSettings
    role: str = ""  # the execution role the captured files are written as
    rng: random.Random = field(default_factory=random.Random)
    flush_interval_s: float = FLUSH_INTERVAL_S
    files_written: int = 0
    _buffer: dict[str, list[str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _timer: threading.Timer | None = None
    _closed: bool = False

    @classmethod
    def from_config(cls, config: dict[str, Any] | None, **kwargs: Any) -> DataCapture | None:
        """None when the config captures nothing. EnableCapture defaults to enabled."""
        if not config or config.get("EnableCapture", True) is False:
            return None
        return cls(CaptureSettings.from_config(config), **kwargs)

    def sampled(self) -> bool:
        """InitialSamplingPercentage of invocations: 0 captures none, 100 every one."""
        return self.rng.random() * 100 < self.settings.percentage

    def observe(
        self,
        endpoint: str,
        variant: str,
        request: Observed,
        response: Observed,
        *,
        inference_id: str | None = None,
        when: dt.datetime | None = None,
    ) -> bool:
        """Samples one invocation and buffers its record; True when it was captured."""
        if not self.sampled():
            return False
        when = when or dt.datetime.now(tz=dt.UTC)
        line = json.dumps(self.record(request, response, inference_id=inference_id, when=when))
        folder = "/".join(
            [self.settings.destination, endpoint, variant, when.strftime("%Y/%m/%d/%H")]
        )
        with self._lock:
            if self._closed:
                return False
            self._buffer.setdefault(folder, []).append(line)
            self._schedule()
        return True

    def record(
        self,
        request: Observed,
        response: Observed,
        *,
        inference_id: str | None,
        when: dt.datetime,
    ) -> dict[str, Any]:
        """One line of the capture file."""
        capture: dict[str, Any] = {}
        if "Input" in self.settings.modes:
            capture["endpointInput"] = self._side(request, "INPUT")
        if "Output" in self.settings.modes:
            capture["endpointOutput"] = self._side(response, "OUTPUT")
        metadata = {"eventId": str(uuid.uuid4()), "inferenceTime": _iso(when)}
        if inference_id:
            # InvokeEndpoint's InferenceId "is added to the captured data".
            metadata["inferenceId"] = inference_id
        return {"captureData": capture, "eventMetadata": metadata, "eventVersion": EVENT_VERSION}

    def _side(self, observed: Observed, mode: str) -> dict[str, str]:
        encoding = self.settings.encoding(observed.content_type)
        data = None
        if encoding != "BASE64":
            try:
                data = observed.body.decode("utf-8")
            except UnicodeDecodeError:
                encoding = "BASE64"
        if data is None:
            data = base64.b64encode(observed.body).decode("ascii")
        return {
            "observedContentType": observed.content_type,
            "mode": mode,
            "data": data,
            "encoding": encoding,
        }

    def flush(self) -> int:
        """Writes every buffered folder's lines as one new file each; returns files written.
        A folder whose upload fails keeps its lines for the next flush."""
        with self._lock:
            pending, self._buffer = self._buffer, {}
        written = 0
        for folder, lines in pending.items():
            stamp = dt.datetime.now(tz=dt.UTC)
            name = f"{stamp:%M-%S}-{stamp.microsecond // 1000:03d}-{uuid.uuid4()}.jsonl"
            body = ("\n".join(lines) + "\n").encode()
            try:
                s3io.put_bytes(
                    f"{folder}/{name}", body, kms_key_id=self.settings.kms_key_id, role=self.role
                )
                written += 1
            except Exception as exc:  # a capture upload must never break the endpoint
                log.warning("data capture upload to %s failed, kept for later: %s", folder, exc)
                with self._lock:
                    self._buffer[folder] = lines + self._buffer.get(folder, [])
        self.files_written += written
        return written

    def close(self) -> None:
        """Writes what is buffered and stops capturing."""
        with self._lock:
            self._closed = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self.flush()

    def _schedule(self) -> None:
        """Starts the periodic upload if none is due (called with the lock held)."""
        if self._timer is None:
            self._timer = threading.Timer(self.flush_interval_s, self._periodic)
            self._timer.daemon = True
            self._timer.start()

    def _periodic(self) -> None:
        with self._lock:
            self._timer = None
        self.flush()


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
