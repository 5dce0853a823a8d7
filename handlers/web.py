"""What every route group shares: scopes, the error renderer and the Lambda entry point."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Route, Router
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

import handlers
from handlers.config import MAX_BODY_BYTES, MisconfiguredError
from handlers.errors import ApiError, error_body, forbidden, proxy_error
from handlers.tracing import LazyTracer

INVOKE_SCOPE = "maas/invoke"
ADMIN_SCOPE = "maas/admin"
OAUTH_SCHEME = "oauth2"
API_KEY_SCHEME = "apiKey"
# OpenAPI security requirements: alternatives are OR-ed, schemes inside one are AND-ed.
ADMIN: list[dict[str, list[str]]] = [{OAUTH_SCHEME: [ADMIN_SCOPE], API_KEY_SCHEME: []}]
INVOKE: list[dict[str, list[str]]] = [
    {OAUTH_SCHEME: [INVOKE_SCOPE], API_KEY_SCHEME: []},
    {OAUTH_SCHEME: [ADMIN_SCOPE], API_KEY_SCHEME: []},
]
JSON_TYPES = ("application/json",)

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "maas"))
tracer = LazyTracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "maas"))


def request_id(event: dict[str, Any]) -> str:
    return str((event.get("requestContext") or {}).get("requestId") or "")


def granted_scopes(event: dict[str, Any]) -> set[str]:
    context = event.get("requestContext") or {}
    claims = (context.get("authorizer") or {}).get("claims") or {}
    return set(str(claims.get("scope") or "").split())


def required_scopes(route: Route) -> set[str]:
    return {scope for option in route.security or [] for scope in option.get(OAUTH_SCHEME, [])}


def header(event: dict[str, Any], name: str) -> str | None:
    wanted = name.lower()
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == wanted:
            return str(value)
    return None


def media_type(event: dict[str, Any]) -> str:
    return (header(event, "content-type") or "").split(";")[0].strip().lower()


def guard(app: APIGatewayRestResolver) -> None:
    """Scope first, then content type: a caller without the scope learns nothing else.

    A route without `security` is unreachable: the default is to deny.
    """
    route: Route | None = app.context.get("_route")
    if route is None:
        return
    event = app.current_event.raw_event
    needed = required_scopes(route)
    if not needed or not needed & granted_scopes(event):
        raise forbidden(f"this route needs one of the scopes: {', '.join(sorted(needed))}")
    if route.body_field is not None and event.get("body") and media_type(event) not in JSON_TYPES:
        raise ApiError(415, "UnsupportedMediaType", "this route takes application/json")


def _guard_middleware(app: APIGatewayRestResolver, next_middleware: Callable) -> Response:
    guard(app)
    return next_middleware(app)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def build(router: Router) -> APIGatewayRestResolver:
    """A resolver serving `router`'s routes, with the shared guard and error rendering."""
    app = APIGatewayRestResolver(enable_validation=True)
    app.use(middlewares=[_guard_middleware])
    app.include_router(router)

    def render(status: int, code: str, message: str, headers: dict | None = None) -> Response:
        body = error_body(status, code, message, request_id(app.current_event.raw_event))
        return Response(status, content_types.APPLICATION_JSON, body, headers=headers)

    @app.exception_handler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return render(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        try:
            guard(app)  # 403 and 415 outrank 400, as they would before validation
        except ApiError as denied:
            return _api_error(denied)
        return render(400, "ValidationError", _validation_message(exc))

    @app.exception_handler(UnicodeDecodeError)
    def _undecodable(exc: UnicodeDecodeError) -> Response:
        # A body that is not UTF-8 arrives base64-encoded; JSON routes cannot read it.
        try:
            guard(app)
        except ApiError as denied:
            return _api_error(denied)
        return render(400, "ValidationError", f"body is not UTF-8 encoded JSON: {exc.reason}")

    @app.exception_handler(RecursionError)
    def _too_deep(exc: RecursionError) -> Response:
        # json.loads gives up on nesting deeper than the interpreter's recursion limit.
        try:
            guard(app)
        except ApiError as denied:
            return _api_error(denied)
        return render(400, "ValidationError", "the JSON body is nested too deeply")

    @app.exception_handler(MisconfiguredError)
    def _misconfigured(exc: MisconfiguredError) -> Response:
        logger.error("misconfigured", extra={"reason": str(exc)})
        return render(500, "InternalError", "the service is misconfigured")

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return render(500, "InternalError", "internal error")

    @app.not_found
    def _no_route(exc: Exception) -> Response:
        return render(404, "NotFound", "no such route")

    return app


@dataclass
class _LocalContext:
    """Stands in for the Lambda context when a local caller passes none."""

    function_name: str = "maas-local"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:maas-local"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "local"
    log_group_name: str = "local"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 28_000


def _oversize(event: dict[str, Any]) -> ApiError | None:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        size = len(body) * 3 // 4 - body[-2:].count("=")
    else:
        size = len(body.encode()) if len(body) * 4 > MAX_BODY_BYTES else len(body)
    if size > MAX_BODY_BYTES:
        return ApiError(
            413, "PayloadTooLarge", f"body is {size} bytes; the limit is {MAX_BODY_BYTES}"
        )
    return None


_METRICS = threading.local()


def _metrics() -> EphemeralMetrics:
    """This thread's EMF recorder. One is kept rather than built per request, which cost
    more than recording the metrics; flushing empties it, and so does taking it up."""
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "maas")
    metrics: EphemeralMetrics | None = getattr(_METRICS, "emf", None)
    if metrics is None or metrics.namespace != namespace:
        metrics = _METRICS.emf = EphemeralMetrics(namespace=namespace)
    else:
        metrics.clear_metrics()  # whatever a failed request left behind is not this one's
    return metrics


def _route_metrics(event: dict[str, Any], status: int, started: float) -> None:
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


# Powertools keeps the request being resolved on a class attribute shared by every resolver
# (BaseRouter.current_event), so one process resolves one request at a time, as Lambda does.
# Threaded callers (the local gateway) are serialised here rather than mixing requests up.
_RESOLVE_LOCK = threading.Lock()


def entry(router: Router) -> tuple[APIGatewayRestResolver, Callable[[dict, Any], dict]]:
    """The module's `app` and its Lambda `handler`."""
    app = build(router)

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @tracer.capture_lambda_handler(capture_response=False)
    def _handle(event: dict, context: Any) -> dict:
        started = time.perf_counter()
        too_big = _oversize(event)
        if too_big is not None:
            result = proxy_error(too_big, request_id(event))
        else:
            with _RESOLVE_LOCK:
                result = app.resolve(event, context)
        _route_metrics(event, int(result.get("statusCode", 500)), started)
        return result

    def handler(event: dict, context: Any = None) -> dict:
        return _handle(event, context if context is not None else _LocalContext())

    handlers.loaded()
    return app, handler
