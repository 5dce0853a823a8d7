"""Shared pieces of the reliability tests: the running stack, tokens good and bad, raw calls,
snapshots of everything that could be registered or started, and stub model artifacts.

(Named uniquely: the tests import it as a top-level module.)
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from maas_local.aws_resources import local_client, stack_credentials
from maas_local.config import RESOURCE_PREFIX, StackPaths
from maas_local.sagemaker.sigv4 import signed_get_headers
from maas_local.tokens import ISSUER_FILE, PRIVATE_KEY_FILE, mint_token, scope_names

HERE = Path(__file__).parent
OPENAPI = HERE.parents[1] / "openapi.json"
STUB_CODE = HERE / "stub_model" / "inference.py"
ARTIFACT_BUCKET = f"{RESOURCE_PREFIX}-artifacts"
REGISTRY_TABLE_PREFIX = RESOURCE_PREFIX
DIGITS = "digits"
ALARMS = [f"{RESOURCE_PREFIX}-model-errors"]
# Figures of the session (cases, faults, requests, errors, latency), printed at its end by
# tests/conftest.py, which may run in another process than the tests (pytest-xdist).
FIGURES_ENV = "MAAS_TEST_FIGURES"


def _figure(op: str, name: str, value: Any) -> None:
    path = os.environ.get(FIGURES_ENV)
    if path:  # one JSON line per figure, appended: lines from several processes stay whole
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"op": op, "name": name, "value": value}) + "\n")


def tally(name: str, amount: int = 1) -> None:
    _figure("add", name, amount)


def record(name: str, value: Any) -> None:
    _figure("set", name, value)


def wait_for(check: Callable[[], Any], timeout: float = 60.0, every: float = 0.2) -> Any:
    """Polls until check() is truthy; fails the test after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(every)


@dataclass
class Stack:
    """A running local stack, as a client and an operator see it."""

    paths: StackPaths
    state: dict[str, Any]
    keys: dict[str, str]  # key name -> value: "main" (unmetered), "spent" (quota used up)
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.hooks["response"].append(self._count)

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.url.startswith(self.api_url):
            tally(f"gateway answers {response.status_code // 100}xx")

    @property
    def api_url(self) -> str:
        return self.state["api_url"]

    def url(self, part: str) -> str:
        return self.state["parts"][part]["url"]

    def token(self, scopes: str = "invoke,admin", ttl_s: int = 900) -> str:
        return mint_token(self.paths.keys, scope_names(scopes), ttl_seconds=ttl_s)

    def headers(self, scopes: str = "invoke,admin", key: str = "main", **extra: str) -> dict:
        return {
            "Authorization": f"Bearer {self.token(scopes)}",
            "x-api-key": self.keys[key],
            **extra,
        }

    def call(
        self, method: str, path: str, *, scopes: str = "invoke,admin", key: str = "main", **kw
    ) -> requests.Response:
        """One raw call (no retries), authenticated unless `headers` says otherwise."""
        headers = {**self.headers(scopes, key), **kw.pop("headers", {})}
        if method in ("POST", "DELETE") and "Idempotency-Key" not in headers:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        headers = {k: v for k, v in headers.items() if v is not None}  # None: leave it out
        kw.setdefault("timeout", 60)
        return self.session.request(method, self.api_url + path, headers=headers, **kw)

    def aws(self, service: str) -> Any:
        """A client of the stack's own endpoints, with the credentials they alone accept."""
        issued = stack_credentials(self.paths.keys)
        if service.startswith("sagemaker"):
            return local_client(service, self.url("sagemaker"), issued)
        return local_client(service, self.url("moto"), issued)

    def emulator_internals(self) -> dict:
        """The emulator's `/_emulator/endpoints`, signed with the stack's credentials."""
        issued = stack_credentials(self.paths.keys)
        url = f"{self.url('sagemaker')}/_emulator/endpoints"
        headers = signed_get_headers(
            url, issued["AWS_ACCESS_KEY_ID"], issued["AWS_SECRET_ACCESS_KEY"], "us-east-1"
        )
        return self.session.get(url, headers=headers, timeout=10).json()

    def events_settled(self, timeout: float = 60) -> None:
        """Waits until the gateway has handed every state-change event to the handler."""
        wait_for(
            lambda: (
                self.session.get(f"{self.api_url}/_local/health", timeout=10).json()[
                    "events_pending"
                ]
                == 0
            ),
            timeout=timeout,
        )


# -- tokens that must be refused -------------------------------------------------------------
def _issuer(keys_dir: Path) -> dict[str, Any]:
    return json.loads((keys_dir / ISSUER_FILE).read_text())


