"""The local API gateway: what API Gateway (REST) enforces in the cloud, in front of the handlers.

Order of checks, as API Gateway applies them: payload size, resource/method, the Cognito
authorizer (token, then scopes), the API key and its usage plan, then the integration with its
29-second timeout. Its own refusals carry the one error body of maas_contract.errors, with the
status and `code` the cloud API's gateway responses give. `python -m maas_local.gateway_server`
serves it over HTTP.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass

from maas_contract import errors
from maas_contract.errors import GatewayResponse
from maas_contract.routes import BINARY_MEDIA_TYPES, STREAMING_GROUPS, Route, RouteTable
from maas_local.invoker import (
    DEFAULT_CONCURRENCY,
    FunctionError,
    HandlerInvoker,
    IntegrationTimeout,
)
from maas_local.proxy_event import (
    Caller,
    HttpRequest,
    HttpResponse,
    MalformedProxyResponse,
    build_event,
    matches_binary,
    parse_proxy_response,
)
from maas_local.streaming import StreamedResponse, StreamLimits
from maas_local.tokens import InvalidToken, TokenVerifier, authorizer_claims
from maas_local.usage_plans import UsagePlans, Verdict

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# Lambda's synchronous invocation takes an event of at most 6 MB ("Request must be smaller than
# 6291456 bytes"): https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html. With every
# media type binary (`*/*`, for Triton's binary tensors), a body travels base64-encoded in the
# event, so a body past about 4.7 MB is refused here, by API Gateway, with its 413.
LAMBDA_EVENT_BYTES = 6_291_456
INTEGRATION_TIMEOUT_S = 29.0
# A body sent without a length (chunked): not one of API Gateway's response types, so the
# DEFAULT_4XX response renders it, as it renders any 4xx without a type of its own.
LENGTH_REQUIRED = GatewayResponse("DEFAULT_4XX", 411, "Length Required")
# The x-amzn-ErrorType header API Gateway sends beside some of its refusals.
_ERROR_TYPES = {
    errors.UNAUTHORIZED.response_type: "UnauthorizedException",
    errors.ACCESS_DENIED.response_type: "ForbiddenException",
    errors.INVALID_API_KEY.response_type: "ForbiddenException",
    errors.MISSING_AUTHENTICATION_TOKEN.response_type: "ForbiddenException",
    errors.THROTTLED.response_type: "TooManyRequestsException",
    errors.QUOTA_EXCEEDED.response_type: "TooManyRequestsException",
}
log = logging.getLogger("maas_local.gateway")


@dataclass(frozen=True)
class GatewaySettings:
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    integration_timeout_s: float = INTEGRATION_TIMEOUT_S
    # The execution environments each function may run at once: its reserved concurrency.
    function_concurrency: int = DEFAULT_CONCURRENCY
    # The API's binaryMediaTypes, as the cloud API is configured (infra.front_door).
    binary_media_types: tuple[str, ...] = BINARY_MEDIA_TYPES
    # The route groups whose integration streams (responseTransferMode STREAM), and its limits.
    streaming_groups: frozenset[str] = STREAMING_GROUPS
    stream_limits: StreamLimits = StreamLimits()


def refusal(kind: GatewayResponse, request_id: str) -> HttpResponse:
    """One of API Gateway's own responses, in the one error body."""
    error_type = _ERROR_TYPES.get(kind.response_type)
    headers = [("x-amzn-ErrorType", error_type)] if error_type else []
    return HttpResponse.of_json(kind.status, kind.body(request_id), *headers)


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

    def handle(self, request: HttpRequest) -> HttpResponse | StreamedResponse:
        request_id = str(uuid.uuid4())
        response = self._dispatch(request, request_id)
        response.headers += _stamp(request_id)
        return response

    def refuse(self, kind: GatewayResponse) -> HttpResponse:
        """A refusal given before the request could be read whole (413, 411)."""
        request_id = str(uuid.uuid4())
        return _stamped(refusal(kind, request_id), request_id)

    def _dispatch(self, request: HttpRequest, request_id: str) -> HttpResponse | StreamedResponse:
        if len(request.body) > self.settings.max_payload_bytes:
            return refusal(errors.REQUEST_TOO_LARGE, request_id)
        resolved = self.routes.resolve(request.method, request.path)
        if resolved is None:
            # API Gateway's answer for a resource or method that does not exist.
            return refusal(errors.MISSING_AUTHENTICATION_TOKEN, request_id)
        route, path_params = resolved
        claims, denial = self._authorize(route, request)
        if denial is not None:
            return refusal(denial, request_id)
        key_id, key_value, denial = self._meter(route, request)
        if denial is not None:
            return refusal(denial, request_id)
        caller = Caller(claims=claims, api_key=key_value, api_key_id=key_id)
        binary_types = self.settings.binary_media_types
        event = build_event(request, route, path_params, caller, request_id, binary_types)
        if len(json.dumps(event).encode()) > LAMBDA_EVENT_BYTES:
            return refusal(errors.REQUEST_TOO_LARGE, request_id)
        if route.group in self.settings.streaming_groups:
            return self._stream(route, request, event["requestContext"], request_id)
        binary_answer = matches_binary(request.header("accept"), binary_types)
        return self._integrate(route, event, request_id, binary_answer)

    def _authorize(
        self, route: Route, request: HttpRequest
    ) -> tuple[dict[str, str] | None, GatewayResponse | None]:
        if not route.authorized:
            return None, None
        try:
            claims = self.verifier.verify(request.header("authorization"))
        except InvalidToken as error:
            log.info("token rejected: %s", error)
            return None, errors.UNAUTHORIZED
        granted = set(str(claims.get("scope", "")).split())
        if route.scopes and not (route.scopes & granted):
            return None, errors.ACCESS_DENIED
        return authorizer_claims(claims), None

    def _meter(
        self, route: Route, request: HttpRequest
    ) -> tuple[str | None, str | None, GatewayResponse | None]:
        presented = request.header("x-api-key")
        if not route.api_key_required:
            return None, None, None
        verdict, key = self.plans.admit(presented)
        if verdict is Verdict.FORBIDDEN or key is None:
            return None, None, errors.INVALID_API_KEY
        if verdict is Verdict.THROTTLED:
            return None, None, errors.THROTTLED
        if verdict is Verdict.QUOTA_EXCEEDED:
            return None, None, errors.QUOTA_EXCEEDED
        return key.id, key.value, None

    def _integrate(
        self, route: Route, event: dict, request_id: str, binary_answer: bool
    ) -> HttpResponse:
        try:
            result = self.invoker.invoke(
                route.group, event, request_id, self.settings.integration_timeout_s
            )
            return parse_proxy_response(result, binary_answer)
        except IntegrationTimeout:
            return refusal(errors.INTEGRATION_TIMEOUT, request_id)
        except (FunctionError, MalformedProxyResponse) as error:
            log.error("%s: %s", route.group, error)
        except Exception:
            log.exception("%s: invocation failed", route.group)
        return refusal(errors.LAMBDA_FAILURE, request_id)

    def _stream(
        self, route: Route, request: HttpRequest, context: dict, request_id: str
    ) -> HttpResponse | StreamedResponse:
        """The streaming integration (maas_local.streaming). Before the headers arrive, its
        failures are answered as the buffered integration's are: 504 past the integration
        timeout, 502 when the function gives no answer."""
        try:
            return self.invoker.stream(route.group, request, context, self.settings.stream_limits)
        except IntegrationTimeout:
            return refusal(errors.INTEGRATION_TIMEOUT, request_id)
        except FunctionError as error:
            log.error("%s: %s", route.group, error)
        except Exception:
            log.exception("%s: invocation failed", route.group)
        return refusal(errors.LAMBDA_FAILURE, request_id)


def _stamped(response: HttpResponse, request_id: str) -> HttpResponse:
    response.headers += _stamp(request_id)
    return response


def _stamp(request_id: str) -> list[tuple[str, str]]:
    return [("x-amzn-RequestId", request_id), ("x-amz-apigw-id", request_id[:16])]
