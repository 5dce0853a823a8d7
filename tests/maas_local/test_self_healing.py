"""The supervisor restarts a crashed part, with backoff, instead of stopping the stack; it says
so in the log and in `maas local status`, and nothing acknowledged is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from maas import Client, demo_steps
from maas_local import lifecycle
from maas_local.aws_resources import local_client, stack_credentials
from maas_local.config import RESOURCE_PREFIX, StackPaths, read_json
from maas_local.stack import StackOptions
from tests.reliability.reliability_helpers import (
    Stack,
    deploy,
    predict,
    register_stub,
    wait_deployment,
    wait_for,
)

pytestmark = pytest.mark.slow
ARTIFACTS = f"{RESOURCE_PREFIX}-artifacts"


def _recovered(paths: StackPaths, part: str, old_pid: int, timeout: float = 90) -> dict:
    """The stack's state once `part` runs again under a new pid and answers its health check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_json(paths.state_file) or {}
        now = state.get("parts", {}).get(part, {})
        if state.get("status") == "ready" and now.get("pid") not in (None, old_pid):
            try:
                if requests.get(now["health"], timeout=2).ok:
                    return state
            except requests.RequestException:
                pass
        time.sleep(0.2)
    raise AssertionError(f"{part} did not come back within {timeout:.0f}s")


def test_each_part_killed_in_turn_comes_back_by_itself_with_nothing_lost(tmp_path):
    paths = StackPaths(tmp_path / "home")
    try:
        assert lifecycle.up(paths, foreground=False, options=StackOptions()) == 0
        state = read_json(paths.state_file)
        supervisor = state["supervisor"]["pid"]
        s3 = local_client("s3", state["parts"]["moto"]["url"], stack_credentials(paths.keys))
        s3.put_object(Bucket=ARTIFACTS, Key="healing/model.tar.gz", Body=b"artifact")
        spec = {"artifact_uri": f"s3://{ARTIFACTS}/healing/model.tar.gz", "recipe": "image-cnn"}
        registered = Client.local(paths.home).register_version("healing", spec)

        for part in ("moto", "sagemaker", "gateway"):
            old = state["parts"][part]["pid"]
            os.kill(old, signal.SIGKILL)
            state = _recovered(paths, part, old)

            assert state["supervisor"]["pid"] == supervisor
            assert state["parts"][part]["restarts"] == 1
            api = Client.local(paths.home)  # a new client, as a user's next command makes
            assert api.versions("healing")[0]["version"] == registered["version"]
            s3 = local_client("s3", state["parts"]["moto"]["url"], stack_credentials(paths.keys))
            assert s3.get_object(Bucket=ARTIFACTS, Key="healing/model.tar.gz")["Body"].read() == (
                b"artifact"
            )

        log = paths.progress_log.read_text()
        for part in ("moto", "sagemaker", "gateway"):
            assert f"{part} exited with -9; restarting it" in log
        status = subprocess.run(
            [sys.executable, "-m", "maas", "local", "status"],
            env={**os.environ, "MAAS_HOME": str(paths.home)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("restarted 1 time") == 3
    finally:
        lifecycle.down(paths, quiet=True)


def test_parts_killed_mid_training_and_mid_deployment_recover_and_the_registry_agrees(tmp_path):
    """A spot training job is running and a canary is baking when each part is killed in
    turn. The emulator's restart interrupts the job, which resumes from its checkpoints and
    still registers its version; the canary is closed with a reason, never left InProgress,
    and the live version keeps answering."""
    paths = StackPaths(tmp_path / "home")
    try:
        assert lifecycle.up(paths, foreground=False, options=StackOptions()) == 0
        state = read_json(paths.state_file)
        stack = Stack(paths, state, {"main": state["api_key"]})
        channels, _ = demo_steps.prepare_and_upload(
            stack.url("moto"), lambda line: None, stack_credentials(paths.keys)
        )
        v1 = register_stub(stack, "canary")
        assert wait_deployment(stack, "canary", deploy(stack, "canary", v1)["id"])["status"] == (
            "Succeeded"
        )
        v2 = register_stub(stack, "canary")
        # 600 s of bake at the local time scale (0.1): a minute in which to kill the emulator.
        baking = deploy(stack, "canary", v2, canary_wait_seconds=600)["id"]
        spec = demo_steps.training_request(channels, seed=3, epochs=4, auto_deploy=False)
        spec["hyperparameters"]["log-interval"] = 1
        job = stack.call("POST", "/v1/training-jobs", json=spec).json()["id"]
        log = paths.sagemaker_root / "logs" / "training-jobs" / f"{job}.log"
        wait_for(lambda: log.exists() and "epoch=2 step=" in log.read_text(), timeout=120)

        for part in ("sagemaker", "moto", "gateway"):
            old = state["parts"][part]["pid"]
            os.kill(old, signal.SIGKILL)
            state = _recovered(paths, part, old)
            stack = Stack(paths, state, {"main": state["api_key"]})

        closed = wait_deployment(stack, "canary", baking, timeout=120)
        assert closed["status"] in ("RolledBack", "Failed"), closed
        assert "restarted" in (closed.get("failure_reason") or ""), closed
        model = stack.call("GET", "/v1/models/canary").json()
        assert (model["live_version"], model["active_deployment"]) == (v1, None)
        answer = wait_for(
            lambda: (r := predict(stack, "canary", [[1.0, 2.0, 3.0]])).status_code != 503 and r,
            timeout=90,
        )
        assert answer.status_code == 200 and answer.json()["version"] == v1, answer.text

        def ended() -> dict | None:
            found = stack.call("GET", f"/v1/training-jobs/{job}").json()
            return found if found["status"] != "InProgress" else None

        finished = wait_for(ended, timeout=300, every=1.0)
        assert finished["status"] == "Completed", finished
        assert finished["registered_version"] == 1  # the first version of the job's model
        history = stack.aws("sagemaker").describe_training_job(TrainingJobName=job)
        secondary = [t["Status"] for t in history["SecondaryStatusTransitions"]]
        assert "Interrupted" in secondary, secondary
        assert "restored" in log.read_text()  # the second attempt began from a checkpoint
    finally:
        lifecycle.down(paths, quiet=True)
