"""One production variant's model server, in its own process, as a SageMaker container runs it.

`python -m maas_local.sagemaker.model_worker --model-dir DIR --ready-file FILE` puts
`DIR/code` first on `sys.path`, imports `inference.py` from there, calls `model_fn(DIR)`, then
serves `GET /ping` and `POST /invocations` on 127.0.0.1 (a free port, written to FILE once the
model is loaded). Requests need the `X-Maas-Worker-Token` the emulator set in the environment.
The worker exits when its stdin closes, so it never outlives the emulator.

As the AWS PyTorch inference container does (sagemaker-inference-toolkit's Transformer on
TorchServe), a handler function that takes one argument more than the contract's gets the
request's context last: TorchServe's `Context`, whose `set_response_header(idx, key, value)`
headers go back on the HTTP response. The container's environment is the SageMaker Model's
`Environment`, which the emulator passes to this process.
"""

from __future__ import annotations

import argparse
import hmac
import importlib.util
import inspect
import json
import os
import sys
import threading
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from maas_local.http_server import BodyRefused, LocalHTTPServer, LocalRequestHandler
from maas_local.sagemaker.batching import Batcher

TOKEN_HEADER = "X-Maas-Worker-Token"  # noqa: S105 - a header name, not a secret
INVOCATION_TIMEOUT_S = 60.0


class ServingContext:
    """TorchServe's `Context`, as far as handler functions use it: request headers in, response
    headers and status out, one entry per request in the batch (`idx`)."""

    def __init__(self, model_dir: str, requests: list[RequestProcessor]) -> None:
        self.model_dir = model_dir
        self.system_properties: dict[str, object] = {
            "model_dir": model_dir,
            "gpu_id": None,
            "batch_size": 1,
        }
        self.request_processor = requests
        self.request_ids = {i: str(i) for i in range(len(requests))}

    @classmethod
    def for_request(cls, model_dir: str, headers: dict[str, str]) -> ServingContext:
        return cls(model_dir, [RequestProcessor(headers)])

    @classmethod
    def spanning(cls, contexts: list[ServingContext]) -> ServingContext:
        """One context over a batch of requests, as TorchServe gives a batched call."""
        model_dir = contexts[0].model_dir
        return cls(model_dir, [c.request_processor[0] for c in contexts])

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

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        self.request_processor[idx].status = (code, phrase)


class RequestProcessor:
    def __init__(self, headers: dict[str, str]) -> None:
        self.request_headers = headers
        self.response_headers: dict[str, str] = {}
        self.status = (200, "")


def _call(function: Any, args: tuple, context: ServingContext | None) -> Any:
    """Calls a handler function as the toolkit does: with the context when it takes one more
    argument than the contract's, without it otherwise."""
    takes = len(inspect.signature(function).parameters)
    if context is not None and takes == len(args) + 1:
        return function(*args, context)
    return function(*args)


class Handler:
    """The model's four functions, with SageMaker's defaults where inference.py has none."""

    def __init__(self, module: ModuleType, model_dir: Path) -> None:
        self.module = module
        self.model_dir = str(model_dir)
        load_context = ServingContext(self.model_dir, [])
        self.model = _call(module.model_fn, (self.model_dir,), load_context)

    def input_fn(self, body: bytes, content_type: str, context: Any = None) -> Any:
        if hasattr(self.module, "input_fn"):
            return _call(self.module.input_fn, (body, content_type), context)
        if content_type.startswith("application/json"):
            return json.loads(body)
        raise ValueError(f"Unsupported content type {content_type}; send application/json")

    def predict_fn(self, data: Any, model: Any, context: Any = None) -> Any:
        if hasattr(self.module, "predict_fn"):
            return _call(self.module.predict_fn, (data, model), context)
        return model(data)

    def output_fn(self, prediction: Any, accept: str, context: Any = None) -> Any:
        if hasattr(self.module, "output_fn"):
            return _call(self.module.output_fn, (prediction, accept), context)
        if hasattr(prediction, "tolist"):
            prediction = prediction.tolist()
        return json.dumps(prediction), "application/json"


