"""One local stack for the whole reliability folder, and one digits model trained through it.

The stack is the real one (`maas local up`: moto server, the SageMaker emulator, the local
gateway, all on 127.0.0.1). Its API keys are made here before it starts, so the tests have an
unmetered key (fuzzing and load must not be throttled) and one whose quota is already spent.
"""

from __future__ import annotations

import os

import pytest

from maas import demo_steps
from maas_local import lifecycle
from maas_local.aws_resources import stack_credentials
from maas_local.config import StackPaths, read_json
from maas_local.stack import StackOptions
from maas_local.usage_plans import UsagePlan, new_api_key, save_api_keys
from tests.reliability.reliability_helpers import ALARMS, DIGITS, Stack, wait_for

# Deployment waits (canary interval, termination wait) run at this fraction of real time.
TIME_SCALE = "0.02"
UNMETERED = UsagePlan(rate_limit=1e6, burst_limit=1_000_000, quota_limit=1_000_000_000)
DIGITS_EPOCHS = 3


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    paths = StackPaths(tmp_path_factory.mktemp("reliability-home")).ensure()
    main = new_api_key("reliability", UNMETERED)  # the first key is the stack's default
    spent = new_api_key("spent", UsagePlan(quota_limit=1))
    save_api_keys(paths.keys, [main, spent])
    saved = {k: os.environ.get(k) for k in ("MAAS_SAGEMAKER_TIME_SCALE", "MAAS_SAGEMAKER_SEED")}
    os.environ.update(MAAS_SAGEMAKER_TIME_SCALE=TIME_SCALE, MAAS_SAGEMAKER_SEED="7")
    try:
        assert lifecycle.up(paths, foreground=False, options=StackOptions()) == 0
        running = Stack(paths, read_json(paths.state_file), {"main": main.value})
        running.keys["spent"] = spent.value
        assert running.call("GET", "/v2/health/live", key="spent").status_code == 200
        yield running
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        lifecycle.down(paths, quiet=True)


@pytest.fixture(scope="session")
def digits_data(stack):
    return demo_steps.prepare_and_upload(
        stack.url("moto"), lambda line: None, stack_credentials(stack.paths.keys)
    )


@pytest.fixture(scope="session")
def digits_model(stack, digits_data):
    """Trains the digits model once through the API; the event handler registers and deploys
    it. Returns (version, held-out digits)."""
    channels, held = digits_data
    spec = demo_steps.training_request(channels, seed=1, epochs=DIGITS_EPOCHS, auto_deploy=True)
    spec["deployment"]["rollback_alarms"] = ALARMS
    spec["deployment"]["capture_percent"] = 0
    started = stack.call("POST", "/v1/training-jobs", json=spec)
    assert started.status_code == 201, started.text
    job_id = started.json()["id"]

    def finished() -> dict | None:
        job = stack.call("GET", f"/v1/training-jobs/{job_id}").json()
        done = job.get("deployment_id") or job["status"] in ("Failed", "Stopped")
        return job if done or (job.get("outcome") or "registered") != "registered" else None

    job = wait_for(finished, timeout=600, every=1.0)
    assert job["status"] == "Completed" and job.get("deployment_id"), job
    wait_for(
        lambda: (
            stack.call("GET", f"/v1/models/{DIGITS}").json().get("live_version")
            == job["registered_version"]
        ),
        timeout=300,
    )
    return job["registered_version"], held
