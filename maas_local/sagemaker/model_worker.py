"""One production variant's model server, in its own process, as a SageMaker container runs it.

`python -m maas_local.sagemaker.model_worker --model-dir DIR --ready-file FILE` puts
`DIR/code` first on `sys.path`, loads the model's code, then serves `GET /ping` and
`POST /invocations` on 127.0.0.1 (a free port, written to FILE once the model is loaded).
Requests need the `X-Maas-Worker-Token` the emulator set in the environment. The worker exits
when its stdin closes, so it never outlives the emulator.

It plays the AWS PyTorch inference container: TorchServe forms batches from the container's
environment (the SageMaker Model's `Environment`, which the emulator passes to this process:
`SAGEMAKER_TS_BATCH_SIZE`, `SAGEMAKER_TS_MAX_BATCH_DELAY`, with the toolkit's defaults of 1
and 100 ms) and hands each batch to one entry point (torchserve.py). When
`TS_DEFAULT_SERVICE_HANDLER` names a module of the model's `code/` (`code/inference.py:handle`),
that function gets the whole batch; otherwise the SageMaker inference toolkit's does, which
runs `input_fn`/`predict_fn`/`output_fn` once per request (toolkit.py), so the laptop never
batches more than the cloud would. Each instance runs one worker process, the count maas
deploys with (`SAGEMAKER_TS_MIN_WORKERS`/`MAX_WORKERS` are not read).
"""

from __future__ import annotations

import argparse
import hmac
import importlib.util
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from maas_local.http_server import BodyRefused, LocalHTTPServer, LocalRequestHandler
from maas_local.sagemaker.batching import Batcher
from maas_local.sagemaker.toolkit import Handler, transform
from maas_local.sagemaker.torchserve import (
    EntryPoint,
    Invocation,
    Reply,
    ServingContext,
    Settings,
    predict,
)

TOKEN_HEADER = "X-Maas-Worker-Token"  # noqa: S105 - a header name, not a secret

Server = TypeVar("Server")  # what a worker loads: a model server or an engine


def _import(model_dir: Path, stem: str) -> ModuleType:
    """code/<stem>.py, imported as its stem with code/ first on sys.path (the container puts
    code/ on the path, and TorchServe imports a handler by its module name)."""
    code_dir = model_dir / "code"
    entry = code_dir / f"{stem}.py"
    if not entry.is_file():
        raise FileNotFoundError(f"model.tar.gz has no code/{entry.name}")
    if str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    spec = importlib.util.spec_from_file_location(stem, entry)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[stem] = module
    spec.loader.exec_module(module)
    return module


def load(model_dir: Path, environ: Mapping[str, str] = os.environ) -> Handler:
    """The toolkit's view of a model: `SAGEMAKER_PROGRAM`'s functions, `model_fn` called."""
    program = environ.get("SAGEMAKER_PROGRAM", "inference.py")
    return Handler(_import(model_dir, program.removesuffix(".py")), str(model_dir))


class ModelServer:
    """TorchServe in front of one model: its batches, and the entry point that answers them."""

    def __init__(self, model_dir: Path, environ: Mapping[str, str] = os.environ) -> None:
        self.model_dir = str(model_dir)
        self.settings = Settings.from_environment(environ)
        self.entry_point = self._entry_point(model_dir, environ)
        self.batcher: Batcher[Invocation, Reply] = Batcher(
            partial(
                predict,
                self.entry_point,
                model_dir=self.model_dir,
                batch_size=self.settings.batch_size,
            ),
            max_size=self.settings.batch_size,
            max_delay_s=self.settings.max_batch_delay_ms / 1000.0,
        )

    def _entry_point(self, model_dir: Path, environ: Mapping[str, str]) -> EntryPoint:
        named = self.settings.handler_module_and_function()
        if named is None:
            return transform(load(model_dir, environ))
        stem, function = named
        handle = getattr(_import(model_dir, stem), function, None)
        if not callable(handle):
            # TorchServe fails the model's load too: a model.tar.gz packaged before its
            # inference.py had `handle` cannot serve with this environment.
            raise AttributeError(
                f"TS_DEFAULT_SERVICE_HANDLER={self.settings.handler}: code/{stem}.py has no "
                f"function {function}(data, context); repackage the model with this maas"
            )
        # TorchServe's load-time call: the handler loads its model now, not on the first request.
        handle(None, ServingContext(self.model_dir, [], self.settings.batch_size))
        return handle

    def invoke(self, body: bytes, headers: dict[str, str]) -> Reply:
        return self.batcher.submit(Invocation(body, headers), self.settings.response_timeout_s)

    def close(self) -> None:
        self.batcher.close()


def make_handler(server: ModelServer, token: str) -> type[LocalRequestHandler]:
    class Invocations(LocalRequestHandler):
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
            headers = {k: v for k, v in self.headers.items() if k != TOKEN_HEADER}
            try:
                reply = server.invoke(body, headers)
            except Exception as exc:  # no answer in time, or the batch runner itself failed
                message = f"{type(exc).__name__}: {exc}"
                print(f"invocation failed: {message}", file=sys.stderr, flush=True)
                self._reply(500, json.dumps({"message": message}).encode(), "application/json")
                return
            self._reply(reply.status, reply.body, reply.content_type, reply.headers)

        def _reply(
            self, status: int, body: bytes, content_type: str, extra: dict | None = None
        ) -> None:
            headers = [("Content-Type", content_type), *(extra or {}).items()]
            self.send_bytes(status, body, headers)

    return Invocations


def _exit_when_orphaned() -> None:
    sys.stdin.buffer.read()
    os._exit(0)


def serve_worker(
    description: str,
    load: Callable[[Path], Server],
    handler: Callable[[Server, str], type[LocalRequestHandler]],
    what: str,
) -> None:
    """A model server process, as the fleet starts one: it exits when its parent's pipe
    closes, takes its caller token from the environment, loads the model (a failure is its
    traceback and exit status 1), then writes its port to the ready file and serves."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model-dir", type=Path, required=True, help="extracted model.tar.gz")
    parser.add_argument("--ready-file", type=Path, required=True, help="gets the port when ready")
    args = parser.parse_args()
    threading.Thread(target=_exit_when_orphaned, daemon=True).start()
    token = os.environ.pop("MAAS_WORKER_TOKEN", "")
    if not token:
        sys.exit("MAAS_WORKER_TOKEN is not set")
    try:
        loaded = load(args.model_dir)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        # os._exit: a normal exit would wait on the thread still blocked reading stdin.
        os._exit(1)
    server = LocalHTTPServer(("127.0.0.1", 0), handler(loaded, token))
    ready = args.ready_file.with_suffix(".tmp")
    ready.write_text(str(server.server_address[1]))
    ready.replace(args.ready_file)
    print(f"{what} ready on port {server.server_address[1]}", flush=True)
    server.serve_forever()


def main() -> None:
    serve_worker(__doc__ or "", ModelServer, make_handler, "model server")


if __name__ == "__main__":
    main()
