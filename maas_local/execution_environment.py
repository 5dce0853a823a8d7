"""One Lambda execution environment: a process that runs one function, one request at a time.

Lambda runs each in-flight request of a function in an execution environment of its own, keeps
an environment warm for the next request, and resets one whose invocation timed out
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html). Here an
environment is a process forked by the invoker's fork server (maas_local.forkserver), with the
function's environment variables and its identity for the local IAM enforcement
(maas_local.iam_guard) bound to the whole process. It imports its handler, says it is ready,
then answers invocations until the gateway closes its end of the connection.

Events and results cross the connection as JSON, as they cross Lambda's runtime API: a handler
result that JSON cannot carry fails the invocation as `Runtime.MarshalError`, as in the cloud.
"""

from __future__ import annotations

import decimal
import importlib
import json
import os
import signal
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from maas_local.iam_guard import bind_process
from maas_local.lambda_context import LambdaContext
from maas_local.web_adapter import serve_web_app

IMPORT_ERROR = "Runtime.ImportModuleError"  # Lambda's errorType when the handler cannot load
_READY = "ready"


class EnvironmentTimeout(Exception):
    """The environment did not answer in time; it has been killed."""


class FunctionError(Exception):
    """The invocation failed (API Gateway answers 502); the message says how."""


class HandlerFailed(FunctionError):
    """The handler raised, or returned what JSON cannot carry; the environment stays warm."""


class EnvironmentFailed(FunctionError):
    """The environment could not load its handler, or it died; it is not reused."""


@dataclass(frozen=True)
class FunctionSpec:
    """What an environment needs to know of its function."""

    group: str  # the route group, which is also the function's name in the IAM policies
    entry_module: str  # whose `handler` is the entry point (a streaming function's: its `app`)
    function_name: str
    streaming: bool = False  # an ASGI app behind the Lambda Web Adapter (maas_local.web_adapter)


class ExecutionEnvironment:
    """The gateway's end of one environment: its process id and its connection."""

    def __init__(self, spec: FunctionSpec, pid: int, conn: Connection) -> None:
        self.spec = spec
        self.pid = pid
        self._conn = conn
        self._exited = False  # seen to end: its pid may belong to another process by now
        self.port: int | None = None  # a streaming environment's web app, on 127.0.0.1

    def wait_ready(self, deadline: float) -> None:
        """Returns once the handler has loaded; its start counts against the request's time,
        as a cold start does behind API Gateway."""
        try:
            ready = self._receive(deadline)
        except BaseException:
            self.kill()
            raise
        if isinstance(ready, dict):
            self.port = int(ready["port"])

    def idle_and_alive(self) -> bool:
        """An idle environment never speaks first: anything to read means it has exited."""
        try:
            self._exited = self._exited or self._conn.poll(0)
        except OSError:
            self._exited = True
        return not self._exited

    def invoke(self, event: dict[str, Any], request_id: str, deadline: float) -> Any:
        """The handler's result; EnvironmentTimeout past the deadline, a FunctionError when
        the handler or the environment failed."""
        remaining = deadline - time.monotonic()
        message = {"event": event, "request_id": request_id, "timeout_s": remaining}
        try:
            self._conn.send_bytes(json.dumps(message).encode())
        except OSError as error:
            raise EnvironmentFailed(f"{self.spec.function_name}: environment gone") from error
        return self._receive(deadline)

    def _receive(self, deadline: float) -> Any:
        if not self._conn.poll(max(0.0, deadline - time.monotonic())):
            self.kill()  # a timed-out environment is reset, never reused
            raise EnvironmentTimeout(self.spec.function_name)
        try:
            reply = json.loads(self._conn.recv_bytes())
        except (EOFError, OSError) as error:
            self._exited = True
            raise EnvironmentFailed(f"{self.spec.function_name}: environment exited") from error
        if "errorType" not in reply:
            return reply.get("result")
        failure = f"{self.spec.function_name}: {reply['errorType']}: {reply['errorMessage']}"
        if reply["errorType"] == IMPORT_ERROR:
            raise EnvironmentFailed(failure)
        raise HandlerFailed(failure)

    def kill(self) -> None:
        if not self._conn.closed:
            self._conn.close()
        if self._exited:
            return
        self._exited = True
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it ended on its own meanwhile


# -- inside the environment's process ----------------------------------------------------------
def run_environment(spec: FunctionSpec, conn: Connection) -> None:
    """The environment's life: init, then one invocation at a time until the gateway hangs up."""
    bind_process(spec.group)  # every AWS call of this process is this function's
    if spec.streaming:
        serve_web_app(spec.entry_module, conn, IMPORT_ERROR)
        return
    try:
        handler = importlib.import_module(spec.entry_module).handler
    except Exception as error:  # every invocation of this environment would fail: report, end
        traceback.print_exc()
        conn.send_bytes(_error(IMPORT_ERROR, error))
        return
    conn.send_bytes(json.dumps({"result": _READY}).encode())
    while True:
        try:
            message = json.loads(conn.recv_bytes())
        except EOFError:
            return
        conn.send_bytes(_invoke(handler, spec, message))


def _invoke(handler: Any, spec: FunctionSpec, message: dict[str, Any]) -> bytes:
    context = LambdaContext(spec.function_name, message["request_id"], message["timeout_s"])
    try:
        result = handler(message["event"], context)
    except Exception as error:  # what the runtime reports to Lambda, and logs
        traceback.print_exc()
        return _error(type(error).__name__, error)
    try:
        return json.dumps({"result": result}, default=_decimal_as_number).encode()
    except (TypeError, ValueError) as error:
        return _error("Runtime.MarshalError", error)


def _error(error_type: str, error: BaseException) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": str(error)}).encode()


def _decimal_as_number(value: Any) -> Any:
    """Decimals go out as numbers, as the Python runtime's marshaller writes them."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
