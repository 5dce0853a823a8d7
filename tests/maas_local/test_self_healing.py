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

from maas import Client
from maas_local import lifecycle
from maas_local.aws_resources import local_client, stack_credentials
from maas_local.config import RESOURCE_PREFIX, StackPaths, read_json
from maas_local.stack import StackOptions

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
