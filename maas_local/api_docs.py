"""The local gateway's interactive API docs: Swagger UI at /docs, offline.

Swagger UI's files come from the swagger-ui-py package (no CDN at run time). The page
reads /docs/openapi.json: the gateway's own API description with this gateway as its only
server and its own /oauth2/token as the token URL, so "Try it out" calls this stack.

Like /.well-known/jwks.json, these paths sit beside the API, not in it: they need no API key or
token (the page and the document are the files this package ships), and the loopback rules
still apply (maas_local.loopback: a loopback Host, no request from another origin). Every API
call the page makes is an ordinary, authorized request: "Authorize" takes the API key (the
`x-api-key` header) and the app client's id and secret, which Swagger UI exchanges at
/oauth2/token for a bearer token (client credentials, HTTP Basic), as with a Cognito domain.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from maas_local.proxy_event import HttpResponse
from maas_local.tokens import TOKEN_PATH

DOCS_PATH = "/docs"
DOCUMENT_PATH = DOCS_PATH + "/openapi.json"
INITIALIZER = "maas-docs.js"
# Swagger UI's files the page loads, and their types; nothing else is served from the package.
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "index.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
# The page runs only its own scripts and talks only to this gateway.
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_TEXT = ("Content-Type", "text/plain; charset=utf-8")
_PAGE = """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>maas API (local stack)</title>
    <link rel="stylesheet" href="{docs}/swagger-ui.css">
    <link rel="stylesheet" href="{docs}/index.css">
    <link rel="icon" type="image/png" href="{docs}/favicon-32x32.png" sizes="32x32">
  </head>
  <body>
    <p style="font-family: sans-serif; margin: 1em 2em">
      The local stack's API. <a href="#/registry/listModels">The model list</a>
      (GET /v1/models) is a good start. Every call needs "Authorize": the API key and the
      local app client (its id and secret are in the stack's keys folder, app_client.json).
    </p>
    <div id="swagger-ui"></div>
    <script src="{docs}/swagger-ui-bundle.js"></script>
    <script src="{docs}/swagger-ui-standalone-preset.js"></script>
    <script src="{docs}/{initializer}"></script>
  </body>
</html>
"""
_INITIALIZER = """window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "%s",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "BaseLayout"
  });
};
"""


def swagger_ui_files() -> Path:
    """Swagger UI's own files (5.24), as the swagger-ui-py package ships them; found without
    importing that package's web-framework glue."""
    import importlib.util

    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("swagger-ui-py is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


class ApiDocs:
    """Answers GET /docs and the files under it, for the description at `openapi`."""

    def __init__(self, openapi: Path) -> None:
        self._document = json.loads(openapi.read_text())

    def answer(self, path: str, host: str) -> HttpResponse | None:
        """The response for `path`, or None when it is not one of the docs' paths.

        `host` is the request's Host, which the loopback rules have checked already: the
        page's calls go to the origin the browser loaded it from."""
        if path in (DOCS_PATH, DOCS_PATH + "/"):
            page = _PAGE.format(docs=DOCS_PATH, initializer=INITIALIZER)
            return _static(page.encode(), "text/html; charset=utf-8")
        if path == DOCUMENT_PATH:
            return _static(json.dumps(self.served(f"http://{host}")).encode(), "application/json")
        name = path.removeprefix(DOCS_PATH + "/")
        if name == INITIALIZER:
            return _static((_INITIALIZER % DOCUMENT_PATH).encode(), ASSETS["swagger-ui-bundle.js"])
        if path.startswith(DOCS_PATH + "/") and name in ASSETS:
            try:
                return _static((swagger_ui_files() / name).read_bytes(), ASSETS[name])
            except ImportError:  # the `local` extra brings it
                return HttpResponse(503, b"Swagger UI is not installed", [_TEXT])
        if path.startswith(DOCS_PATH + "/"):
            return HttpResponse(404, b"not found", [_TEXT])
        return None

    def served(self, origin: str) -> dict[str, Any]:
        """The description as this gateway serves it: itself the one server, its own token
        endpoint the token URL."""
        document = copy.deepcopy(self._document)
        document["servers"] = [{"url": origin, "description": "this local stack"}]
        for scheme in document.get("components", {}).get("securitySchemes", {}).values():
            for flow in scheme.get("flows", {}).values():
                if "tokenUrl" in flow:
                    flow["tokenUrl"] = origin + TOKEN_PATH
        return document


def _static(body: bytes, content_type: str) -> HttpResponse:
    headers = [
        ("Content-Type", content_type),
        ("Content-Security-Policy", _CSP),
        ("X-Content-Type-Options", "nosniff"),
        ("Cache-Control", "no-store"),
    ]
    return HttpResponse(200, body, headers)
