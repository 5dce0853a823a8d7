"""Every route in openapi.json x every way a caller can be refused, and the way it is let in.

| case | result |
|---|---|
| no token, bad signature, expired, wrong audience, wrong issuer | 401 |
| invoke-only token on an admin route | 403 |
| no API key | 403 |
| a key whose quota is spent | 429 |
| valid (the route's least scope) | 2xx, or the route's documented non-auth 4xx |
"""

from __future__ import annotations

import json
import time
import uuid

import pytest

from maas_contract.errors import ACCESS_DENIED, INVALID_API_KEY, QUOTA_EXCEEDED, UNAUTHORIZED
from tests.reliability.reliability_helpers import (
    ARTIFACT_BUCKET,
    DIGITS,
    OPENAPI,
    forged_token,
    register_stub,
    stub_tarball,
    tally,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SPEC = json.loads(OPENAPI.read_text())
ROUTES = sorted(
    (method.upper(), path)
    for path, item in SPEC["paths"].items()
    for method in item
    if method in ("get", "post", "put", "delete", "patch")
)
ADMIN = "maas/admin"
MODEL = "authz"  # a model of the matrix's own, so its writes disturb no other test


def scopes_of(method: str, path: str) -> set[str]:
    operation = SPEC["paths"][path][method.lower()]
    return {s for option in operation["security"] for s in option.get("oauth2", [])}


def is_admin_only(method: str, path: str) -> bool:
    return scopes_of(method, path) == {ADMIN}


REFUSALS = {
    "no token": (None, 401),
    "bad signature": ({"foreign_key": True}, 401),
    "expired": ({"iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}, 401),
    "wrong audience": ({"aud": "someone-else"}, 401),
    "wrong issuer": ({"iss": "https://cognito-idp.example.invalid/other-pool"}, 401),
}


@pytest.fixture(scope="module")
def world(stack, digits_model):
    """Resources that let every route's valid call succeed."""
    version, _ = digits_model
    model = stack.call("GET", f"/v1/models/{DIGITS}").json()
    register_stub(stack, MODEL)
    jobs = stack.call("GET", "/v1/training-jobs").json()["items"]
    return {
        "digits_version": version,
        "deployment_id": model["live_deployment"],
        "job_id": next(j["id"] for j in jobs if j["model"] == DIGITS),
    }


def training_spec(stack) -> dict:
    return {
        "model": MODEL,
        "recipe": "image-cnn",
        "datasets": {"train": "s3://maas-local-data/digits/train/"},
        "hyperparameters": {"epochs": 1},
    }


def valid_request(stack, world, method: str, path: str) -> tuple[str, dict, set[int]]:
    """The concrete path, request kwargs and acceptable statuses of a call that should work."""
    fill = {
        "{model}": DIGITS,
        "{deployment_id}": world["deployment_id"],
        "{job_id}": world["job_id"],
        "{version}": str(world["digits_version"]),
    }
    kwargs: dict = {}
    expected = {200}
    if (method, path) == ("POST", "/v1/models/{model}/versions"):
        key = f"reliability/{MODEL}/{uuid.uuid4().hex[:8]}/model.tar.gz"
        stack.aws("s3").put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=stub_tarball())
        fill["{model}"] = MODEL
        kwargs["json"] = {"artifact_uri": f"s3://{ARTIFACT_BUCKET}/{key}", "recipe": "image-cnn"}
        expected = {201}
    elif (method, path) == ("POST", "/v1/models/{model}/deployments"):
        fill["{model}"] = MODEL
        kwargs["json"] = {"version": 1, "rollback_alarms": ["a"], "capture_percent": 0}
        expected = {202, 409}  # 409 only while an earlier deployment of it is in progress
    elif (method, path) == ("POST", "/v1/models/{model}/rollback"):
        fill["{model}"] = MODEL
        expected = {409}  # documented: no previous live version to return to
    elif (method, path) == ("POST", "/v1/models/{model}/uploads"):
        expected = {201}
    elif (method, path) == ("POST", "/v1/training-jobs"):
        kwargs["json"] = training_spec(stack)
        expected = {201}
    elif (method, path) == ("DELETE", "/v1/training-jobs/{job_id}"):
        started = stack.call("POST", "/v1/training-jobs", json=training_spec(stack))
        assert started.status_code == 201, started.text
        fill["{job_id}"] = started.json()["id"]
        expected = {202}
    elif method == "DELETE" and path.startswith("/v1/models/{model}"):
        # Deletes take a model of their own, never the digits model the other cells use.
        doomed = f"{MODEL}-del-{uuid.uuid4().hex[:6]}"
        register_stub(stack, doomed)
        register_stub(stack, doomed)
        fill["{model}"] = doomed
        fill["{version}"] = "1"  # neither live nor kept for a rollback
        expected = {202} if path.endswith("/endpoint") else {204}
    elif method == "POST" and path.startswith("/openai/v1/"):
        # This stack serves no text-generation model, so the function itself answers 404
        # model_not_found for the digits model: an answer only a caller past auth gets.
        kwargs["json"] = {"model": DIGITS, "max_tokens": 4}
        if path.endswith("/chat/completions"):
            kwargs["json"]["messages"] = [{"role": "user", "content": "hello"}]
        else:
            kwargs["json"]["prompt"] = "hello"
        expected = {404}
    elif method == "POST":  # predict and OIP infer
        kwargs["json"] = (
            {"instances": [[0.0] * 64]}
            if path.startswith("/v1")
            else {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 8, 8],
                              "data": [0.0] * 64}]}
        )  # fmt: skip
    for name, value in fill.items():
        path = path.replace(name, value)
    return path, kwargs, expected


