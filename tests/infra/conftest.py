"""Infra test fixtures. Synthesis is slow, so both stages are synthesised once per session and
every test reads the same cloud assembly; checkov and cfn-lint run once over it too."""

from __future__ import annotations

import copy
import fcntl
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
STAGES = ("dev", "prod")
CHECKOV_VENV = REPO / ".venv-checkov"
CHECKOV_PIN = "checkov==3.3.30"
# Declared models, so the endpoints, their alarms and their scaling are in the templates: one
# on a GPU type with local NVMe storage (no volume key allowed), one on a CPU type with EBS.
TEST_MODEL = {
    "name": "digits",
    "version": 2,
    "artifact_key": "models/digits/2/model.tar.gz",
    "instance_type": "ml.g5.xlarge",
    "min_instances": 1,
    "initial_instance_count": 1,
    "max_instances": 3,
    "target_invocations_per_instance": 70,
}
CPU_MODEL = {
    "name": "reviews",
    "version": 1,
    "artifact_key": "models/reviews/1/model.tar.gz",
    "instance_type": "ml.m5.large",
    "batching": False,  # an artifact whose inference.py has no `handle`
}
TEST_MODELS = (TEST_MODEL, CPU_MODEL)


@dataclass
class Assembly:
    app: object
    outdir: Path
    context: dict

    def stack(self, stage: str):
        return self.app.node.find_child(f"maas-{stage}")  # type: ignore[attr-defined]

    def template_json(self, stage: str) -> dict:
        return json.loads((self.outdir / f"maas-{stage}.template.json").read_text())

    def metadata(self, stage: str) -> dict:
        return json.loads((self.outdir / f"maas-{stage}.metadata.json").read_text())

    def account_template_json(self, region: str) -> dict:
        return json.loads((self.outdir / f"maas-account-{region}.template.json").read_text())


def openapi_document() -> Path:
    """openapi.json is generated from handlers/; until it exists, a fixture of the same shape."""
    real = REPO / "openapi.json"
    return real if real.is_file() else FIXTURES / "openapi.json"


def cdk_context() -> dict:
    context = copy.deepcopy(json.loads((REPO / "cdk.json").read_text())["context"])
    for stage in STAGES:
        context["maas:stages"][stage]["models"] = [dict(m) for m in TEST_MODELS]
    return context


@pytest.fixture(scope="session")
def assembly(tmp_path_factory) -> Assembly:
    from infra.assembly import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    context = cdk_context()
    app = build_app(
        repo_root=REPO,
        context=context,
        stages=list(STAGES),
        outdir=str(outdir),
        openapi_path=openapi_document(),
    )
    app.synth()
    return Assembly(app=app, outdir=outdir, context=context)


@pytest.fixture(scope="session", params=STAGES)
def stage(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def template(assembly, stage):
    from aws_cdk.assertions import Template

    return Template.from_stack(assembly.stack(stage))


def checkov_executable() -> Path:
    """checkov pins boto3 1.35, which sagemaker-core (boto3 >= 1.43.90) cannot share a venv
    with, so it lives in its own venv; created here on first use, under a lock for xdist."""
    exe = CHECKOV_VENV / "bin" / "checkov"
    with open(Path(tempfile.gettempdir()) / "maas-checkov.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not exe.exists():
            subprocess.run([sys.executable, "-m", "venv", str(CHECKOV_VENV)], check=True)
            subprocess.run(
                [
                    str(CHECKOV_VENV / "bin" / "pip"),
                    "install",
                    "-q",
                    "-c",
                    str(REPO / "constraints.txt"),
                    CHECKOV_PIN,
                ],
                check=True,
                timeout=900,
            )
    return exe


@pytest.fixture(scope="session")
def checkov_report(assembly) -> dict:
    result = subprocess.run(
        [
            str(checkov_executable()),
            "--config-file",
            str(REPO / ".checkov.yaml"),
            "-d",
            str(assembly.outdir),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout.strip(), f"checkov printed nothing: {result.stderr[-2000:]}"
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


@pytest.fixture(scope="session")
def cfn_lint_findings(assembly) -> list[dict]:
    templates = [str(assembly.outdir / f"maas-{s}.template.json") for s in STAGES]
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--format", "json", *templates],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return json.loads(result.stdout or "[]")
