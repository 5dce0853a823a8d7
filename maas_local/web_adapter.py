"""Inside a streaming function's execution environment: the web app, served as the AWS Lambda Web
Adapter serves it.

In the cloud, a function of a streaming route group (maas_contract.routes.STREAMING_GROUPS) is
an ASGI app (`handlers/<group>/app.py`, `app`) run by uvicorn in the function's execution
environment; the Lambda Web Adapter extension waits until the app answers on its loopback port
(AWS_LWA_PORT), then turns each invocation's event back into an HTTP request to it and streams
the answer back (AWS_LWA_INVOKE_MODE=response_stream).
https://awslabs.github.io/aws-lambda-web-adapter/reference/architecture.html

Here the environment process (forked like every other, with the function's environment
variables and its IAM identity bound) serves the app with uvicorn on a loopback port of its own,
says that port when it is ready, and lives until the gateway closes its end of the connection.
The gateway plays the adapter's part (maas_local.streaming).
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import threading
import traceback
from multiprocessing.connection import Connection
from typing import Any

WEB_APP_ATTRIBUTE = "app"  # handlers/<group>/app.py's ASGI app
PORT_ENV = "AWS_LWA_PORT"  # where the adapter reaches the app


def web_app_module(group: str, package: str) -> str:
    """The module that holds a streaming group's ASGI app."""
    return f"{package}.{group}.app"


def serve_web_app(entry_module: str, conn: Connection, import_error: str) -> None:
    """Load the app, serve it on a loopback port, report `{"port": N}`; return when the server
    stops. An app that does not load, or whose start-up fails, is reported as `import_error`."""
    try:
        import uvicorn

        app: Any = getattr(importlib.import_module(entry_module), WEB_APP_ATTRIBUTE)
    except Exception as error:  # every request to this environment would fail: report, end
        traceback.print_exc()
        conn.send_bytes(_error(import_error, error))
        return
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    os.environ[PORT_ENV] = str(port)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="auto")
    )
    reported = threading.Event()

    def report_ready_then_wait() -> None:
        while not server.started and not server.should_exit:
            threading.Event().wait(0.005)
        if not server.started:
            return
        conn.send_bytes(json.dumps({"result": {"port": port}}).encode())
        reported.set()
        try:  # an environment ends when the gateway hangs up on it
            conn.recv_bytes()
        except (EOFError, OSError):
            pass
        os._exit(0)

    threading.Thread(target=report_ready_then_wait, daemon=True).start()
    try:
        server.run(sockets=[listener])
    except BaseException as error:
        traceback.print_exc()
        if not reported.is_set():
            conn.send_bytes(_error(import_error, error))
        return
    if not reported.is_set():  # the app's start-up (its lifespan) failed
        conn.send_bytes(_error(import_error, RuntimeError("the web app did not start")))


def _error(error_type: str, error: BaseException) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": str(error)}).encode()