def load(model_dir: Path) -> Handler:
    code_dir = model_dir / "code"
    entry = code_dir / os.environ.get("SAGEMAKER_PROGRAM", "inference.py")
    if not entry.is_file():
        raise FileNotFoundError(f"model.tar.gz has no code/{entry.name}")
    sys.path.insert(0, str(code_dir))
    spec = importlib.util.spec_from_file_location(entry.stem, entry)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[entry.stem] = module
    spec.loader.exec_module(module)
    return Handler(module, model_dir)


def make_handler(batcher: Batcher, token: str, model_dir: str) -> type[LocalRequestHandler]:
    class ModelServer(LocalRequestHandler):
        def _authorized(self) -> bool:
            if hmac.compare_digest(self.headers.get(TOKEN_HEADER, ""), token):
                return True
            self._reply(403, b'{"message": "forbidden"}', "application/json")
            return False

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            if self._authorized():
                self._reply(200 if self.path == "/ping" else 404, b"{}", "application/json")

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            if not self._authorized():
                return
            if self.path != "/invocations":
                self._reply(404, b'{"message": "not found"}', "application/json")
                return
            try:
                body = self.read_body()
            except BodyRefused as refused:
                refusal = json.dumps({"message": refused.reason}).encode()
                self._reply(refused.status, refusal, "application/json")
                return
            content_type = self.headers.get("Content-Type") or "application/json"
            accept = self.headers.get("Accept") or "application/json"
            headers = {k: v for k, v in self.headers.items() if k != TOKEN_HEADER}
            context = ServingContext.for_request(model_dir, headers)
            try:
                result = batcher.submit(
                    body, content_type, accept, INVOCATION_TIMEOUT_S, context=context
                )
            except Exception as exc:  # the model's own error, passed back with its message
                status = 400 if isinstance(exc, ValueError) else 500
                message = f"{type(exc).__name__}: {exc}"
                print(f"invocation failed: {message}", file=sys.stderr, flush=True)
                self._reply(status, json.dumps({"message": message}).encode(), "application/json")
                return
            payload, out_type = result if isinstance(result, tuple) else (result, accept)
            if isinstance(payload, str):
                payload = payload.encode()
            extra = dict(context.get_response_headers(0))
            out_type = extra.pop("content-type", out_type)
            status = context.request_processor[0].status[0]
            self._reply(status, bytes(payload), out_type, extra)

        def _reply(
            self, status: int, body: bytes, content_type: str, extra: dict | None = None
        ) -> None:
            headers = [("Content-Type", content_type), *(extra or {}).items()]
            self.send_bytes(status, body, headers)

    return ModelServer


def _exit_when_orphaned() -> None:
    sys.stdin.buffer.read()
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", type=Path, required=True, help="extracted model.tar.gz")
    parser.add_argument("--ready-file", type=Path, required=True, help="gets the port when ready")
    args = parser.parse_args()
    threading.Thread(target=_exit_when_orphaned, daemon=True).start()
    token = os.environ.pop("MAAS_WORKER_TOKEN", "")
    if not token:
        sys.exit("MAAS_WORKER_TOKEN is not set")
    try:
        handler = load(args.model_dir)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        # os._exit: a normal exit would wait on the thread still blocked reading stdin.
        os._exit(1)
    batcher = Batcher(
        handler,
        max_size=int(os.environ.get("MAAS_BATCH_MAX_SIZE", "8")),
        max_wait_s=float(os.environ.get("MAAS_BATCH_MAX_WAIT_MS", "5")) / 1000.0,
    )
    server = LocalHTTPServer(("127.0.0.1", 0), make_handler(batcher, token, str(args.model_dir)))
    partial = args.ready_file.with_suffix(".tmp")
    partial.write_text(str(server.server_address[1]))
    partial.replace(args.ready_file)
    print(f"model server ready on port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
