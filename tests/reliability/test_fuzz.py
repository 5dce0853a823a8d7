"""Schemathesis, the way a user runs it: `st run` against the document the local gateway serves
(GET /v1/openapi.json, which names the stage's own buckets) and the gateway itself, with every
phase (examples, coverage, fuzzing, stateful) and every check (`--checks all`).

The run is seeded (MAAS_FUZZ_SEED, else SEED). `make test` caps it at CAPPED cases per
operation and phase (about two minutes); `make fuzz` (MAAS_FUZZ_FULL=1) is schemathesis's
default run, which takes a few times longer. It passes when schemathesis finds
nothing: no 5xx, every status, content type, header and body as documented, schema-breaking
requests refused, schema-valid ones not refused with 400 (a refusal that depends on state is a
404 or 409), auth enforced, and the stateful phase, which follows the document's links, finds
created resources where they should be.

tests/reliability/schemathesis.toml holds schemathesis's settings and fuzz_hooks.py what the
document cannot tell it: the rules stated only in words (schema-valid cases that break them are
not generated; the negative corpus and the handler tests cover them), the documented answers a
check cannot see (503 ModelNotReady while a model loads, a model refusing values, DELETE of a
job stopping it), and the defects reported and awaiting a fix elsewhere. The digits model that
later tests use is read and predicted with, never changed: writes aimed at it go to SPARE, which
has a version of the stub model from the start, so that deployments (of a model that loads in
a moment) start, are followed, rolled back and removed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.reliability.reliability_helpers import DIGITS, record, register_stub

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
CONFIG = HERE / "schemathesis.toml"
ST = Path(sys.executable).with_name("st")
SEED = int(os.environ.get("MAAS_FUZZ_SEED", "20250601"))
FULL_RUN = os.environ.get("MAAS_FUZZ_FULL") == "1"
CAPPED = 40  # cases per operation and phase in `make test`
CASES = None if FULL_RUN else CAPPED  # None: schemathesis's default
TOKEN_TTL_S = 6 * 3600 if FULL_RUN else 1800  # outlives the run
HANG_S = None if FULL_RUN else 1200  # a guard against a hung run, far past its usual length
MIN_CALLS = 1000  # the run really reached the stack
SPARE = "fuzz-spare"
PHASES = "examples,coverage,fuzzing,stateful"
REPORT_MAX = 20_000
# st's report: its failures and errors (each with the case and a curl to reproduce it), up to
# its warnings or its summary.
FINDINGS = re.compile(
    r"^=+ (?:ERRORS|FAILURES) =+$.*?(?=^=+ (?:WARNINGS|SUMMARY) =+$)", re.M | re.S
)


def _command(document: Path, api_url: str, headers: dict[str, str], reports: Path) -> list[str]:
    command = [str(ST), "--config-file", str(CONFIG), "run", str(document), "--url", api_url]
    command += ["--phases", PHASES, "--checks", "all"]
    command += ["--seed", str(SEED)]
    if CASES is not None:
        command += ["--max-examples", str(CASES)]
    command += ["--report", "junit", "--report-junit-path", str(reports / "junit.xml")]
    command += ["--no-color"]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    return command


def _findings(output: str) -> str:
    found = FINDINGS.search(output)
    return (found.group(0) if found else output)[:REPORT_MAX]


def _tested(junit: Path) -> tuple[set[str], int]:
    """The operations the report names, and its failures and errors together."""
    suites = ET.parse(junit).getroot()
    names = {case.get("name", "") for case in suites.iter("testcase")}
    broken = int(suites.get("failures", 0)) + int(suites.get("errors", 0))
    return names, broken


def _clean_up(stack, jobs_before: set[str], models_before: set[str]) -> None:
    """Schema-valid requests start real jobs and endpoints: stop them, so that no later test
    shares the CPU with them."""
    for job in stack.call("GET", "/v1/training-jobs?limit=100").json()["items"]:
        if job["id"] not in jobs_before and job["status"] == "InProgress":
            stack.call("DELETE", f"/v1/training-jobs/{job['id']}")
    for model in stack.call("GET", "/v1/models?limit=100").json()["items"]:
        if model["name"] not in models_before and model.get("live_version") is not None:
            stack.call("DELETE", f"/v1/models/{model['name']}/endpoint")


def test_schemathesis_finds_nothing_with_every_phase_and_every_check(stack, digits_model, tmp_path):
    served = stack.call("GET", "/v1/openapi.json")
    assert served.status_code == 200, served.text
    document = tmp_path / "openapi.json"
    document.write_text(served.text)
    operations = {f"{m.upper()} {p}" for p, item in served.json()["paths"].items() for m in item}
    token = stack.token("invoke,admin", ttl_s=TOKEN_TTL_S)
    headers = {"Authorization": f"Bearer {token}", "x-api-key": stack.keys["main"]}
    tally = tmp_path / "tally.json"
    env = {
        **os.environ,
        "MAAS_FUZZ_MODEL": DIGITS,
        "MAAS_FUZZ_SPARE": SPARE,
        "MAAS_FUZZ_TALLY": str(tally),
    }
    jobs_before = {job["id"] for job in stack.call("GET", "/v1/training-jobs").json()["items"]}
    models_before = {m["name"] for m in stack.call("GET", "/v1/models?limit=100").json()["items"]}
    register_stub(stack, SPARE)
    try:
        run = subprocess.run(
            _command(document, stack.api_url, headers, tmp_path),
            cwd=ROOT,  # the config file names the hooks by their path from here
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=HANG_S,
        )
    finally:
        _clean_up(stack, jobs_before, models_before)

    assert run.returncode == 0, _findings(run.stdout + run.stderr)
    counts = json.loads(tally.read_text())
    calls = sum(counts["statuses"].values())
    cases = CASES or "schemathesis's default"
    record("fuzz", {"cases per operation": cases, "seed": SEED, "calls": calls, **counts})
    print(f"\nfuzz: {cases} cases per operation and phase, seed {SEED}, {calls} calls, {counts}")
    tested, broken = _tested(tmp_path / "junit.xml")
    assert broken == 0
    assert tested == operations | {"Stateful tests"}
    assert calls >= MIN_CALLS
    digits = stack.call("GET", f"/v1/models/{DIGITS}").json()
    assert digits["live_version"] == digits_model[0], "the fuzz run changed the shared model"
