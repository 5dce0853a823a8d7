"""`python app.py` as a platform engineer runs it: offline, no Docker, no AWS credentials."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import FIXTURES, REPO


def _checkout(tmp_path: Path, *, with_openapi: bool) -> Path:
    """A copy of the parts app.py reads, so the run cannot touch the working tree."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("app.py", "cdk.json"):
        shutil.copy2(REPO / name, root / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", "runs", ".*")
    for folder in ("infra", "handlers", "training", "maas_contract"):
        shutil.copytree(REPO / folder, root / folder, ignore=ignore)
    if with_openapi:
        openapi = REPO / "openapi.json"
        shutil.copy2(
            openapi if openapi.is_file() else FIXTURES / "openapi.json", root / "openapi.json"
        )
    return root


def _run_app(root: Path) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "CDK_")) and k != "DOCKER_HOST"
    }
    env |= {
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
    }
    return subprocess.run(
        [sys.executable, "app.py"], cwd=root, env=env, capture_output=True, text=True, timeout=400
    )


@pytest.mark.slow
def test_python_app_py_synthesises_both_stages_offline(tmp_path):
    root = _checkout(tmp_path, with_openapi=True)
    result = _run_app(root)
    assert result.returncode == 0, result.stderr[-3000:]
    for stage in ("dev", "prod"):
        template = json.loads((root / "cdk.out" / f"maas-{stage}.template.json").read_text())
        assert template["Resources"]
    manifest = json.loads((root / "cdk.out" / "manifest.json").read_text())
    assert manifest["artifacts"]["maas-prod"]["properties"]["terminationProtection"] is True
    # One account-settings stack for the region both stages use, deployed before them.
    assert manifest["artifacts"]["maas-dev"]["dependencies"].count("maas-account-eu-west-1") == 1
    assert "maas-account-eu-west-1" in manifest["artifacts"]["maas-prod"]["dependencies"]


def test_app_py_without_openapi_fails_with_a_clear_message(tmp_path):
    root = _checkout(tmp_path, with_openapi=False)
    result = _run_app(root)
    assert result.returncode == 1
    assert "openapi.json is missing" in result.stderr
    assert "Traceback" not in result.stderr
