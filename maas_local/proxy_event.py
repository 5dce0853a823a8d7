"""API Gateway REST proxy events (payload v1.0) in, proxy responses out."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from maas_contract.routes import BINARY_MEDIA_TYPES, Route
from maas_local.config import STAGE

ACCOUNT_ID = "123456789012"  # moto's default account, so ARNs agree
API_ID = "maaslocal0"
_JSON = ("Content-Type", "application/json")
# What API Gateway takes a request without a Content-Type to be.
# https://docs.aws.amazon.com/apigateway/latest/developerguide/integration-passthrough-behaviors.html
DEFAULT_MEDIA_TYPE = "application/json"


@dataclass
class HttpRequest:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"

    def header(self, name: str) -> str | None:
        """The last value of a header, matched case-insensitively, as API Gateway keeps it."""
        found = None
        for key, value in self.headers:
            if key.lower() == name.lower():
                found = value
        return found


@dataclass
class HttpResponse:
    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def of_json(cls, status: int, payload: Any, *headers: tuple[str, str]) -> HttpResponse:
        return cls(status, json.dumps(payload).encode(), [_JSON, *headers])


def _media(header: str | None) -> str:
    return (header or "").split(",")[0].split(";")[0].strip().lower() or DEFAULT_MEDIA_TYPE


def matches_binary(header: str | None, binary_media_types: Iterable[str]) -> bool:
    """Whether a Content-Type (or an Accept's first type) is one of the API's binaryMediaTypes,
    where `*` stands for any type or subtype, as API Gateway matches them. An absent header
    reads as application/json (for Accept too: the documentation names no other default).
    https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-payload-encodings.html
    """
    kind, _, sub = _media(header).partition("/")
    for pattern in binary_media_types:
        want_kind, _, want_sub = pattern.lower().partition("/")
        if want_kind in ("*", kind) and want_sub in ("*", sub):
            return True
    return False


def _single_and_multi(pairs: list[tuple[str, str]]) -> tuple[dict | None, dict | None]:
    if not pairs:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        single[key] = value
        multi.setdefault(key, []).append(value)
    return single, multi


@dataclass(frozen=True)
class Caller:
    """Who is calling, as the authorizer and the usage plan found them."""

    claims: dict[str, str] | None
    api_key: str | None
    api_key_id: str | None


def build_event(
    request: HttpRequest,
    route: Route,
    path_params: dict[str, str],
    caller: Caller,
    request_id: str,
    binary_media_types: Iterable[str] = BINARY_MEDIA_TYPES,
) -> dict[str, Any]:
    """The proxy event. A body whose Content-Type is a binary media type reaches the function
    base64-encoded, any other as UTF-8 text."""
    headers, multi_headers = _single_and_multi(request.headers)
    query, multi_query = _single_and_multi(parse_qsl(request.query, keep_blank_values=True))
    binary = matches_binary(request.header("content-type"), binary_media_types)
    if not request.body:
        body = None
    elif binary:
        body = base64.b64encode(request.body).decode("ascii")
    else:
        body = request.body.decode("utf-8", errors="replace")
    return {
        "resource": route.path,
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": request_context(request, route, caller, request_id),
        "body": body,
        "isBase64Encoded": binary and body is not None,
    }


def request_context(
    request: HttpRequest, route: Route, caller: Caller, request_id: str
) -> dict[str, Any]:
    """The event's requestContext: what the authorizer and the usage plan found (claims,
    identity.apiKeyId), which the Lambda Web Adapter also hands a web app, as its
    `x-amzn-request-context` header (maas_local.streaming)."""
    now = time.time()
    context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": API_ID,
        "domainName": request.header("host") or "127.0.0.1",
        "domainPrefix": API_ID,
        "extendedRequestId": request_id,
        "httpMethod": request.method,
        "identity": {
            "sourceIp": request.source_ip,
            "userAgent": request.header("user-agent"),
            "apiKey": caller.api_key,
            "apiKeyId": caller.api_key_id,
            "accountId": None,
            "caller": None,
            "user": None,
            "userArn": None,
        },
        "path": f"/{STAGE}{request.path}",
        "protocol": request.protocol,
        "requestId": request_id,
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "requestTimeEpoch": int(now * 1000),
        "resourceId": "local",
        "resourcePath": route.path,
        "stage": STAGE,
    }
    if caller.claims is not None:
        context["authorizer"] = {"claims": caller.claims}
    return context


class MalformedProxyResponse(ValueError):
    """The integration returned something API Gateway cannot turn into HTTP (502)."""


def parse_proxy_response(result: Any, binary: bool = True) -> HttpResponse:
    """The HTTP answer. A base64 body is decoded only when `binary`: the request's first Accept
    type is one of the binary media types; otherwise the base64 text goes out as it is."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        raise MalformedProxyResponse("integration response has no integer statusCode")
    body = result.get("body") or ""
    if not isinstance(body, str):
        raise MalformedProxyResponse("integration response body is not a string")
    decode = binary and result.get("isBase64Encoded")
    raw = base64.b64decode(body) if decode else body.encode("utf-8")
    headers: list[tuple[str, str]] = []
    multi = result.get("multiValueHeaders") or {}
    for name, values in multi.items():
        headers += [(name, str(v)) for v in values]
    for name, value in (result.get("headers") or {}).items():
        if name not in multi:
            headers.append((name, str(value)))
    return HttpResponse(result["statusCode"], raw, headers)
