"""Nothing acknowledged is lost: the registry and the local S3 (uploaded data, artifacts,
checkpoints) survive `maas local down` + `up`, and a `kill -9` of moto, whose every write is on
disk before its answer leaves (maas_local.moto_state)."""

from __future__ import annotations

import hashlib
import os
import signal
import time

import pytest

from maas import Client
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
ARTIFACTS, DATA = f"{RESOURCE_PREFIX}-artifacts", f"{RESOURCE_PREFIX}-data"
# Past moto_state.BLOB_MIN_BYTES, so it is stored as a blob of its own.
UPLOAD = os.urandom(3 * 1024 * 1024)


def _up(paths: StackPaths) -> dict:
    assert lifecycle.up(paths, foreground=False, options=StackOptions()) == 0
    return read_json(paths.state_file)


def _s3(paths: StackPaths, state: dict):
    return local_client("s3", state["parts"]["moto"]["url"], stack_credentials(paths.keys))


def _write(paths: StackPaths, state: dict, model: str) -> dict:
    """What a user leaves behind: uploaded data, a checkpoint, an artifact and its version."""
    s3 = _s3(paths, state)
    s3.put_object(Bucket=DATA, Key=f"{model}/train/rows.bin", Body=UPLOAD)
    s3.put_object(Bucket=ARTIFACTS, Key=f"checkpoints/{model}/epoch-2.pt", Body=b"ckpt")
    key = f"{model}/model.tar.gz"
    s3.put_object(Bucket=ARTIFACTS, Key=key, Body=b"\x1f\x8b not really a tarball")
    spec = {"artifact_uri": f"s3://{ARTIFACTS}/{key}", "recipe": "image-cnn"}
    return Client.local(paths.home).register_version(model, spec)


def _assert_kept(paths: StackPaths, state: dict, model: str, version: dict) -> None:
    s3 = _s3(paths, state)
    data = s3.get_object(Bucket=DATA, Key=f"{model}/train/rows.bin")["Body"].read()
    assert hashlib.sha256(data).digest() == hashlib.sha256(UPLOAD).digest()
    ckpt = s3.get_object(Bucket=ARTIFACTS, Key=f"checkpoints/{model}/epoch-2.pt")
    assert ckpt["Body"].read() == b"ckpt"
    assert ckpt["ServerSideEncryption"] == "aws:kms"  # the same platform key, still there
    api = Client.local(paths.home)
    assert [v["version"] for v in api.versions(model)] == [version["version"]]
    assert api.model(model)["latest_version"] == version["version"]


def test_down_and_up_keep_the_registry_and_every_object(tmp_path):
    paths = StackPaths(tmp_path / "home")
    try:
        version = _write(paths, _up(paths), "kept")
        lifecycle.down(paths, quiet=True)

        state = _up(paths)

        _assert_kept(paths, state, "kept", version)
        assert not list((paths.moto_state).glob(".*.tmp"))  # no half-written file stands
    finally:
        lifecycle.down(paths, quiet=True)


def test_a_kill_9_of_moto_loses_nothing_it_acknowledged(tmp_path):
    paths = StackPaths(tmp_path / "home")
    try:
        state = _up(paths)
        version = _write(paths, state, "killed")
        old = state["parts"]["moto"]["pid"]

        os.kill(old, signal.SIGKILL)
        # The supervisor starts moto again, which loads what it had saved.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = read_json(paths.state_file) or {}
            if state.get("status") == "ready" and state["parts"]["moto"]["pid"] != old:
                break
            time.sleep(0.2)

        assert state["parts"]["moto"]["pid"] != old
        _assert_kept(paths, state, "killed", version)
    finally:
        lifecycle.down(paths, quiet=True)


def test_a_deployed_endpoint_answers_again_after_down_and_up_without_a_redeploy(tmp_path):
    paths = StackPaths(tmp_path / "home")
    rows = [[1.0, 2.0, 3.0]]
    try:
        state = _up(paths)
        stack = Stack(paths, state, {"main": state["api_key"]})
        version = register_stub(stack, "served")
        done = wait_deployment(stack, "served", deploy(stack, "served", version)["id"])
        assert done["status"] == "Succeeded", done
        before = predict(stack, "served", rows)
        assert before.status_code == 200, before.text
        lifecycle.down(paths, quiet=True)

        state = _up(paths)
        stack = Stack(paths, state, {"main": state["api_key"]})
        # 503 (with Retry-After) while the restored endpoint loads its model again, then 200.
        after = wait_for(
            lambda: (r := predict(stack, "served", rows)).status_code != 503 and r, timeout=90
        )

        assert after.status_code == 200, after.text
        assert after.json()["outputs"] == before.json()["outputs"]
        model = stack.call("GET", "/v1/models/served").json()
        assert model["live_version"] == version and model["active_deployment"] is None
    finally:
        lifecycle.down(paths, quiet=True)
