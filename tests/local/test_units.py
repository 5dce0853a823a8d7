"""Pieces of the local stack that need no server: usage plans, routing, CLI parsing, archives."""

from __future__ import annotations

import argparse

import pytest

from maas_local.client_commands import parse_hyperparameter, parse_threshold
from maas_local.routing import RouteTable
from maas_local.tokens import scope_names
from maas_local.usage_plans import UsagePlan, UsagePlans, Verdict, new_api_key


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_rate_limit_refills_over_time_like_a_token_bucket():
    clock = Clock()
    key = new_api_key("k", UsagePlan(rate_limit=2.0, burst_limit=2, quota_limit=1000))
    plans = UsagePlans([key], clock=clock)
    verdicts = [plans.admit(key.value)[0] for _ in range(3)]
    assert verdicts == [Verdict.ALLOWED, Verdict.ALLOWED, Verdict.THROTTLED]
    clock.now += 0.5  # one token back at 2 per second
    assert plans.admit(key.value)[0] is Verdict.ALLOWED
    assert plans.admit(key.value)[0] is Verdict.THROTTLED


def test_quota_resets_when_the_day_turns():
    clock = Clock(1_700_006_400.0 - 10)  # ten seconds before a UTC midnight
    key = new_api_key("k", UsagePlan(quota_limit=1))
    plans = UsagePlans([key], clock=clock)
    assert plans.admit(key.value)[0] is Verdict.ALLOWED
    assert plans.admit(key.value)[0] is Verdict.QUOTA_EXCEEDED
    clock.now += 20
    assert plans.admit(key.value)[0] is Verdict.ALLOWED


def test_unknown_or_missing_key_is_forbidden_and_keys_are_metered_apart():
    first, second = new_api_key("a", UsagePlan(quota_limit=1)), new_api_key("b")
    plans = UsagePlans([first, second])
    assert plans.admit(None)[0] is Verdict.FORBIDDEN
    assert plans.admit(first.value + "x")[0] is Verdict.FORBIDDEN
    assert plans.admit(first.value) == (Verdict.ALLOWED, first)
    assert plans.admit(first.value)[0] is Verdict.QUOTA_EXCEEDED
    assert plans.admit(second.value) == (Verdict.ALLOWED, second)


def test_routes_pool_scopes_and_honour_the_api_key_scheme():
    spec = {
        "components": {
            "securitySchemes": {
                "oauth2": {"type": "oauth2"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            }
        },
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
    table = RouteTable.from_spec(spec)
    route, params = table.resolve("GET", "/v1/models/digits")
    assert route.module == "registry" and params == {"model": "digits"}
    assert route.scopes == {"maas/invoke", "maas/admin"} and route.api_key_required
    open_route, _ = table.resolve("GET", "/v1/open")
    assert not open_route.api_key_required and open_route.scopes == frozenset()
    assert table.resolve("POST", "/v1/models/digits") is None
    assert table.resolve("GET", "/v1/models/digits/extra") is None


def test_operation_without_a_tag_is_refused():
    with pytest.raises(ValueError, match="no tag"):
        RouteTable.from_spec({"paths": {"/x": {"get": {"security": []}}}})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "validation:accuracy>=0.95",
            {"metric": "validation:accuracy", "value": 0.95, "goal": "maximize"},
        ),
        ("validation:loss <= 0.2", {"metric": "validation:loss", "value": 0.2, "goal": "minimize"}),
    ],
)
def test_threshold_flag_becomes_the_apis_metric_threshold(text, expected):
    assert parse_threshold(text) == expected


def test_malformed_threshold_and_hyperparameter_are_usage_errors():
    with pytest.raises(argparse.ArgumentTypeError):
        parse_threshold("accuracy=0.9")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_hyperparameter("epochs")


def test_hyperparameters_keep_their_types():
    assert parse_hyperparameter("epochs=8") == ("epochs", 8)
    assert parse_hyperparameter("lr=0.003") == ("lr", 0.003)
    assert parse_hyperparameter("compile=false") == ("compile", False)
    assert parse_hyperparameter("name=a=b") == ("name", "a=b")


def test_short_scope_names_get_the_maas_prefix():
    assert scope_names("invoke,admin") == ["maas/invoke", "maas/admin"]
    assert scope_names("maas/admin") == ["maas/admin"]


@pytest.fixture
def no_client_env(monkeypatch):
    for name in ("MAAS_API_URL", "MAAS_API_KEY", "MAAS_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def _local_state(tmp_path):
    from maas_local.config import StackPaths, write_private_json
    from maas_local.tokens import create_issuer

    paths = StackPaths(tmp_path).ensure()
    create_issuer(paths.keys, "http://127.0.0.1:1")
    write_private_json(paths.state_file, {"api_url": "http://127.0.0.1:1", "api_key": "k"})
    return paths


def test_client_without_flags_uses_the_local_stack_and_mints_its_own_tokens(
    tmp_path, no_client_env
):
    from maas_local.client import Credentials
    from maas_local.tokens import IssuerConfig, TokenVerifier

    paths = _local_state(tmp_path)
    creds = Credentials.resolve(paths)
    assert (creds.api_url, creds.api_key, creds.local) == ("http://127.0.0.1:1", "k", True)
    claims = TokenVerifier(IssuerConfig.load(paths.keys)).verify(f"Bearer {creds.token()}")
    assert claims["scope"] == "maas/invoke maas/admin"
    assert Credentials.resolve(paths, token="given").token() == "given"


def test_client_refuses_a_remote_api_without_key_and_token_or_a_missing_local_stack(
    tmp_path, no_client_env
):
    from maas_local.client import Credentials
    from maas_local.config import StackPaths

    with pytest.raises(SystemExit, match="not running"):
        Credentials.resolve(StackPaths(tmp_path / "nothing"))
    with pytest.raises(SystemExit, match="--token"):
        Credentials.resolve(_local_state(tmp_path), api_url="https://api.example", api_key="k")
    remote = Credentials.resolve(
        StackPaths(tmp_path), api_url="https://api.example/prod/", api_key="k", token="t"
    )
    assert (remote.api_url, remote.token(), remote.local) == (
        "https://api.example/prod",
        "t",
        False,
    )
