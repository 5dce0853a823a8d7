"""The local gateway serves the API description as interactive docs at /docs: offline, beside
the API (no key, no token), and only to this machine's programs and its own pages."""

from __future__ import annotations

import re

import requests

from maas_local.api_docs import ASSETS
from maas_local.tokens import TOKEN_PATH


def test_the_docs_page_loads_swagger_ui_from_the_gateway_itself(start_gateway):
    gateway = start_gateway()

    page = requests.get(f"{gateway.url}/docs", timeout=10)

    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    sources = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
    assert sources and all(s.startswith("/docs/") for s in sources), sources  # no CDN
    for source in sources:
        asset = requests.get(gateway.url + source, timeout=10)
        assert asset.status_code == 200, source
        assert asset.content


def test_the_docs_page_links_to_the_model_list(start_gateway):
    gateway = start_gateway()

    page = requests.get(f"{gateway.url}/docs", timeout=10).text

    assert 'href="#/registry/listModels"' in page


def test_the_docs_document_names_this_gateway_as_server_and_token_endpoint(start_gateway):
    gateway = start_gateway()

    served = requests.get(f"{gateway.url}/docs/openapi.json", timeout=10)

    assert served.status_code == 200
    document = served.json()
    assert document["servers"] == [{"url": gateway.url, "description": "this local stack"}]
    assert "paths" in document


def test_the_served_token_url_is_the_gateways_own():
    from maas_local.api_docs import ApiDocs
    from tests.handlers.support import ROOT

    docs = ApiDocs(ROOT / "openapi.json")

    document = docs.served("http://localhost:5001")

    flow = document["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "http://localhost:5001" + TOKEN_PATH


def test_only_the_listed_swagger_files_are_served(start_gateway):
    gateway = start_gateway()

    assert set(ASSETS) >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for path in ("/docs/index.html", "/docs/..%2F..%2Fpyproject.toml", "/docs/nope.js"):
        assert requests.get(gateway.url + path, timeout=10).status_code == 404, path


def test_the_docs_refuse_a_foreign_host_and_another_origin(start_gateway):
    gateway = start_gateway()

    rebound = requests.get(f"{gateway.url}/docs", headers={"Host": "evil.example"}, timeout=10)
    cross = requests.get(
        f"{gateway.url}/docs/openapi.json",
        headers={"Origin": "https://evil.example"},
        timeout=10,
    )

    assert rebound.status_code == 403
    assert cross.status_code == 403


def test_the_api_behind_the_docs_still_needs_a_key(start_gateway):
    gateway = start_gateway()

    same_origin = {"Origin": gateway.url}
    answer = requests.get(f"{gateway.url}/v1/models", headers=same_origin, timeout=10)

    assert answer.status_code == 403
