"""The API's routes, read from the committed `openapi.json`: the one table that API Gateway's
methods (infra), the local gateway and the Lambda entry points are all built from.

Each operation's first tag names its route group, which is also its Lambda function and its
handler package (`handlers/<group>/`). Its `security` names the OAuth2 scopes; API Gateway's
`authorizationScopes` admit a token that carries ANY of them, so the scopes of all of an
operation's security requirements are pooled. Paths match the way API Gateway matches
resources: segment by segment, a literal beats `{param}`, which beats a greedy `{param+}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

# The methods an OpenAPI path item may hold that API Gateway can route.
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
# The route groups of the real API: one Lambda function and one handlers/ package each.
ROUTE_GROUPS = ("predict", "registry", "deployments", "training_jobs", "meta", "openai")
# Groups whose function streams its answer: an ASGI app (`handlers/<group>/app.py`, `app`) that
# the AWS Lambda Web Adapter runs in response-stream mode, behind an API Gateway integration
# with responseTransferMode STREAM. The local gateway runs the same app the same way.
STREAMING_GROUPS = frozenset({"openai"})
# The function that SageMaker's state-change events reach (through EventBridge, not the API).
EVENTS_GROUP = "events"
INVOKE_SCOPE = "maas/invoke"
ADMIN_SCOPE = "maas/admin"
KNOWN_SCOPES = (INVOKE_SCOPE, ADMIN_SCOPE)
HANDLERS_PACKAGE = "handlers"

# The API's binaryMediaTypes: every body passes as bytes (base64 to Lambda and back). Triton's
# HTTP client sends binary tensors with no Content-Type, which API Gateway reads as
# application/json, so nothing narrower than */* lets them through intact.
# https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-payload-encodings.html
# https://docs.aws.amazon.com/apigateway/latest/developerguide/integration-passthrough-behaviors.html
BINARY_MEDIA_TYPES = ("*/*",)

_PARAM = re.compile(r"^\{([^}+]+)(\+?)\}$")


class OpenApiError(ValueError):
    """openapi.json cannot be turned into routes; the message says why."""


def handler_module(group: str, package: str = HANDLERS_PACKAGE) -> str:
    """The module whose `handler` is the group's Lambda entry point: its routes module
    (for `events`, the module that routes EventBridge's detail-types)."""
    return f"{package}.{group}.routes"


def handler_entry(group: str) -> str:
    """The Lambda `Handler` setting of the group's function."""
    return f"{handler_module(group)}.handler"


def function_suffix(group: str) -> str:
    """The group's part of its function name: `{prefix}-{suffix}`."""
    return group.replace("_", "-")


@dataclass(frozen=True)
class Route:
    method: str  # upper case
    path: str  # the resource template, e.g. /v1/models/{model}/predict
    group: str
    scopes: frozenset[str] = frozenset()  # any one of them suffices
    authorized: bool = True  # needs a bearer token
    api_key_required: bool = True
    required_query: tuple[str, ...] = ()
    required_headers: tuple[str, ...] = ()
    body_types: tuple[str, ...] = ()  # request body content types, empty without a body
    operation_id: str | None = None
    _segments: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def json_only_body(self) -> bool:
        return self.body_types == ("application/json",)

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters when `path` falls under this resource; None otherwise."""
        parts = _split(path)
        params: dict[str, str] = {}
        for index, segment in enumerate(self._segments):
            found = _PARAM.match(segment)
            if found and found.group(2):  # {name+}: greedy, takes the rest
                if index >= len(parts):
                    return None
                params[found.group(1)] = "/".join(parts[index:])
                return params
            if index >= len(parts):
                return None
            if found:
                params[found.group(1)] = unquote(parts[index])
            elif segment != parts[index]:
                return None
        return params if len(parts) == len(self._segments) else None

    @property
    def specificity(self) -> tuple[int, ...]:
        return tuple(_rank(segment) for segment in self._segments)


class RouteTable:
    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = sorted(routes, key=lambda route: route.specificity, reverse=True)

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> RouteTable:
        return cls(routes_from_document(doc))

    @classmethod
    def from_file(cls, path: Path) -> RouteTable:
        return cls(load_routes(path))

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The most specific route for method+path; None when no resource/method matches."""
        for route in self.routes:
            if route.method != method.upper():
                continue
            params = route.match(path)
            if params is not None:
                return route, params
        return None

    def groups(self) -> set[str]:
        return {route.group for route in self.routes}


def load_routes(path: Path) -> list[Route]:
    if not path.is_file():
        raise OpenApiError(
            f"{path} is missing. It is generated from handlers/ (`python -m handlers.api`); "
            "generate it before synthesising, so the API matches the handlers."
        )
    return routes_from_document(json.loads(path.read_text()))


def routes_from_document(doc: dict[str, Any]) -> list[Route]:
    routes = []
    for path, item in sorted(doc.get("paths", {}).items()):
        shared = item.get("parameters", [])
        for method in HTTP_METHODS:
            if method in item:
                routes.append(_route(doc, path, method, item[method], shared))
    if not routes:
        raise OpenApiError("openapi.json has no operations")
    return routes


def require_deployable(routes: Iterable[Route], groups: Collection[str] = ROUTE_GROUPS) -> None:
    """What API Gateway needs on top of parsing: a known group, and OAuth2 scopes on every
    route, all of them scopes the user pool's resource server defines."""
    for route in routes:
        where = f"{route.method} {route.path}"
        if route.group not in groups:
            raise OpenApiError(f"{where}: first tag must be one of {tuple(groups)}")
        if not route.scopes:
            raise OpenApiError(f"{where}: no OAuth2 scopes; every route must require one")
        unknown = route.scopes - set(KNOWN_SCOPES)
        if unknown:
            raise OpenApiError(f"{where}: unknown scopes {sorted(unknown)}")


def binary_media_types(routes: Iterable[Route]) -> list[str]:
    """Body types API Gateway must pass through as bytes (base64 to Lambda), e.g. npy arrays."""
    types = {media for route in routes for media in route.body_types}
    return sorted(t for t in types if t != "application/json" and not t.startswith("text/"))


def _route(doc: dict, path: str, method: str, op: dict, shared: list) -> Route:
    tags = op.get("tags") or []
    if not tags:
        raise OpenApiError(f"{method.upper()} {path} has no tag naming its route group")
    schemes = doc.get("components", {}).get("securitySchemes", {})
    types = {name: scheme.get("type", "") for name, scheme in schemes.items()}
    security = op.get("security", doc.get("security")) or []
    scopes: set[str] = set()
    authorized = api_key_named = False
    for requirement in security:
        for scheme, scheme_scopes in requirement.items():
            if types.get(scheme) == "apiKey":
                api_key_named = True
            else:
                authorized = True
                scopes.update(scheme_scopes)
    params = [_resolve(doc, p) for p in [*shared, *op.get("parameters", [])]]
    content = _resolve(doc, op.get("requestBody", {})).get("content", {})
    return Route(
        method=method.upper(),
        path=path,
        group=tags[0],
        scopes=frozenset(scopes),
        authorized=authorized,
        # When the document declares no API-key scheme, every route sits behind the usage plan.
        api_key_required=api_key_named or "apiKey" not in types.values(),
        required_query=_required(params, "query"),
        required_headers=_required(params, "header"),
        body_types=tuple(sorted(content)),
        operation_id=op.get("operationId"),
        _segments=tuple(_split(path)),
    )


def _required(params: list[dict], location: str) -> tuple[str, ...]:
    return tuple(sorted(p["name"] for p in params if p.get("in") == location and p.get("required")))


def _resolve(doc: dict, node: dict) -> dict:
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


def _rank(segment: str) -> int:
    found = _PARAM.match(segment)
    if not found:
        return 2
    return 0 if found.group(2) else 1


def _split(path: str) -> list[str]:
    return [part for part in path.split("/") if part]
