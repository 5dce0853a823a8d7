"""The predict handler's cold import leaves the X-Ray SDK out while tracing is off, and traced
functions still answer as before either way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_importing_and_calling_the_predict_handler_skips_xray_when_tracing_is_off():
    code = (
        "import sys\n"
        "import handlers.predict\n"
        "from handlers.web import tracer\n"
        "traced = tracer.capture_method(lambda x: x + 1, capture_response=False)\n"
        "assert traced(1) == 2\n"
        "print(sorted(m for m in sys.modules if m.startswith('aws_xray_sdk')))\n"
    )
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "1", "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_traced_function_goes_through_powertools_tracer_when_tracing_is_on(monkeypatch):
    from handlers.tracing import LazyTracer

    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    wrapped: list[str] = []
    lazy = LazyTracer(service="test")

    class FakeTracer:  # stands in for Powertools' Tracer, which needs an X-Ray daemon
        def capture_method(self, fn, **options):
            wrapped.append(fn.__name__)
            return lambda *a, **k: fn(*a, **k) * 10

    lazy._tracer = FakeTracer()

    @lazy.capture_method(capture_response=False)
    def double(x: int) -> int:
        return 2 * x

    assert not wrapped  # nothing is built at decoration time
    assert double(3) == 60 and double(1) == 20
    assert wrapped == ["double"]  # wrapped once, on the first call
