"""What infra reads before any construct exists: stage config, openapi.json, and the packaged
training code. Fast; no synthesis."""

from __future__ import annotations

import copy
import json

import pytest

from infra.config import ConfigError, StageConfig
from infra.packaging import stage_lambda_code
from maas_contract.names import MODEL_NAME_MAX, RESOURCE_PREFIX_MAX
from maas_contract.routes import (
    OpenApiError,
    binary_media_types,
    load_routes,
    require_deployable,
    routes_from_document,
)

from .conftest import FIXTURES, REPO


@pytest.fixture
def stages() -> dict:
    return copy.deepcopy(json.loads((REPO / "cdk.json").read_text())["context"]["maas:stages"])


def test_both_stages_in_cdk_json_are_valid(stages):
    dev, prod = StageConfig.from_context("dev", stages), StageConfig.from_context("prod", stages)
    assert (dev.retain_data, prod.retain_data) == (False, True)
    assert dev.resource_prefix != prod.resource_prefix


@pytest.mark.parametrize(
    "change, message",
    [
        ({"resource_prefix": "Bad_Prefix"}, "resource_prefix"),
        # The contract's limits (maas_contract/names.py), so every derived SageMaker name fits.
        ({"resource_prefix": "p" * (RESOURCE_PREFIX_MAX + 1)}, "resource_prefix"),
        (
            {
                "models": [
                    {"name": "m" * (MODEL_NAME_MAX + 1), "version": 1, "artifact_key": "m.tar.gz"}
                ]
            },
            "model name",
        ),
        ({"log_retention_days": 3}, "log_retention_days"),
        ({"clients": []}, "at least one API client"),
        ({"surprise": 1}, "unknown settings"),
        (
            {
                "models": [
                    {
                        "name": "m",
                        "version": 1,
                        "artifact_key": "m.tar.gz",
                        "min_instances": 3,
                        "max_instances": 2,
                    }
                ]
            },
            "min_instances",
        ),
        (
            {"models": [{"name": "m", "version": 1, "artifact_key": "m.tar.gz"}] * 2},
            "declared twice",
        ),
        ({"models": [{"name": "m", "version": 1, "artifact_key": "model.zip"}]}, "artifact_key"),
        (
            {
                "clients": [
                    {
                        "name": "c",
                        "scopes": ["root"],
                        "rate_limit": 1,
                        "burst_limit": 1,
                        "quota_per_day": 1,
                        "tokens_per_minute": 1,
                        "tokens_per_day": 1,
                    }
                ]
            },
            "scopes",
        ),
        (
            {
                "clients": [
                    {
                        "name": "c",
                        "scopes": ["invoke"],
                        "rate_limit": 1,
                        "burst_limit": 1,
                        "quota_per_day": 1,
                        "tokens_per_minute": 1000,
                        "tokens_per_day": 10,
                    }
                ]
            },
            "tokens_per_minute <= tokens_per_day",
        ),
    ],
)
def test_a_wrong_stage_setting_is_refused_with_a_message_naming_it(stages, change, message):
    stages["dev"].update(change)
    with pytest.raises(ConfigError, match=message):
        StageConfig.from_context("dev", stages)


def test_an_unknown_stage_is_refused(stages):
    with pytest.raises(ConfigError, match="not in cdk.json"):
        StageConfig.from_context("staging", stages)


def test_routes_come_from_openapi_with_group_and_scopes():
    routes = {(r.method, r.path): r for r in load_routes(FIXTURES / "openapi.json")}
    predict = routes[("POST", "/v1/models/{model}/predict")]
    assert predict.group == "predict"
    assert predict.body_types == ("application/json", "application/x-npy", "text/plain")
    assert not predict.json_only_body
    assert predict.scopes == {"maas/admin", "maas/invoke"}
    register = routes[("POST", "/v1/models/{model}/versions")]
    assert register.scopes == {"maas/admin"}
    assert register.required_headers == ("Idempotency-Key",)  # resolved through a $ref
    assert register.json_only_body
    assert binary_media_types(list(routes.values())) == ["application/x-npy"]


def test_a_missing_openapi_document_says_how_to_get_one(tmp_path):
    with pytest.raises(OpenApiError, match="openapi.json is missing"):
        load_routes(tmp_path / "openapi.json")


@pytest.mark.parametrize(
    "operation, message",
    [
        ({"tags": ["predict"], "responses": {}}, "no OAuth2 scopes"),
        ({"responses": {}}, "no tag"),
        ({"tags": ["predict"], "security": [{"oauth2": []}]}, "no OAuth2 scopes"),
        ({"tags": ["billing"], "security": [{"oauth2": ["maas/invoke"]}]}, "first tag"),
        ({"tags": ["meta"], "security": [{"oauth2": ["maas/root"]}]}, "unknown scopes"),
    ],
)
def test_an_operation_without_a_known_group_or_scope_is_refused(operation, message):
    with pytest.raises(OpenApiError, match=message):
        require_deployable(routes_from_document({"paths": {"/x": {"get": operation}}}))


def test_lambda_code_is_the_handlers_and_contract_packages_plus_openapi(tmp_path):
    handlers, contract = tmp_path / "handlers", tmp_path / "maas_contract"
    (handlers / "__pycache__").mkdir(parents=True)
    contract.mkdir()
    (handlers / "__init__.py").write_text("")
    (handlers / "predict.py").write_text("def handler(e, c): ...\n")
    (handlers / "__pycache__" / "predict.pyc").write_bytes(b"junk")
    (contract / "__init__.py").write_text("")
    target = stage_lambda_code([handlers, contract], FIXTURES / "openapi.json", tmp_path / "out")
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert files == [
        "handlers/__init__.py",
        "handlers/predict.py",
        "maas_contract/__init__.py",
        "openapi.json",
    ]
