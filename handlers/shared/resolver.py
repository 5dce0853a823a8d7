"""The resolver every route group builds around its routes, and the Lambda entry point around it:
scopes first, then content type, then pydantic's validation; every error rendered once, in
maas_contract.errors' one body.

Each execution environment serves one request at a time (Lambda's model, and the local
gateway's pool of processes), which Powertools relies on: it keeps the request being resolved
on the resolver.
"""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import Callable, Iterable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Route, Router
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import (
    APIKey,
    APIKeyIn,
    OAuth2,
    OAuthFlowClientCredentials,
    OAuthFlows,
)
from aws_lambda_powertools.logging import correlation_paths

from handlers.shared import aws
from handlers.shared.errors import ApiError, forbidden, proxy_error
from handlers.shared.observability import logger, route_metrics, tracer
from maas_contract.routes import ADMIN_SCOPE, INVOKE_SCOPE
from maas_contract.settings import MisconfiguredError

OAUTH_SCHEME = "oauth2"
API_KEY_SCHEME = "apiKey"
# OpenAPI security requirements: alternatives are OR-ed, schemes inside one are AND-ed.
ADMIN: list[dict[str, list[str]]] = [{OAUTH_SCHEME: [ADMIN_SCOPE], API_KEY_SCHEME: []}]
INVOKE: list[dict[str, list[str]]] = [
    {OAUTH_SCHEME: [INVOKE_SCOPE], API_KEY_SCHEME: []},
    {OAUTH_SCHEME: [ADMIN_SCOPE], API_KEY_SCHEME: []},
]
JSON_TYPES = ("application/json",)
MAX_BODY_BYTES = 6_291_456  # SageMaker's real-time InvokeEndpoint payload limit (6 MiB)

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def security_schemes() -> dict[str, Any]:
    flow = OAuthFlowClientCredentials(
        tokenUrl="/oauth2/token",
        scopes={INVOKE_SCOPE: "call models", ADMIN_SCOPE: "manage models, deployments, jobs"},
    )
    return {
        OAUTH_SCHEME: OAuth2(flows=OAuthFlows(clientCredentials=flow)),
        API_KEY_SCHEME: APIKey.model_validate({"name": "x-api-key", "in": APIKeyIn.header}),
    }


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


def canonical_media_type(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its Content-Type's media type in lower case, parameters kept.

    Media types are case-insensitive (RFC 9110 §8.3.1): `APPLICATION/JSON` is JSON. Powertools
    compares them case-sensitively, so the handlers see the canonical spelling.
    """
    headers = event.get("headers") or {}
    name = next((k for k in headers if k.lower() == "content-type"), None)
    if name is None or not isinstance(headers[name], str):
        return event
    kind, sep, params = headers[name].partition(";")
    canonical = kind.strip().lower() + sep + params
    if canonical == headers[name]:
        return event
    fixed = {k: v for k, v in headers.items() if k != name}
    fixed["content-type"] = canonical
    multi_headers = event.get("multiValueHeaders") or {}
    multi = {k: v for k, v in multi_headers.items() if k.lower() != "content-type"}
    multi["content-type"] = [canonical]
    return {**event, "headers": fixed, "multiValueHeaders": multi}


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


def resolver(router: Router) -> APIGatewayRestResolver:
    """A resolver serving `router`'s routes, with the shared guard and error rendering."""
    app = APIGatewayRestResolver(enable_validation=True)
    app.use(middlewares=[_guard_middleware])
    app.include_router(router)

    def render(error: ApiError) -> Response:
        body = error.body(request_id(app.current_event.raw_event))
        return Response(error.status, content_types.APPLICATION_JSON, body, headers=error.headers)

    def invalid(message: str) -> Response:
        try:
            guard(app)  # 403 and 415 outrank 400, as they would before validation
        except ApiError as denied:
            return render(denied)
        return render(ApiError(400, "ValidationError", message))

    @app.exception_handler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return render(exc)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        return invalid(_validation_message(exc))

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported(exc: RequestUnsupportedContentType) -> Response:
        # Body validation runs before the guard middleware: the guard decides here (403 first).
        try:
            guard(app)
        except ApiError as refused:
            return render(refused)
        return render(ApiError(415, "UnsupportedMediaType", "this route takes application/json"))

    @app.exception_handler(ValueError)
    def _unparsable_form(exc: ValueError) -> Response:
        # Powertools parses a multipart/form-data body before the guard runs, and a body
        # without its boundary raises ValueError there: on a JSON route that is a 415.
        if not media_type(app.current_event.raw_event).startswith("multipart/"):
            raise exc
        try:
            guard(app)
        except ApiError as refused:
            return render(refused)
        raise exc

    @app.exception_handler(UnicodeDecodeError)
    def _undecodable(exc: UnicodeDecodeError) -> Response:
        # A body that is not UTF-8 arrives base64-encoded; JSON routes cannot read it.
        return invalid(f"body is not UTF-8 encoded JSON: {exc.reason}")

    @app.exception_handler(RecursionError)
    def _too_deep(exc: RecursionError) -> Response:
        # json.loads gives up on nesting deeper than the interpreter's recursion limit.
        return invalid("the JSON body is nested too deeply")

    @app.exception_handler(MisconfiguredError)
    def _misconfigured(exc: MisconfiguredError) -> Response:
        logger.error("misconfigured", extra={"reason": str(exc)})
        return render(ApiError(500, "InternalError", "the service is misconfigured"))

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return render(ApiError(500, "InternalError", "internal error"))

    @app.not_found
    def _no_route(exc: Exception) -> Response:
        return render(ApiError(404, "NotFound", "no such route"))

    return app


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


def api_entry(resolve: Handler) -> Handler:
    """Wraps a route group's `handler`: logging context and tracing, the body size limit
    (checked before anything parses the body), and the request's metrics."""

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
    @tracer.capture_lambda_handler(capture_response=False)
    @functools.wraps(resolve)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        started = time.perf_counter()
        too_big = _oversize(event)
        if too_big:
            result = proxy_error(too_big, request_id(event))
        else:
            result = resolve(canonical_media_type(event), context)
        route_metrics(event, int(result.get("statusCode", 500)), started)
        return result

    return handler


def warm_before_snapshot(
    services: Iterable[str], app: APIGatewayRestResolver | None = None
) -> Callable[[], None]:
    """Registers, with the Lambda runtime's before-snapshot hook, a warm-up that creates the
    function's AWS clients and builds every route's validators, so that a restored function
    does neither on its first request. Returns the warm-up.

    The hook comes from `snapshot_restore_py`, which Lambda's managed Python runtimes include
    (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html).
    Elsewhere (tests, the local gateway) that module is absent and nothing is registered.
    Clients made before the snapshot stay good after a restore: a SnapStart function gets its
    credentials from the container credentials provider, which botocore refreshes
    (https://docs.aws.amazon.com/lambda/latest/dg/snapstart-activate.html#snapstart-credentials).
    """
    chosen = tuple(services)

    def warm() -> None:
        aws.warm(chosen)
        if app is not None:  # generating the document builds each route's validation models
            app.get_openapi_schema(security_schemes=security_schemes())

    try:
        hooks = importlib.import_module("snapshot_restore_py")
    except ModuleNotFoundError:
        return warm
    hooks.register_before_snapshot(warm)
    return warm
