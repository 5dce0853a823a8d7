"""Calls handler modules the way Lambda does: a context object, a deadline, a thread per call.

Handler modules keep one resolver per thread (see handlers.web.entry), so calls to the same
module may run side by side, as concurrent Lambda containers would.
"""

from __future__ import annotations

import importlib
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from maas_local.config import REGION
from maas_local.iam_guard import acting_as
from maas_local.proxy_event import ACCOUNT_ID

Handler = Callable[[dict[str, Any], Any], Any]


class IntegrationTimeout(Exception):
    """The handler did not answer within the integration timeout (API Gateway answers 504)."""


class LambdaContext:
    """The attributes Lambda's context object carries that Powertools and handlers read."""

    def __init__(self, function_name: str, request_id: str, timeout_s: float) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class HandlerInvoker:
    def __init__(
        self,
        package: str = "handlers",
        *,
        function_prefix: str = "maas-local",
        max_workers: int = 32,
    ) -> None:
        self._package = package
        self._prefix = function_prefix
        self._handlers: dict[str, Handler] = {}
        self._registry_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="lambda")

    def _load(self, module: str) -> Handler:
        with self._registry_lock:
            if module not in self._handlers:
                loaded = importlib.import_module(f"{self._package}.{module}")
                self._handlers[module] = loaded.handler
            return self._handlers[module]

    def preload(self, modules: set[str]) -> None:
        """Import every module up front, so the first request does not pay for the cold start."""
        for module in sorted(modules):
            self._load(module)

    def invoke(self, module: str, event: dict[str, Any], request_id: str, timeout_s: float) -> Any:
        """Run module.handler(event, context); IntegrationTimeout past timeout_s."""
        handler = self._load(module)
        deadline = time.monotonic() + timeout_s
        function_name = f"{self._prefix}-{module.replace('_', '-')}"

        def run() -> Any:
            remaining = deadline - time.monotonic()
            if remaining <= 0:  # waited in the queue past the deadline: never start late
                raise IntegrationTimeout(module)
            with acting_as(module):  # its AWS calls are checked against its own role's policy
                return handler(event, LambdaContext(function_name, request_id, remaining))

        future: Future = self._pool.submit(run)
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout as error:
            future.cancel()
            raise IntegrationTimeout(module) from error

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
