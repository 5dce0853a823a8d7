"""TorchServe's part of a model server, as the AWS PyTorch inference container runs it.

The container runs TorchServe under the SageMaker PyTorch inference toolkit. TorchServe forms
batches of up to `batchSize` requests, waiting at most `maxBatchDelay` ms after the first, and
calls one Python entry point with the whole batch: `entry_point(data, context)`, where `data`
holds one `{"body": bytearray}` per request and `context` carries each request's headers in and
its status, content type and headers out. The entry point must return one body per request, in
order; if it raises, or returns anything else, every request of the batch fails with 503.
(pytorch/serve: ts/service.py `Service.predict`, ts/context.py, ts/protocol/otf_message_handler.py)

The toolkit turns the Model's environment into TorchServe's model config: `SAGEMAKER_TS_*`
(maas_contract.sagemaker), with the toolkit's defaults below when unset
(sagemaker-pytorch-inference-toolkit: ts_parameters.py, ts_environment.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from maas_contract.sagemaker import (
    BATCH_HANDLER_ENV,
    BATCH_SIZE_ENV,
    MAX_BATCH_DELAY_ENV,
    RESPONSE_TIMEOUT_ENV,
)

# sagemaker-pytorch-inference-toolkit ts_environment.py: DEFAULT_TS_BATCH_SIZE,
# DEFAULT_TS_MAX_BATCH_DELAY (ms), DEFAULT_TS_RESPONSE_TIMEOUT (s).
DEFAULT_BATCH_SIZE = 1
DEFAULT_MAX_BATCH_DELAY_MS = 100
DEFAULT_RESPONSE_TIMEOUT_S = 60

EntryPoint = Callable[[Any, "ServingContext"], Any]


@dataclass(frozen=True)
class Settings:
    """TorchServe's model config, from the container's environment."""

    batch_size: int = DEFAULT_BATCH_SIZE
    max_batch_delay_ms: int = DEFAULT_MAX_BATCH_DELAY_MS
    response_timeout_s: int = DEFAULT_RESPONSE_TIMEOUT_S
    handler: str | None = None  # TS_DEFAULT_SERVICE_HANDLER, "path/module.py:function"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        def number(name: str, default: int) -> int:
            value = environ.get(name, "").strip()
            return int(value) if value else default

        return cls(
            batch_size=max(1, number(BATCH_SIZE_ENV, DEFAULT_BATCH_SIZE)),
            max_batch_delay_ms=max(0, number(MAX_BATCH_DELAY_ENV, DEFAULT_MAX_BATCH_DELAY_MS)),
            response_timeout_s=max(1, number(RESPONSE_TIMEOUT_ENV, DEFAULT_RESPONSE_TIMEOUT_S)),
            handler=environ.get(BATCH_HANDLER_ENV) or None,
        )

    def handler_module_and_function(self) -> tuple[str, str] | None:
        """TorchServe's reading of the handler: the file's stem, imported from sys.path, and
        the function (`handle` when none is named); None when no handler is set."""
        if not self.handler:
            return None
        path, _, function = self.handler.partition(":")
        module = path.rsplit("/", 1)[-1]
        return module.removesuffix(".py"), function or "handle"


@dataclass
class Invocation:
    body: bytes
    headers: dict[str, str]


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


class RequestProcessor:
    def __init__(self, headers: dict[str, str]) -> None:
        self.request_headers = headers
        self.response_headers: dict[str, str] = {}
        self.status: tuple[int, str] = (200, "")


class ServingContext:
    """TorchServe's `Context`, as far as handlers use it: request headers in, response headers
    and status out, one entry per request in the batch (`idx`)."""

    def __init__(
        self, model_dir: str, requests: list[RequestProcessor], batch_size: int = 1
    ) -> None:
        self.model_dir = model_dir
        self.system_properties: dict[str, object] = {
            "model_dir": model_dir,
            "gpu_id": None,
            "batch_size": batch_size,
        }
        self.request_processor = requests
        self.request_ids = {i: str(i) for i in range(len(requests))}

    @classmethod
    def for_request(cls, model_dir: str, headers: dict[str, str]) -> ServingContext:
        return cls(model_dir, [RequestProcessor(headers)])

    def get_request_id(self, idx: int = 0) -> str | None:
        return self.request_ids.get(idx)

    def get_request_header(self, idx: int, key: str) -> str | None:
        return self.request_processor[idx].request_headers.get(key)

    def get_all_request_header(self, idx: int) -> dict[str, str]:
        return self.request_processor[idx].request_headers

    def set_response_header(self, idx: int, key: str, value: str) -> None:
        self.request_processor[idx].response_headers[key] = value

    def get_response_headers(self, idx: int) -> dict[str, str]:
        return self.request_processor[idx].response_headers

    def set_response_content_type(self, idx: int, value: str) -> None:
        self.set_response_header(idx, "content-type", value)

    def get_response_content_type(self, idx: int) -> str | None:
        return self.get_response_headers(idx).get("content-type")

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        self.request_processor[idx].status = (code, phrase)

    def get_response_status(self, idx: int) -> tuple[int, str]:
        return self.request_processor[idx].status


def _encoded(value: Any) -> bytes:
    """A response body as TorchServe writes it: text as UTF-8, bytes as they are, else JSON."""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return json.dumps(value).encode()


def _failed_batch(batch: list[Invocation], message: str) -> list[Reply]:
    body = json.dumps({"message": message})
    return [Reply(503, body.encode(), "application/json") for _ in batch]


def predict(
    entry_point: EntryPoint, batch: list[Invocation], model_dir: str, batch_size: int
) -> list[Reply]:
    """One batch through the entry point, answered per request as TorchServe answers it."""
    context = ServingContext(
        model_dir, [RequestProcessor(dict(i.headers)) for i in batch], batch_size
    )
    data = [{"body": bytearray(invocation.body)} for invocation in batch]
    try:
        answers = entry_point(data, context)
    except Exception:
        return _failed_batch(batch, "Prediction failed")
    if not isinstance(answers, list):
        return _failed_batch(batch, "Invalid model predict output")
    if len(answers) != len(batch):
        return _failed_batch(batch, "number of batch response mismatched")
    replies = []
    for idx, answer in enumerate(answers):
        headers = dict(context.get_response_headers(idx))
        content_type = headers.pop("content-type", None) or "application/json"
        status, _ = context.get_response_status(idx)
        replies.append(Reply(status, _encoded(answer), content_type, headers))
    return replies
