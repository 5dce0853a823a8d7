"""The demo's story, end to end, on the real handlers, training code and SageMaker emulator."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time

import pytest
import requests

from maas import ApiError, Client
from maas import demo_steps as steps
from maas_contract.routes import HANDLERS_PACKAGE, STREAMING_GROUPS, RouteTable, handler_module
from maas_local import lifecycle
from maas_local.aws_resources import stack_credentials
from maas_local.config import StackPaths, read_json
from maas_local.stack import StackOptions

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
EPOCHS = 8
CANARY_PERCENT = 50
CANARY_CALLS = 200
CLIENT_ENV = ("MAAS_API_URL", "MAAS_API_KEY", "MAAS_TOKEN")  # a developer's own must not leak in


def say(line: str) -> None:
    print(line, flush=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    paths = StackPaths(tmp_path_factory.mktemp("maas-home"))
    options = StackOptions()
    assert options.openapi.is_file(), f"the committed API description is missing: {options.openapi}"
    try:
        assert lifecycle.up(paths, foreground=False, options=options) == 0
        state = read_json(paths.state_file)
        yield paths, state, Client.local(paths.home)
    finally:
        lifecycle.down(paths, quiet=True)


@pytest.fixture(scope="module")
def digits(stack):
    paths, state, _ = stack
    return steps.prepare_and_upload(
        state["parts"]["moto"]["url"], say, stack_credentials(paths.keys)
    )


def _maas(paths: StackPaths, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
    env["MAAS_HOME"] = str(paths.home)
    return subprocess.run(
        [sys.executable, "-m", "maas", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _wait_for_events_handled(api_url: str, timeout_s: float = 60) -> None:
    """The gateway's event sink says how many state changes it has yet to hand over."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if requests.get(f"{api_url}/_local/health", timeout=10).json()["events_pending"] == 0:
            return
        time.sleep(0.2)
    raise AssertionError("state-change events still pending")


def test_every_operation_routes_to_an_importable_handler_module():
    routes = RouteTable.from_file(StackOptions().openapi)
    assert routes.routes, "openapi.json lists no operations"
    for group in routes.groups():
        if group in STREAMING_GROUPS:  # an ASGI app, which the Lambda Web Adapter runs
            app = importlib.import_module(f"{HANDLERS_PACKAGE}.{group}.app").app
            assert callable(app), group
        else:
            assert callable(importlib.import_module(handler_module(group)).handler), group
    for route in routes.routes:
        assert route.authorized and route.scopes, f"{route.method} {route.path} is open"


def test_demo_flow_trains_deploys_predicts_and_splits_canary_traffic(stack, digits, tmp_path):
    paths, _, api = stack
    channels, held = digits

    # Training through the API completes and the event handler registers and deploys v1.
    job = steps.train(
        api, steps.training_request(channels, seed=1, epochs=EPOCHS, auto_deploy=True), say
    )
    assert job["status"] == "Completed", job
    job = steps.wait_for_version(api, job["id"])
    first = job["registered_version"]
    assert first is not None, job
    assert first in [v["version"] for v in api.versions(steps.MODEL)]
    assert steps.follow_auto_deployment(api, job["id"], say)["status"] == "Succeeded"
    assert steps.wait_until_live(api, first, say)["live_version"] == first

    # The deployed model gets at least 95% of 50 held-out digits right.
    labels, version = steps.predict_labels(api, held.x[:50])
    assert version == first
    correct = sum(int(p == t) for p, t in zip(labels, held.y[:50], strict=True))
    assert correct >= 48, f"{correct}/50 right"

    # The client CLI, as a user would run it, sees the same model and gets the same answers.
    listing = _maas(paths, "models", steps.MODEL)
    assert listing.returncode == 0, listing.stderr
    assert json.loads(listing.stdout)["model"]["live_version"] == first
    batch = tmp_path / "five.npy"
    batch.write_bytes(steps.npy(held.x[:5]))
    predicted = _maas(paths, "predict", steps.MODEL, "--file", str(batch))
    assert predicted.returncode == 0, predicted.stderr
    answer = json.loads(predicted.stdout)["outputs"]["predictions"]
    assert [int(p["label"]) for p in answer] == labels[:5]

    # A second version, rolled out as a 50% canary, takes its share of the traffic.
    job = steps.wait_for_version(
        api,
        steps.train(
            api, steps.training_request(channels, seed=2, epochs=EPOCHS, auto_deploy=False), say
        )["id"],
    )
    second = job["registered_version"]
    assert second is not None and second != first
    deployed = _maas(
        paths,
        "deploy",
        steps.MODEL,
        "--version",
        str(second),
        "--canary",
        str(CANARY_PERCENT),
        "--wait-seconds",
        "1800",
    )
    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(deployed.stdout)["status"] == "InProgress"
    split = steps.canary_split(api, held, second, say, calls=CANARY_CALLS)
    assert set(split) == {first, second}
    share = split[second] / CANARY_CALLS
    assert abs(share - CANARY_PERCENT / 100) <= 0.15, split


