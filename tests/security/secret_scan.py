"""A small scanner for credentials committed by mistake: key patterns a leak would carry."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

PATTERNS: dict[str, re.Pattern[str]] = {
    "aws-access-key-id": re.compile(r"\b(AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b"),
    "aws-secret-access-key": re.compile(
        r"(?i)aws_?secret_?access_?key['\"]?\s*[:=]\s*['\"]?[A-Za-z0-9/+=]{40}\b"
    ),
    "private-key": re.compile(r"-----BEGIN (RSA |EC |OPENSSH |DSA |ENCRYPTED )?PRIVATE KEY-----"),
    "github-token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "slack-token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b"),
    "generic-api-key": re.compile(
        r"(?i)\b(api[_-]?key|secret|password|token)['\"]?\s*[:=]\s*['\"][A-Za-z0-9_\-]{32,}['\"]"
    ),
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    kind: str


def scan_text(path: str, text: str) -> list[Finding]:
    findings = []
    for number, line in enumerate(text.splitlines(), start=1):
        for kind, pattern in PATTERNS.items():
            if pattern.search(line):
                findings.append(Finding(path, number, kind))
    return findings


def tracked_files(repo: Path) -> list[Path]:
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True
    ).stdout.decode()
    return [repo / name for name in listing.split("\0") if name]


def scan_repo(repo: Path) -> list[Finding]:
    findings: list[Finding] = []
    for path in tracked_files(repo):
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary files carry no text secrets we could match
        findings.extend(scan_text(str(path.relative_to(repo)), text))
    return findings
