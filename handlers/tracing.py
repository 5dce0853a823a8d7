"""X-Ray tracing that costs nothing at import time.

Building Powertools' `Tracer` imports the X-Ray SDK, about half of a predict handler's cold
import on a small machine. `LazyTracer` takes the same decorators but builds the `Tracer` on
the first traced call, and only when tracing is on; with tracing off (POWERTOOLS_TRACE_DISABLED,
or outside Lambda, as Powertools itself decides) calls go straight through and the SDK is
never imported. With tracing on, the first call pays that import instead of the cold start.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

_TRUTHY = ("1", "true", "yes", "on", "y", "t")


def tracing_disabled() -> bool:
    """Powertools' own rule: disabled by env var, outside Lambda, or under SAM/Chalice local."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUTHY:
        return True
    in_lambda = bool(os.environ.get("LAMBDA_TASK_ROOT"))
    emulated = bool(os.environ.get("AWS_SAM_LOCAL") or os.environ.get("AWS_CHALICE_CLI_MODE"))
    return not in_lambda or emulated


class LazyTracer:
    def __init__(self, service: str) -> None:
        self.service = service
        self._tracer: Any = None

    @property
    def tracer(self) -> Any:
        """The Powertools Tracer, built (and the X-Ray SDK imported) on first access."""
        if self._tracer is None:
            from aws_lambda_powertools import Tracer

            self._tracer = Tracer(service=self.service)
        return self._tracer

    def _lazy(self, fn: Callable, wrap: Callable[[Callable], Callable]) -> Callable:
        chosen: list[Callable] = []

        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> Any:
            if not chosen:  # decided once, on the first call, when the environment is final
                chosen.append(fn if tracing_disabled() else wrap(fn))
            return chosen[0](*args, **kwargs)

        return call

    def capture_method(self, method: Callable | None = None, **options: Any) -> Any:
        def decorate(fn: Callable) -> Callable:
            return self._lazy(fn, lambda f: self.tracer.capture_method(f, **options))

        return decorate if method is None else decorate(method)

    def capture_lambda_handler(self, handler: Callable | None = None, **options: Any) -> Any:
        def decorate(fn: Callable) -> Callable:
            return self._lazy(fn, lambda f: self.tracer.capture_lambda_handler(f, **options))

        return decorate if handler is None else decorate(handler)

    def __getattr__(self, name: str) -> Any:  # put_annotation, put_metadata, provider, ...
        return getattr(self.tracer, name)