def documented(method: str, path: str) -> set[int]:
    return {int(code) for code in SPEC["paths"][path][method.lower()]["responses"]}


@pytest.mark.parametrize("case", sorted(REFUSALS))
@pytest.mark.parametrize("method,path", ROUTES)
def test_a_missing_or_untrustworthy_token_is_refused_with_401(stack, method, path, case):
    overrides, status = REFUSALS[case]
    token = None if overrides is None else forged_token(stack.paths.keys, **overrides)
    headers = {"x-api-key": stack.keys["main"], "Idempotency-Key": "k"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    concrete = path.replace("{", "x").replace("}", "")
    response = stack.session.request(
        method, stack.api_url + concrete, headers=headers, json={}, timeout=30
    )

    assert response.status_code == status, response.text
    assert response.json() == UNAUTHORIZED.body(response.headers["x-amzn-RequestId"])
    assert status in documented(method, path)
    tally("auth matrix cells")


@pytest.mark.parametrize(
    "method,path", [r for r in ROUTES if is_admin_only(*r)], ids="{0[0]} {0[1]}".format
)
def test_an_invoke_only_token_on_an_admin_route_is_refused_with_403(stack, method, path):
    concrete = path.replace("{", "x").replace("}", "")

    response = stack.call(method, concrete, scopes="invoke", json={})

    assert response.status_code == 403, response.text
    assert response.json() == ACCESS_DENIED.body(response.headers["x-amzn-RequestId"])
    assert 403 in documented(method, path)
    tally("auth matrix cells")


@pytest.mark.parametrize("method,path", ROUTES)
def test_a_call_without_an_api_key_is_refused_with_403(stack, method, path):
    concrete = path.replace("{", "x").replace("}", "")
    headers = {"Authorization": f"Bearer {stack.token()}", "Idempotency-Key": "k"}

    response = stack.session.request(
        method, stack.api_url + concrete, headers=headers, json={}, timeout=30
    )

    assert response.status_code == 403, response.text
    assert response.json() == INVALID_API_KEY.body(response.headers["x-amzn-RequestId"])
    tally("auth matrix cells")


@pytest.mark.parametrize("method,path", ROUTES)
def test_a_key_over_its_quota_is_refused_with_429(stack, method, path):
    concrete = path.replace("{", "x").replace("}", "")

    response = stack.call(method, concrete, key="spent", json={})

    assert response.status_code == 429, response.text
    assert response.json() == QUOTA_EXCEEDED.body(response.headers["x-amzn-RequestId"])
    assert 429 in documented(method, path)
    tally("auth matrix cells")


@pytest.mark.parametrize("method,path", ROUTES)
def test_a_valid_caller_with_the_least_scope_gets_through(stack, world, method, path):
    scope = "admin" if is_admin_only(method, path) else "invoke"
    concrete, kwargs, expected = valid_request(stack, world, method, path)

    response = stack.call(method, concrete, scopes=scope, **kwargs)

    assert response.status_code in expected, response.text
    assert response.status_code in documented(method, path)
    if path.startswith("/openai/v1/") and response.status_code == 404:
        assert response.json()["error"]["code"] == "model_not_found", response.text
    if method == "POST" and path == "/v1/training-jobs":
        job = response.json()["id"]
        assert stack.call("DELETE", f"/v1/training-jobs/{job}").status_code == 202
    if method == "DELETE" and path.startswith("/v1/training-jobs/"):
        wait_for(lambda: stack.call("GET", concrete).json()["status"] != "InProgress", 60)
    tally("auth matrix cells")
