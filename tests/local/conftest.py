"""Fixtures for the local stack's tests: a gateway in front of stand-in handlers, on a free port."""

from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from maas_local.gateway import GatewaySettings
from maas_local.gateway_server import build_server
from maas_local.tokens import create_issuer
from maas_local.usage_plans import ApiKey, UsagePlan, new_api_key, save_api_keys

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "fake_handlers_pkg"))

ANY_SCOPE = [{"cognito": ["maas/invoke", "maas/admin"]}]
ADMIN_ONLY = [{"cognito": ["maas/admin"]}]
TEST_TIMEOUT_S = 0.5
EVENT_TOKEN = "test-event-token"  # noqa: S105


def _operation(tag: str, security: list) -> dict:
    return {"tags": [tag], "security": security, "responses": {"200": {"description": "ok"}}}


FAKE_OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "fake", "version": "1"},
    "components": {
        "securitySchemes": {
            "cognito": {
                "type": "oauth2",
                "flows": {
                    "clientCredentials": {
                        "tokenUrl": "https://example.invalid/oauth2/token",
                        "scopes": {"maas/invoke": "invoke", "maas/admin": "admin"},
                    }
                },
            }
        }
    },
    "paths": {
        "/v1/echo/{name}": {
            "get": _operation("echo", ANY_SCOPE),
            "post": _operation("echo", ADMIN_ONLY),
        },
        "/v1/echo/latest": {"get": _operation("size", ANY_SCOPE)},
        "/v1/files/{key+}": {"get": _operation("echo", ANY_SCOPE)},
        "/v1/size": {"post": _operation("size", ANY_SCOPE)},
        "/v1/slow": {"get": _operation("slow", ANY_SCOPE)},
        "/v1/broken": {"get": _operation("broken", ANY_SCOPE)},
        "/v1/binary": {"get": _operation("binary", ANY_SCOPE)},
        "/v1/flaky": {"post": _operation("flaky", ANY_SCOPE)},
    },
}


@dataclass
class RunningGateway:
    url: str
    keys_dir: Path
    key: ApiKey  # generous plan
    tiny_quota_key: ApiKey  # 3 requests per day
    narrow_rate_key: ApiKey  # burst of 2, refills almost never
    server: object


@pytest.fixture
def fake_openapi(tmp_path: Path) -> Path:
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(FAKE_OPENAPI))
    return path


@pytest.fixture
def running_gateway(tmp_path: Path, fake_openapi: Path):
    keys_dir = tmp_path / "keys"
    create_issuer(keys_dir, "http://127.0.0.1/_local/issuer")
    key = new_api_key("default")
    tiny = new_api_key("tiny", UsagePlan(quota_limit=3))
    narrow = new_api_key("narrow", UsagePlan(rate_limit=0.001, burst_limit=2))
    save_api_keys(keys_dir, [key, tiny, narrow])
    server = build_server(
        "127.0.0.1",
        0,
        keys_dir=keys_dir,
        openapi=fake_openapi,
        handlers_package="maas_fake_handlers",
        settings=GatewaySettings(integration_timeout_s=TEST_TIMEOUT_S),
        event_token=EVENT_TOKEN,
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        yield RunningGateway(url, keys_dir, key, tiny, narrow, server)
    finally:
        server.shutdown()
        server.server_close()
        server.gateway.invoker.shutdown()
        if server.sink:
            server.sink.stop()
        thread.join(timeout=5)
