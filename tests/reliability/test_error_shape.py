"""One error body everywhere: the same bad requests, sent to a handler directly (the event API
Gateway would give it) and through the local gateway, get the same body but for the request id;
and the gateway's own refusals (no token, no API key, a route or a method the API lacks) have
that shape too, `{"error": str, "code", "request_id"}` (maas_contract/errors.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from handlers.registry import routes as registry
from handlers.training_jobs import routes as training
from maas_contract.errors import is_error_body
from maas_local.lambda_context import LambdaContext
from tests.handlers.conftest import SETTINGS
from tests.handlers.support import ADMIN, api_event, call
from tests.reliability.reliability_helpers import DIGITS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
VERSIONS = "/v1/models/{model}/versions"
TRAIN = "/v1/training-jobs"
# (name, handler module, method, resource, body, headers): each refused before any AWS call,
# so the direct call needs no AWS behind it.
SAME_BAD_REQUESTS = [
    ("truncated JSON", training, "POST", TRAIN, '{"model": "x"', {"Idempotency-Key": "k"}),
    ("a reserved hyperparameter", training, "POST", TRAIN,
     '{"model": "x", "recipe": "image-cnn", "datasets": {"train": "s3://b/t/"},'
     ' "hyperparameters": {"model-dir": "/tmp"}}', {"Idempotency-Key": "k"}),
    ("text/plain on a JSON route", registry, "POST", VERSIONS, "{}",
     {"Content-Type": "text/plain", "Idempotency-Key": "k"}),
    ("no Idempotency-Key", registry, "POST", VERSIONS,
     '{"artifact_uri": "s3://b/m.tar.gz", "recipe": "image-cnn"}', {}),
    ("a metric DynamoDB cannot hold", registry, "POST", VERSIONS,
     '{"artifact_uri": "s3://b/m.tar.gz", "recipe": "image-cnn", "metrics": {"a": 1e200}}',
     {"Idempotency-Key": "k"}),
]  # fmt: skip


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext("maas-error-shape", timeout_s=28.0)


@pytest.fixture
def handler_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**SETTINGS.to_env(), "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")


def _without_id(body: dict[str, Any]) -> dict[str, Any]:
    assert is_error_body(body), body
    return {k: v for k, v in body.items() if k != "request_id"}


@pytest.mark.parametrize(
    "name,module,method,resource,body,headers", SAME_BAD_REQUESTS, ids=lambda v: str(v)[:40]
)
def test_a_handler_and_the_gateway_answer_a_bad_request_with_the_same_body(
    stack, handler_environment, lambda_context, name, module, method, resource, body, headers
):
    direct = call(
        module,
        api_event(
            method,
            resource,
            path_params={"model": DIGITS},
            body=body,
            headers={"Content-Type": "application/json", **headers},
            scopes=ADMIN,
        ),
        lambda_context,
    )
    sent = {"Content-Type": "application/json", **headers}
    if "Idempotency-Key" not in headers:
        sent["Idempotency-Key"] = None  # left out, as in the direct call
    through = stack.call(method, resource.replace("{model}", DIGITS), data=body, headers=sent)

    assert through.status_code == direct.status, (name, through.text)
    assert _without_id(through.json()) == _without_id(direct.body), name
    assert through.json()["request_id"] == through.headers["x-amzn-RequestId"]


@pytest.mark.parametrize(
    "case",
    ["no token", "no API key", "a route the API lacks", "TRACE", "PROPFIND"],
)
def test_the_gateways_own_refusals_have_the_one_shape(stack, case):
    url, headers = stack.api_url + "/v1/models", stack.headers()
    if case == "no token":
        headers.pop("Authorization")
    elif case == "no API key":
        headers.pop("x-api-key")
    elif case == "a route the API lacks":
        url = stack.api_url + "/v1/nothing-here"
    method = case if case in ("TRACE", "PROPFIND") else "GET"

    answer = requests.request(method, url, headers=headers, timeout=30)

    assert answer.status_code in (401, 403), answer.text
    body = json.loads(answer.text)
    assert is_error_body(body), body
    assert body["request_id"] == answer.headers["x-amzn-RequestId"]
