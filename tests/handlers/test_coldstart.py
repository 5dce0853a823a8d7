"""What the handler package does to a cold start, checked in fresh interpreters: collection is
slowed while a handler module loads and back to normal once it has, and the predict handler
never loads boto3 (and with it s3transfer)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULES = ["predict", "registry", "deployments", "training_jobs", "meta", "events"]


def _probe(statement: str) -> dict:
    code = (
        "import gc, json, sys; default = gc.get_threshold(); "
        f"{statement}; "
        "print(json.dumps({'default': default, 'now': gc.get_threshold(), "
        "'frozen': gc.get_freeze_count(), 'modules': sorted(sys.modules)}))"
    )
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "1", "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_collection_is_slowed_only_while_a_handler_module_loads():
    loading = _probe("import handlers")
    assert loading["now"][0] > loading["default"][0]
    assert loading["now"][1:] == loading["default"][1:]


@pytest.mark.parametrize("module", MODULES)
def test_every_handler_module_puts_collection_back_and_freezes_what_it_loaded(module):
    probe = _probe(f"import handlers.{module}")
    assert probe["now"] == probe["default"]
    assert probe["frozen"] > 10_000


def test_predict_cold_start_loads_neither_boto3_nor_s3transfer():
    modules = _probe("import handlers.predict")["modules"]
    assert "handlers.predict" in modules
    assert not [m for m in modules if m.split(".")[0] in ("boto3", "s3transfer")]
