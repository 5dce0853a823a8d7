"""`maas promote`: the digits version the local stack trained and validated, copied into a second
local stack through that stack's API alone, as into a cloud stage.

The client holds only the second stack's API URL, key and token (a profile); the artifact goes
up through the presigned URLs `POST /v1/models/{model}/uploads` hands out, and the second stack
pins it under the same SHA-256 and reads its signature.json beside it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from maas_local import lifecycle
from maas_local.config import StackPaths, read_json
from maas_local.stack import StackOptions
from maas_local.usage_plans import new_api_key, save_api_keys
from tests.reliability.conftest import UNMETERED
from tests.reliability.reliability_helpers import DIGITS, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def second_stack(tmp_path):
    paths = StackPaths(tmp_path / "second-home").ensure()
    key = new_api_key("second", UNMETERED)
    save_api_keys(paths.keys, [key])
    try:
        assert lifecycle.up(paths, foreground=False, options=StackOptions()) == 0
        yield Stack(paths, read_json(paths.state_file), {"main": key.value})
    finally:
        lifecycle.down(paths, quiet=True)


def promote(stack: Stack, config, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MAAS_CONFIG": str(config)}
    for name in ("MAAS_API_URL", "MAAS_API_KEY", "MAAS_TOKEN", "MAAS_PROFILE"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "maas", "--home", str(stack.paths.home), "promote", *argv],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )


def test_a_local_version_is_promoted_into_another_stage_through_its_api(
    stack, digits_model, second_stack, tmp_path
):
    version, _ = digits_model
    config = tmp_path / "maas-config"
    config.write_text(
        "[second]\n"
        f"api_url = {second_stack.api_url}\n"
        f"api_key = {second_stack.keys['main']}\n"
        f"token = {second_stack.token()}\n"
    )
    config.chmod(0o600)
    source = next(
        v
        for v in stack.call("GET", f"/v1/models/{DIGITS}/versions").json()["items"]
        if v["version"] == version
    )

    done = promote(stack, config, f"{DIGITS}:{version}", "--to", "second", "-o", "json")

    assert done.returncode == 0, done.stderr
    promoted = json.loads(done.stdout)
    assert promoted["artifact_sha256"] == source["artifact_sha256"]
    assert promoted["input_schema"] == source["input_schema"]
    assert promoted["input_schema"]["inputs"][0]["name"] == "image"  # the real signature
    assert promoted["metrics"] == source["metrics"]
    assert promoted["recipe"] == source["recipe"]
    assert f"/uploads/{DIGITS}/" in promoted["artifact_uri"]  # through the presigned URL
    listed = second_stack.call("GET", f"/v1/models/{DIGITS}/versions").json()["items"]
    assert [v["version"] for v in listed] == [promoted["version"]]
    metadata = second_stack.call("GET", f"/v2/models/{DIGITS}").json()
    assert metadata["inputs"] == source["input_schema"]["inputs"]


def test_promote_refuses_a_version_that_is_not_there_and_a_profile_without_a_url(
    stack, digits_model, tmp_path
):
    config = tmp_path / "maas-config"
    unreachable = "http://127.0.0.1:9/prod"  # never called: the source is checked first
    config.write_text(
        f"[nowhere]\napi_key = k\n\n[stage]\napi_url = {unreachable}\napi_key = k\ntoken = t\n"
    )
    config.chmod(0o600)

    no_url = promote(stack, config, f"{DIGITS}:1", "--to", "nowhere")
    missing = promote(stack, config, f"{DIGITS}:999", "--to", "stage")
    malformed = promote(stack, config, DIGITS, "--to", "stage")

    assert (no_url.returncode, missing.returncode, malformed.returncode) == (2, 2, 2)
    assert "names no api_url" in no_url.stderr
    assert f"model {DIGITS} has no version 999 on the local stack" in missing.stderr
    assert "expected MODEL:VERSION" in malformed.stderr
    assert "Traceback" not in no_url.stderr + missing.stderr + malformed.stderr
