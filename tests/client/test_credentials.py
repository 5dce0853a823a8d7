"""The client's own parsing and credentials: flags to API fields, and where a token comes from."""

from __future__ import annotations

import argparse

import pytest

from maas.commands import parse_hyperparameter, parse_threshold


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
    from maas.credentials import Credentials
    from maas_local.tokens import IssuerConfig, TokenVerifier

    paths = _local_state(tmp_path)
    creds = Credentials.resolve(paths.home)
    assert (creds.api_url, creds.api_key, creds.local) == ("http://127.0.0.1:1", "k", True)
    claims = TokenVerifier(IssuerConfig.load(paths.keys)).verify(f"Bearer {creds.token()}")
    assert claims["scope"] == "maas/invoke maas/admin"
    assert Credentials.resolve(paths.home, token="given").token() == "given"


def test_client_refuses_a_remote_api_without_key_and_token_or_a_missing_local_stack(
    tmp_path, no_client_env
):
    from maas.credentials import Credentials

    with pytest.raises(SystemExit, match="not running"):
        Credentials.resolve(tmp_path / "nothing")
    with pytest.raises(SystemExit, match="--token"):
        Credentials.resolve(_local_state(tmp_path).home, api_url="https://api.example", api_key="k")
    remote = Credentials.resolve(
        tmp_path, api_url="https://api.example/prod/", api_key="k", token="t"
    )
    assert (remote.api_url, remote.token(), remote.local) == (
        "https://api.example/prod",
        "t",
        False,
    )
