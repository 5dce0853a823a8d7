"""Logs, traces and metrics: Powertools' Logger and Tracer, and the EMF metrics each request
and each model call records."""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from maas_contract import settings

# Powertools reads its own settings (POWERTOOLS_*) when these are built, at import: before the
# snapshot, in the environment the restored function also has.
logger = Logger(service=settings.read("service_name"))
tracer = Tracer(service=settings.read("service_name"))

_recorder: EphemeralMetrics | None = None


def _metrics() -> EphemeralMetrics:
    """The process's EMF recorder, empty. One is kept rather than built per request, which
    cost more than recording the metrics; an execution environment serves one request at a
    time, and flushing empties it."""
    global _recorder
    namespace = settings.read("metrics_namespace")
    if _recorder is None or _recorder.namespace != namespace:
        _recorder = EphemeralMetrics(namespace=namespace)
    else:
        _recorder.clear_metrics()  # whatever a failed request left behind is not this one's
    return _recorder


def route_metrics(event: dict[str, Any], status: int, started: float) -> None:
    metrics = _metrics()
    route = f"{event.get('httpMethod', '?')} {event.get('resource') or 'unmatched'}"
    metrics.add_dimension(name="route", value=route)
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ClientErrors", unit=MetricUnit.Count, value=int(400 <= status < 500))
    metrics.add_metric(name="Faults", unit=MetricUnit.Count, value=int(status >= 500))
    elapsed_ms = (time.perf_counter() - started) * 1000
    metrics.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=elapsed_ms)
    metrics.flush_metrics()


def model_metrics(model: str, *, model_error: bool) -> None:
    metrics = _metrics()
    metrics.add_dimension(name="model", value=model)
    metrics.add_metric(name="Invocations", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ModelErrors", unit=MetricUnit.Count, value=int(model_error))
    metrics.flush_metrics()
