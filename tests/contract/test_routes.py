"""maas_contract.routes: matching a request to its route the way API Gateway matches resources.

- Scopes: "the method invocation is authorized if any method scope matches a claimed scope in
  the access token" (authorizationScopes,
  https://docs.aws.amazon.com/apigateway/latest/api/API_Method.html).
- Resources, path parameters and greedy `{param+}` variables, which take the rest of the path:
  https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-method-settings-method-request.html
"""

from __future__ import annotations

import pytest

from maas_contract.routes import OpenApiError, RouteTable


def _operation(group: str) -> dict:
    return {"tags": [group], "security": [{"oauth2": ["maas/invoke"]}]}


SCHEMES = {
    "securitySchemes": {
        "oauth2": {"type": "oauth2"},
        "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    }
}


def test_routes_pool_scopes_and_honour_the_api_key_scheme():
    document = {
        "components": SCHEMES,
        "paths": {
            "/v1/models/{model}": {
                "get": {
                    "tags": ["registry"],
                    "security": [
                        {"oauth2": ["maas/invoke"], "apiKey": []},
                        {"oauth2": ["maas/admin"], "apiKey": []},
                    ],
                }
            },
            "/v1/open": {"get": {"tags": ["meta"], "security": [{"oauth2": []}]}},
        },
    }

    table = RouteTable.from_document(document)

    route, params = table.resolve("GET", "/v1/models/digits")
    assert route.group == "registry" and route.path == "/v1/models/{model}"
    assert params == {"model": "digits"}
    assert route.scopes == {"maas/invoke", "maas/admin"} and route.api_key_required
    open_route, _ = table.resolve("GET", "/v1/open")
    assert not open_route.api_key_required and open_route.scopes == frozenset()
    assert table.resolve("POST", "/v1/models/digits") is None
    assert table.resolve("GET", "/v1/models/digits/extra") is None
    assert table.groups() == {"registry", "meta"}


def test_a_literal_beats_a_parameter_which_beats_a_greedy_parameter():
    document = {
        "paths": {
            "/v1/files/{key+}": {"get": _operation("greedy")},
            "/v1/files/{name}": {"get": _operation("param")},
            "/v1/files/latest": {"get": _operation("literal")},
        }
    }

    table = RouteTable.from_document(document)

    assert table.resolve("GET", "/v1/files/latest")[0].group == "literal"
    assert table.resolve("GET", "/v1/files/a%20b")[1] == {"name": "a b"}
    greedy, params = table.resolve("GET", "/v1/files/a/b/c.txt")
    assert greedy.group == "greedy" and params == {"key": "a/b/c.txt"}
    assert (
        table.resolve("GET", "/v1/files") is None
    )  # a greedy parameter takes one segment at least


def test_without_an_api_key_scheme_every_route_sits_behind_the_usage_plan():
    table = RouteTable.from_document({"paths": {"/v1/x": {"get": _operation("meta")}}})

    assert table.resolve("GET", "/v1/x")[0].api_key_required


def test_operation_without_a_tag_is_refused():
    with pytest.raises(OpenApiError, match="no tag"):
        RouteTable.from_document({"paths": {"/x": {"get": {"security": []}}}})
