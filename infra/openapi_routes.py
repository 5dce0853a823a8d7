"""Reads `openapi.json` as data: the API Gateway methods are built from it, so API and handlers
cannot drift. Each operation's first tag names its route group; its `security` names scopes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROUTE_GROUPS = ("predict", "registry", "deployments", "training_jobs", "meta")
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head")
KNOWN_SCOPES = ("maas/invoke", "maas/admin")


class OpenApiError(ValueError):
    """openapi.json cannot be turned into API Gateway methods; the message says why."""


@dataclass(frozen=True)
class Route:
    path: str
    method: str  # upper case
    group: str
    scopes: tuple[str, ...]
    required_query: tuple[str, ...]
    required_headers: tuple[str, ...]
    body_types: tuple[str, ...]  # request body content types, empty without a body
    operation_id: str | None = None

    @property
    def json_only_body(self) -> bool:
        return self.body_types == ("application/json",)


def load_routes(path: Path) -> list[Route]:
    if not path.is_file():
        raise OpenApiError(
            f"{path} is missing. It is generated from handlers/ (see docs/interfaces.md); "
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


def _route(doc: dict, path: str, method: str, op: dict, shared: list) -> Route:
    where = f"{method.upper()} {path}"
    tags = op.get("tags") or []
    if not tags or tags[0] not in ROUTE_GROUPS:
        raise OpenApiError(f"{where}: first tag must be one of {ROUTE_GROUPS}, got {tags}")
    security = op.get("security", doc.get("security"))
    scopes = sorted({s for req in security or [] for names in req.values() for s in names})
    if not scopes:
        raise OpenApiError(f"{where}: no OAuth2 scopes; every route must require one")
    unknown = set(scopes) - set(KNOWN_SCOPES)
    if unknown:
        raise OpenApiError(f"{where}: unknown scopes {sorted(unknown)}")
    params = [_resolve(doc, p) for p in [*shared, *op.get("parameters", [])]]
    content = _resolve(doc, op.get("requestBody", {})).get("content", {})
    return Route(
        path=path,
        method=method.upper(),
        group=tags[0],
        scopes=tuple(scopes),
        required_query=_required(params, "query"),
        required_headers=_required(params, "header"),
        body_types=tuple(sorted(content)),
        operation_id=op.get("operationId"),
    )


def _required(params: list[dict], location: str) -> tuple[str, ...]:
    return tuple(sorted(p["name"] for p in params if p.get("in") == location and p.get("required")))


def binary_media_types(routes: list[Route]) -> list[str]:
    """Body types API Gateway must pass through as bytes (base64 to Lambda), e.g. npy arrays."""
    types = {t for r in routes for t in r.body_types}
    return sorted(t for t in types if t != "application/json" and not t.startswith("text/"))


def _resolve(doc: dict, node: dict) -> dict:
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target
