"""Invokes handlers the way Lambda does: each function has its own execution environments.

An environment (maas_local.execution_environment) is a process that serves one request at a
time. A function gets a new environment when a request finds all of its environments busy, up to
its concurrency (Lambda's reserved concurrency: the most environments that one function may run
at once, https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html); an idle
environment is reused, the most recently used first, so the warm ones stay warm.

Past its concurrency, Lambda throttles a synchronous call with 429, which API Gateway answers
with a 500 (https://repost.aws/knowledge-center/api-gateway-internal-server-error). Locally a
request waits for an environment of its function instead, within its integration timeout (then
504): the local limit stands for the laptop's cores, not for an account's concurrency quota, and
a demo should not fail over it. Nothing is shared between functions, and nothing serialises
requests across environments, so a slow model holds only the environments that call it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from maas_contract.routes import (
    HANDLERS_PACKAGE,
    STREAMING_GROUPS,
    function_suffix,
    handler_module,
)
from maas_local.execution_environment import (
    EnvironmentFailed,
    EnvironmentTimeout,
    ExecutionEnvironment,
    FunctionError,
    FunctionSpec,
    HandlerFailed,
)
from maas_local.forkserver import ForkServer, ServerConfig
from maas_local.proxy_event import HttpRequest
from maas_local.streaming import (
    HeadersTimeout,
    StreamedResponse,
    StreamLimits,
    UpstreamFailed,
    adapter_headers,
    open_stream,
)
from maas_local.web_adapter import web_app_module

DEFAULT_CONCURRENCY = 4  # environments per function
log = logging.getLogger("maas_local.invoker")

__all__ = ["FunctionError", "HandlerInvoker", "IntegrationTimeout"]


class IntegrationTimeout(Exception):
    """The handler did not answer within the integration timeout (API Gateway answers 504)."""


class FunctionPool:
    """The execution environments of one function."""

    def __init__(self, spec: FunctionSpec, concurrency: int, forks: ForkServer) -> None:
        if concurrency < 1:
            raise ValueError(f"{spec.function_name}: concurrency must be at least 1")
        self.spec = spec
        self._forks = forks
        self.concurrency = concurrency
        self._idle: list[ExecutionEnvironment] = []  # the most recently used last
        self._live: set[ExecutionEnvironment] = set()
        self._starting = 0
        self._changed = threading.Condition()
        self._closed = False

    def invoke(self, event: dict[str, Any], request_id: str, deadline: float) -> Any:
        environment = self._acquire(deadline)
        try:
            result = environment.invoke(event, request_id, deadline)
        except HandlerFailed:
            self._release(environment)  # the handler's error: its environment is sound
            raise
        except BaseException:
            self._discard(environment)
            raise
        self._release(environment)
        return result

    def stream(
        self,
        request: HttpRequest,
        request_context: dict[str, Any],
        started: float,
        limits: StreamLimits,
    ) -> StreamedResponse:
        """The web app's answer, its body still to come: the environment stays this request's
        until the response is closed, and is reset unless its stream ended whole."""
        deadline = started + limits.integration_timeout_s
        environment = self._acquire(deadline)
        if environment.port is None:
            self._discard(environment)
            raise EnvironmentFailed(f"{self.spec.function_name}: not a streaming function")
        headers = adapter_headers(
            request, request_context, self.spec.function_name, deadline - time.monotonic()
        )

        def on_close(complete: bool) -> None:
            (self._release if complete else self._discard)(environment)

        try:
            return open_stream(environment.port, request, headers, deadline, limits, on_close)
        except HeadersTimeout as error:
            self._discard(environment)  # a timed-out environment is reset, never reused
            raise EnvironmentTimeout(self.spec.function_name) from error
        except UpstreamFailed as error:
            self._discard(environment)
            raise EnvironmentFailed(f"{self.spec.function_name}: {error}") from error
        except BaseException:
            self._discard(environment)
            raise

    def warm(self, deadline: float) -> None:
        """Start one environment now, so that the first request finds it ready."""
        self._release(self._acquire(deadline))

    @property
    def size(self) -> int:
        with self._changed:
            return len(self._live) + self._starting

    def _acquire(self, deadline: float) -> ExecutionEnvironment:
        with self._changed:
            while True:
                if self._closed:
                    raise RuntimeError(f"{self.spec.function_name}: the invoker is shut down")
                while self._idle:
                    environment = self._idle.pop()
                    if environment.idle_and_alive():
                        return environment
                    self._live.discard(environment)
                    environment.kill()
                if len(self._live) + self._starting < self.concurrency:
                    self._starting += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise EnvironmentTimeout(self.spec.function_name)
                self._changed.wait(remaining)
        try:
            environment = self._forks.fork(self.spec)
            environment.wait_ready(deadline)
        except BaseException:
            with self._changed:
                self._starting -= 1
                self._changed.notify()
            raise
        with self._changed:  # one step, so that the count never dips below what runs
            self._starting -= 1
            self._live.add(environment)
        log.info("%s: new environment, pid %s", self.spec.function_name, environment.pid)
        return environment

    def _release(self, environment: ExecutionEnvironment) -> None:
        with self._changed:
            if self._closed:
                environment.kill()
                return
            self._idle.append(environment)
            self._changed.notify()

    def _discard(self, environment: ExecutionEnvironment) -> None:
        environment.kill()
        with self._changed:
            self._live.discard(environment)
            self._changed.notify()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            environments = list(self._live)
            self._live.clear()
            self._idle.clear()
            self._changed.notify_all()
        for environment in environments:
            environment.kill()


class HandlerInvoker:
    """One pool of execution environments per function (route group), made on first use."""

    def __init__(
        self,
        package: str = HANDLERS_PACKAGE,
        *,
        function_prefix: str = "maas-local",
        concurrency: int = DEFAULT_CONCURRENCY,
        code_root: Path | None = None,
        iam_policies: Path | None = None,
        iam_audit_log: Path | None = None,
        streaming_groups: frozenset[str] = STREAMING_GROUPS,
    ) -> None:
        self._package = package
        self.streaming_groups = streaming_groups
        self._prefix = function_prefix
        self.concurrency = concurrency
        self._forks = ForkServer(
            ServerConfig(
                environ=dict(os.environ),  # as Lambda fixes them when a function is deployed
                code_root=str(code_root) if code_root else None,
                iam_policies=str(iam_policies) if iam_policies else None,
                iam_audit_log=str(iam_audit_log) if iam_audit_log else None,
            )
        )
        self._pools: dict[str, FunctionPool] = {}
        self._pools_lock = threading.Lock()

    def pool(self, group: str) -> FunctionPool:
        with self._pools_lock:
            if group not in self._pools:
                spec = FunctionSpec(
                    group=group,
                    entry_module=self._entry_module(group),
                    function_name=f"{self._prefix}-{function_suffix(group)}",
                    streaming=group in self.streaming_groups,
                )
                self._pools[group] = FunctionPool(spec, self.concurrency, self._forks)
            return self._pools[group]

    def _entry_module(self, group: str) -> str:
        if group in self.streaming_groups:
            return web_app_module(group, self._package)
        return handler_module(group, self._package)

    def preload(self, groups: set[str], timeout_s: float = 60.0) -> None:
        """Load the handlers once, before the first request, and start one environment of each
        function, so that no request pays for a cold start. A function whose handler does not
        load is logged and left cold: its requests fail as they would in the cloud."""
        modules = [self._entry_module(group) for group in sorted(groups)]
        if groups & self.streaming_groups:
            modules.append("uvicorn")  # what serves the streaming functions' apps
        self._forks.start(modules)
        deadline = time.monotonic() + timeout_s
        for group in sorted(groups):
            try:
                self.pool(group).warm(deadline)
            except (FunctionError, EnvironmentTimeout) as error:
                log.error("%s: no environment started: %s", group, error)

    def invoke(self, group: str, event: dict[str, Any], request_id: str, timeout_s: float) -> Any:
        """The result of the group's handler(event, context); IntegrationTimeout past
        timeout_s, FunctionError when the handler or its environment failed."""
        deadline = time.monotonic() + timeout_s
        try:
            return self.pool(group).invoke(event, request_id, deadline)
        except EnvironmentTimeout as error:
            raise IntegrationTimeout(group) from error

    def stream(
        self,
        group: str,
        request: HttpRequest,
        request_context: dict[str, Any],
        limits: StreamLimits,
    ) -> StreamedResponse:
        """A streaming function's answer (maas_local.streaming); IntegrationTimeout when no
        headers came within the integration timeout, FunctionError when there was no answer."""
        try:
            return self.pool(group).stream(request, request_context, time.monotonic(), limits)
        except EnvironmentTimeout as error:
            raise IntegrationTimeout(group) from error

    def shutdown(self) -> None:
        with self._pools_lock:
            pools = list(self._pools.values())
        for pool in pools:
            pool.close()
        self._forks.close()