def test_failing_training_script_ends_failed_with_its_error_and_registers_nothing(stack, digits):
    paths, state, api = stack
    channels, _ = digits

    trained = _maas(
        paths,
        "train",
        "--model",
        "digits-broken",
        "--recipe",
        "image-cnn",
        "--data",
        channels["train"],
        "--validation",
        channels["validation"],
        "--hp",
        "epochs=many",
        "--wait",
    )  # train.py's argparse rejects it, exit 2

    assert trained.returncode == 1, trained.stdout + trained.stderr
    assert " failed: " in trained.stdout  # the final words: "job ID failed: <reason>"
    _wait_for_events_handled(state["api_url"])
    (job,) = [
        j
        for j in api.call("GET", "/v1/training-jobs").json()["items"]
        if j["model"] == "digits-broken"
    ]
    assert job["status"] == "Failed" and job.get("registered_version") is None
    assert "epochs" in (job.get("failure_reason") or ""), job
    with pytest.raises(ApiError) as missing:
        api.versions("digits-broken")
    assert missing.value.status == 404


def test_smoke_check_passes_against_the_local_stack(stack, digits, tmp_path):
    """`maas smoke` as a platform engineer runs it after `cdk deploy`: the stage's outputs as
    flags, the client secret and the API key in owner-only files, never on the command line."""
    from maas_local.tokens import TOKEN_PATH, AppClient

    paths, state, _ = stack
    channels, _ = digits
    client = AppClient.load(paths.keys)
    assert client is not None, "`maas local up` made no app client"
    secrets_given = {"client-secret": client.client_secret, "api-key": state["api_key"]}
    for name, value in secrets_given.items():
        (tmp_path / name).touch(mode=0o600)
        (tmp_path / name).write_text(value)

    checked = _maas(
        paths,
        "smoke",
        "--api-url", state["api_url"],
        "--token-url", state["api_url"] + TOKEN_PATH,
        "--client-id", client.client_id,
        "--client-secret-file", str(tmp_path / "client-secret"),
        "--api-key-file", str(tmp_path / "api-key"),
        "--model", steps.MODEL,
        "--dataset", channels["train"],
    )  # fmt: skip

    say(checked.stdout)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    passed = {line.split()[1] for line in checked.stdout.splitlines() if line.startswith("PASS ")}
    assert passed >= {
        "token",
        "server-ready",
        "model-ready",
        "predict",
        "training-start",
        "training-running",
        "training-stop",
        "training-stopped",
        "cleanup",
    }, checked.stdout
    assert "NOTE left behind: training job record" in checked.stdout


def test_every_aws_call_the_handlers_made_was_allowed_by_their_own_function_policy(stack):
    """The IAM contract. Every (function, action, resource) the handlers called during the flows
    above was checked, as it happened, against that function's policy from the synthesised
    template (maas_local.iam_guard); none was denied, and the flows reached every function that
    calls AWS. Removing a statement makes the same call fail (see
    tests/maas_local/test_iam_template.py)."""
    paths, _, _ = stack
    decisions = [
        json.loads(line)
        for line in (paths.logs / "iam-decisions.jsonl").read_text().splitlines()
        if line.strip()
    ]
    triples = {(d["function"], d["action"], d["resource"]) for d in decisions}
    say("\n".join(f"{f:14} {a:45} {r}" for f, a, r in sorted(triples)))

    denied = [d for d in decisions if d["decision"] != "Allow"]
    assert not denied, denied
    calls = {(f, a) for f, a, _ in triples}
    assert {
        ("training_jobs", "sagemaker:CreateTrainingJob"),
        ("training_jobs", "iam:PassRole"),
        ("events", "sagemaker:DescribeTrainingJob"),
        ("events", "sagemaker:CreateModel"),
        ("events", "cloudwatch:PutMetricAlarm"),
        ("events", "application-autoscaling:RegisterScalableTarget"),
        ("deployments", "sagemaker:UpdateEndpoint"),
        ("predict", "sagemaker:InvokeEndpoint"),
        ("registry", "dynamodb:Query"),
    } <= calls, sorted(calls)
    passed = [d for d in decisions if d["action"] == "iam:PassRole"]
    assert all(d["context"] == {"iam:PassedToService": "sagemaker.amazonaws.com"} for d in passed)
