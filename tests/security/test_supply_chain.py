"""Supply chain and code gates: bandit finds no high-severity issue, and no secret is tracked."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.security.secret_scan import scan_repo, scan_text

REPO = Path(__file__).resolve().parents[2]
SCANNED = ["handlers", "training", "maas_local"]


def test_bandit_reports_no_high_severity_finding_in_our_code():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bandit",
            "-q",
            "-r",
            *SCANNED,
            "-f",
            "json",
            "--severity-level",
            "high",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    report = json.loads(result.stdout)
    scanned_files = report["metrics"]["_totals"]["loc"]
    high = [r for r in report["results"] if r["issue_severity"] == "HIGH"]
    assert scanned_files > 0, "bandit scanned nothing"
    assert high == [], [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}" for r in high
    ]


def test_secret_scanner_catches_planted_credentials():
    planted = "\n".join(
        [
            "key_id = 'AKIA" + "ABCDEFGHIJKLMNOP'",
            "-----BEGIN RSA " + "PRIVATE KEY-----",
            "aws_secret_access_key = " + "A" * 40,
        ]
    )
    kinds = {finding.kind for finding in scan_text("planted.py", planted)}
    assert {"aws-access-key-id", "private-key", "aws-secret-access-key"} <= kinds


def test_no_tracked_file_carries_a_secret():
    findings = scan_repo(REPO)
    assert findings == [], findings


def test_every_dependency_carries_a_lower_bound():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared.extend(extra)
    unbounded = [spec for spec in declared if ">=" not in spec and "==" not in spec]
    assert unbounded == []