def forged_token(keys_dir: Path, *, foreign_key: bool = False, **overrides: Any) -> str:
    """A Cognito-shaped access token with claims overridden, signed by the stack's key or by
    a key of our own under the stack's key id (a bad signature)."""
    issuer = _issuer(keys_dir)
    now = int(time.time())
    claims = {
        "sub": "reliability",
        "client_id": "reliability",
        "aud": issuer["audience"],
        "iss": issuer["issuer"],
        "token_use": "access",
        "scope": "maas/invoke maas/admin",
        "iat": now,
        "exp": now + 600,
        **overrides,
    }
    if foreign_key:
        key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = serialization.load_pem_private_key(
            (keys_dir / PRIVATE_KEY_FILE).read_bytes(), password=None
        )
    kid = issuer["jwks"]["keys"][0]["kid"]
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


# -- what a bad request must not change --------------------------------------------------------
def snapshot(stack: Stack) -> dict[str, Any]:
    """The registry table and every SageMaker resource: what any write would change."""
    dynamodb = stack.aws("dynamodb")
    (table,) = [t for t in dynamodb.list_tables()["TableNames"] if "registry" in t]
    items: list[Any] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        items += page["Items"]
    sm = stack.aws("sagemaker")
    jobs = sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]
    endpoints = sm.list_endpoints(MaxResults=100)["Endpoints"]
    configs = sm.list_endpoint_configs(MaxResults=100)["EndpointConfigs"]
    listed = stack.aws("s3").list_objects_v2(Bucket=ARTIFACT_BUCKET, Prefix="pinned/")
    return {
        "pinned artifacts": sorted(o["Key"] for o in listed.get("Contents", [])),
        "registry": sorted(json.dumps(i, sort_keys=True) for i in items),
        "training_jobs": sorted(j["TrainingJobName"] for j in jobs),
        "endpoints": sorted((e["EndpointName"], e["EndpointStatus"]) for e in endpoints),
        "models": sorted(m["ModelName"] for m in sm.list_models(MaxResults=100)["Models"]),
        "endpoint_configs": sorted(c["EndpointConfigName"] for c in configs),
    }


# -- model artifacts ------------------------------------------------------------------------
def stub_tarball(**settings: Any) -> bytes:
    """model.tar.gz of the stub model: code/inference.py and its settings."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in {
            "settings.json": json.dumps(settings).encode(),
            "code/inference.py": STUB_CODE.read_bytes(),
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def register_stub(stack: Stack, model: str, **settings: Any) -> int:
    """Uploads a stub artifact and registers it through the API; returns the version."""
    key = f"reliability/{model}/{uuid.uuid4().hex[:8]}/model.tar.gz"
    stack.aws("s3").put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=stub_tarball(**settings))
    spec = {"artifact_uri": f"s3://{ARTIFACT_BUCKET}/{key}", "recipe": "image-cnn"}
    # As a client does: a 409 IdempotencyKeyInProgress (a retried write of this very request
    # is still held, e.g. after a DynamoDB call retried under load) is asked again with the
    # same key after its Retry-After, and then answers the one registration's result.
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    deadline = time.monotonic() + 90
    while True:
        response = stack.call("POST", f"/v1/models/{model}/versions", json=spec, headers=headers)
        in_progress = response.status_code == 409 and "IdempotencyKeyInProgress" in response.text
        if not in_progress or time.monotonic() > deadline:
            break
        time.sleep(float(response.headers.get("Retry-After", "1")))
    assert response.status_code == 201, response.text
    return int(response.json()["version"])


def deploy(stack: Stack, model: str, version: int, **spec: Any) -> dict[str, Any]:
    body = {"version": version, "rollback_alarms": ALARMS, "capture_percent": 0, **spec}
    response = stack.call("POST", f"/v1/models/{model}/deployments", json=body)
    assert response.status_code == 202, response.text
    return response.json()


def wait_deployment(stack: Stack, model: str, deployment_id: str, timeout: float = 120) -> dict:
    path = f"/v1/models/{model}/deployments/{deployment_id}"

    def closed() -> dict | None:
        found = stack.call("GET", path).json()
        return found if found["status"] != "InProgress" else None

    return wait_for(closed, timeout=timeout, every=0.3)


def predict(stack: Stack, model: str, rows: list, **kw: Any) -> requests.Response:
    return stack.call("POST", f"/v1/models/{model}/predict", json={"instances": rows}, **kw)


def quiesce(stack: Stack, timeout: float = 120) -> None:
    """Waits until nothing is training, deploying or waiting to be handled."""
    sm = stack.aws("sagemaker")

    def idle() -> bool:
        jobs = sm.list_training_jobs(StatusEquals="InProgress")["TrainingJobSummaries"]
        stopping = sm.list_training_jobs(StatusEquals="Stopping")["TrainingJobSummaries"]
        busy = [e for e in sm.list_endpoints()["Endpoints"] if e["EndpointStatus"] != "InService"]
        busy = [e for e in busy if e["EndpointStatus"] != "Failed"]
        return not jobs and not stopping and not busy

    wait_for(idle, timeout=timeout, every=0.5)
    stack.events_settled(timeout)
