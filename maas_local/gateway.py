"""The local API gateway: what API Gateway (REST) enforces in the cloud, in front of the handlers.

Order of checks, as API Gateway applies them: payload size, resource/method, the Cognito
authorizer (token, then scopes), the API key and its usage plan, then the integration with its
29-second timeout. `python -m maas_local.gateway_server` serves it over HTTP.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from maas_local.invoker import HandlerInvoker, IntegrationTimeout
from maas_local.proxy_event import (
    Caller,
    HttpRequest,
    HttpResponse,
    MalformedProxyResponse,
    build_event,
    parse_proxy_response,
)
from maas_local.routing import Route, RouteTable
from maas_local.tokens import InvalidToken, TokenVerifier, authorizer_claims
from maas_local.usage_plans import UsagePlans, Verdict

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
INTEGRATION_TIMEOUT_S = 29.0
log = logging.getLogger("maas_local.gateway")


@dataclass(frozen=True)
class GatewaySettings:
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    integration_timeout_s: float = INTEGRATION_TIMEOUT_S


def _unauthorized() -> HttpResponse:
    error_type = {"x-amzn-ErrorType": "UnauthorizedException"}
    return HttpResponse.message(401, "Unauthorized", **error_type)


def _forbidden(message: str = "Forbidden") -> HttpResponse:
    return HttpResponse.message(403, message, **{"x-amzn-ErrorType": "ForbiddenException"})


def _too_many(message: str) -> HttpResponse:
    return HttpResponse.message(429, message, **{"x-amzn-ErrorType": "TooManyRequestsException"})


class Gateway:
    def __init__(
        self,
        routes: RouteTable,
        verifier: TokenVerifier,
        plans: UsagePlans,
        invoker: HandlerInvoker,
        settings: GatewaySettings | None = None,
    ) -> None:
        self.routes = routes
        self.verifier = verifier
        self.plans = plans
        self.invoker = invoker
        self.settings = settings or GatewaySettings()

    def handle(self, request: HttpRequest) -> HttpResponse:
        request_id = str(uuid.uuid4())
        response = self._dispatch(request, request_id)
        response.headers += [("x-amzn-RequestId", request_id), ("x-amz-apigw-id", request_id[:16])]
        return response

    def too_large(self) -> HttpResponse:
        return HttpResponse.message(413, "Request Too Long")

    def _dispatch(self, request: HttpRequest, request_id: str) -> HttpResponse:
        if len(request.body) > self.settings.max_payload_bytes:
            return self.too_large()
        resolved = self.routes.resolve(request.method, request.path)
        if resolved is None:
            # API Gateway's answer for a resource or method that does not exist.
            return _forbidden("Missing Authentication Token")
        route, path_params = resolved
        claims, denial = self._authorize(route, request)
        if denial is not None:
            return denial
        key_id, key_value, denial = self._meter(route, request)
        if denial is not None:
            return denial
        caller = Caller(claims=claims, api_key=key_value, api_key_id=key_id)
        event = build_event(request, route, path_params, caller, request_id)
        return self._integrate(route, event, request_id)

    def _authorize(
        self, route: Route, request: HttpRequest
    ) -> tuple[dict[str, str] | None, HttpResponse | None]:
        if not route.authorized:
            return None, None
        try:
            claims = self.verifier.verify(request.header("authorization"))
        except InvalidToken as error:
            log.info("token rejected: %s", error)
            return None, _unauthorized()
        granted = set(str(claims.get("scope", "")).split())
        if route.scopes and not (route.scopes & granted):
            return None, _forbidden("User is not authorized to access this resource")
        return authorizer_claims(claims), None

    def _meter(
        self, route: Route, request: HttpRequest
    ) -> tuple[str | None, str | None, HttpResponse | None]:
        presented = request.header("x-api-key")
        if not route.api_key_required:
            return None, None, None
        verdict, key = self.plans.admit(presented)
        if verdict is Verdict.FORBIDDEN or key is None:
            return None, None, _forbidden()
        if verdict is Verdict.THROTTLED:
            return None, None, _too_many("Too Many Requests")
        if verdict is Verdict.QUOTA_EXCEEDED:
            return None, None, _too_many("Limit Exceeded")
        return key.id, key.value, None

    def _integrate(self, route: Route, event: dict, request_id: str) -> HttpResponse:
        try:
            result = self.invoker.invoke(
                route.module, event, request_id, self.settings.integration_timeout_s
            )
            return parse_proxy_response(result)
        except IntegrationTimeout:
            return HttpResponse.message(504, "Endpoint request timed out")
        except MalformedProxyResponse as error:
            log.error("%s: malformed proxy response: %s", route.module, error)
        except Exception:
            log.exception("%s: handler raised", route.module)
        return HttpResponse.message(502, "Internal server error")
