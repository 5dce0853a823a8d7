"""Routes from the committed openapi.json, matched the way API Gateway matches resources.

Each operation's first tag names the handler module; its `security` names the OAuth2 scopes.
API Gateway's `authorizationScopes` admit a token that carries ANY of the listed scopes, so the
scopes of all of an operation's security requirements are pooled.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_PARAM = re.compile(r"^\{([^}+]+)(\+?)\}$")


@dataclass(frozen=True)
class Route:
    method: str
    resource: str  # the path template, e.g. /v1/models/{model}/predict
    module: str  # handler module, e.g. predict
    authorized: bool = True  # needs a bearer token
    scopes: frozenset[str] = field(default_factory=frozenset)  # any one of them suffices
    api_key_required: bool = True
    _segments: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def match(self, path: str) -> dict[str, str] | None:
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
        """Segment by segment, a literal beats a parameter, which beats a greedy parameter."""
        return tuple(_rank(segment) for segment in self._segments)


def _rank(segment: str) -> int:
    found = _PARAM.match(segment)
    if not found:
        return 2
    return 0 if found.group(2) else 1


def _split(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


def _security_of(operation: dict[str, Any], spec: dict[str, Any]) -> list[dict[str, list[str]]]:
    security = operation.get("security", spec.get("security"))
    return list(security) if security is not None else []


def _scheme_types(spec: dict[str, Any]) -> dict[str, str]:
    schemes = spec.get("components", {}).get("securitySchemes", {})
    return {name: scheme.get("type", "") for name, scheme in schemes.items()}


def route_from_operation(
    method: str, resource: str, operation: dict[str, Any], spec: dict[str, Any]
) -> Route:
    tags = operation.get("tags") or []
    if not tags:
        raise ValueError(f"{method.upper()} {resource} has no tag naming its handler module")
    types = _scheme_types(spec)
    security = _security_of(operation, spec)
    scopes: set[str] = set()
    authorized = False
    api_key_named = False
    for requirement in security:
        for scheme, scheme_scopes in requirement.items():
            if types.get(scheme) == "apiKey":
                api_key_named = True
            else:
                authorized = True
                scopes.update(scheme_scopes)
    has_api_key_scheme = "apiKey" in types.values()
    return Route(
        method=method.upper(),
        resource=resource,
        module=tags[0],
        authorized=authorized,
        scopes=frozenset(scopes),
        # When the spec declares no API-key scheme, every route sits behind the usage plan.
        api_key_required=api_key_named or not has_api_key_scheme,
        _segments=tuple(_split(resource)),
    )


class RouteTable:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = sorted(routes, key=lambda r: r.specificity, reverse=True)

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> RouteTable:
        routes = [
            route_from_operation(method, resource, operation, spec)
            for resource, item in spec.get("paths", {}).items()
            for method, operation in item.items()
            if method in HTTP_METHODS
        ]
        return cls(routes)

    @classmethod
    def from_file(cls, path: Path) -> RouteTable:
        return cls.from_spec(json.loads(path.read_text()))

    def resolve(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The most specific route for method+path; None when no resource/method matches."""
        for route in self.routes:
            if route.method != method.upper():
                continue
            params = route.match(path)
            if params is not None:
                return route, params
        return None

    def modules(self) -> set[str]:
        return {route.module for route in self.routes}
