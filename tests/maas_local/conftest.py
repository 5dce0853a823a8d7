"""Fixtures for the local stack's tests: a gateway in front of stand-in handlers, on a free port.

The stand-ins (fake_handlers_pkg/maas_fake_handlers: a package per route group whose `routes`
module holds the handler, as in handlers/) run in the gateway's execution environments, which
are processes of their own: they hand back what tests must see through files named in their
environment (FAKE_EVENTS_LOG, FAKE_HANDLER_STATE).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from maas_local.gateway import GatewaySettings
from maas_local.gateway_server import GatewayHTTPServer, build_server
from maas_local.invoker import HandlerInvoker
from maas_local.tokens import create_issuer
from maas_local.usage_plans import ApiKey, UsagePlan, new_api_key, save_api_keys

FAKE_HANDLERS_ROOT = Path(__file__).parent / "fake_handlers_pkg"
FAKE_HANDLERS = "maas_fake_handlers"
ANY_SCOPE = [{"cognito": ["maas/invoke", "maas/admin"]}]
ADMIN_ONLY = [{"cognito": ["maas/admin"]}]
TEST_TIMEOUT_S = 0.5
EVENT_TOKEN = "test-event-token"  # noqa: S105
# The stand-ins that answer within TEST_TIMEOUT_S (`reader` and `stranger` import boto3).
QUICK_STAND_INS = {"binary", "broken", "echo", "events", "flaky", "size", "slow"}


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
        "/v1/reader": {"get": _operation("reader", ANY_SCOPE)},
        "/v1/stranger": {"get": _operation("stranger", ANY_SCOPE)},
    },
}


@dataclass
class RunningGateway:
    url: str
    keys_dir: Path
    key: ApiKey  # generous plan
    tiny_quota_key: ApiKey  # 3 requests per day
    narrow_rate_key: ApiKey  # burst of 2, refills almost never
    server: GatewayHTTPServer
    events_log: Path  # what the fake events function received, one JSON line each

    def received_events(self) -> list[dict]:
        if not self.events_log.exists():
            return []
        return [json.loads(line) for line in self.events_log.read_text().splitlines()]


StartGateway = Callable[..., RunningGateway]


@pytest.fixture
def fake_openapi(tmp_path: Path) -> Path:
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(FAKE_OPENAPI))
    return path


@pytest.fixture
def start_gateway(tmp_path: Path, fake_openapi: Path, monkeypatch) -> Iterator[StartGateway]:
    """Starts gateways in front of the stand-in handlers; each stops when the test ends."""
    stops: list[Callable[[], None]] = []
    state = tmp_path / "handler-state"
    state.mkdir()
    # Read by the stand-ins, in their environments: the gateway passes its own environment on.
    monkeypatch.setenv("FAKE_HANDLER_STATE", str(state))
    monkeypatch.setenv("FAKE_EVENTS_LOG", str(tmp_path / "events.jsonl"))

    def start(settings: GatewaySettings | None = None, **options) -> RunningGateway:
        keys_dir = tmp_path / f"keys-{len(stops)}"
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
            handlers_package=FAKE_HANDLERS,
            handlers_root=FAKE_HANDLERS_ROOT,
            settings=settings or GatewaySettings(integration_timeout_s=TEST_TIMEOUT_S),
            event_token=EVENT_TOKEN,
            **options,
        )
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()

        def stop() -> None:
            server.shutdown()
            server.close()
            thread.join(timeout=5)

        stops.append(stop)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        events_log = tmp_path / "events.jsonl"
        return RunningGateway(url, keys_dir, key, tiny, narrow, server, events_log)

    try:
        yield start
    finally:
        for stop in stops:
            stop()


@pytest.fixture
def running_gateway(start_gateway: StartGateway) -> RunningGateway:
    """A gateway with a short integration timeout, one environment of each stand-in started,
    so that no test's first request spends its 0.5 s on a cold start."""
    gateway = start_gateway()
    gateway.server.gateway.invoker.preload(QUICK_STAND_INS)
    return gateway


@pytest.fixture
def fake_invoker() -> Iterator[Callable[..., HandlerInvoker]]:
    """Makes invokers of the stand-ins, without a gateway; each shuts down when the test ends."""
    made: list[HandlerInvoker] = []

    def make(**options) -> HandlerInvoker:
        made.append(HandlerInvoker(FAKE_HANDLERS, code_root=FAKE_HANDLERS_ROOT, **options))
        return made[-1]

    try:
        yield make
    finally:
        for invoker in made:
            invoker.shutdown()
