"""Synthesis of the CDK app's `local` stage, from a checkout: the local stack's source of IAM truth.

The local stack holds every handler and every SageMaker job to the policies `cdk deploy`
would attach, so it synthesises the CDK app (by running `app.py`, as `cdk synth` does) for a
`local` stage: the dev stage's settings under the local prefix, region and account. The
result is cached under `.cache/synth/<fingerprint>/` and made again when anything that
shapes the policies changes: infra/, training/ (its asset hash is in the policies),
maas_contract/, cdk.json, openapi.json or app.py.

Standard library only: a wheel build runs it (through maas_local.bundle) in a build
environment that may hold nothing but setuptools.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from maas_local.config import CACHE_DIR, REGION, REPO_ROOT, RESOURCE_PREFIX

STAGE = "local"
STACK = RESOURCE_PREFIX  # the stack is named after the stage's resource prefix
FINGERPRINT_INPUTS = ("infra", "training", "maas_contract", "cdk.json", "openapi.json", "app.py")
CACHE_ROOT = CACHE_DIR / "synth"
SYNTH_TIMEOUT_S = 900
_SKIP = re.compile(r"(__pycache__|\.pyc$|/\.|/runs/|/tests/)")


class SynthError(RuntimeError):
    """The local stage's cloud assembly could not be made; the message says why."""


def fingerprint(repo: Path = REPO_ROOT) -> str:
    digest = hashlib.sha256()
    for name in FINGERPRINT_INPUTS:
        root = repo / name
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            rel = path.relative_to(repo).as_posix()
            if _SKIP.search("/" + rel):
                continue
            digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def local_stage_context(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """cdk.json's context plus a `local` stage: dev's settings, the local names and place."""
    context = json.loads((repo / "cdk.json").read_text())["context"]
    stages = context["maas:stages"]
    local = copy.deepcopy(stages["dev"])
    local.update(
        # The account stays a token, as in cdk.json: the pseudo parameter resolves to ours.
        resource_prefix=RESOURCE_PREFIX,
        region=REGION,
        account=None,
        models=[],
    )
    return {"stage": STAGE, "maas:stages": {**stages, STAGE: local}}


@contextlib.contextmanager
def cache_lock(cache_root: Path) -> Iterator[None]:
    """One writer per cache at a time: parallel test workers share one synthesis."""
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(cache_root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def synthesise(
    repo: Path = REPO_ROOT, cache_root: Path = CACHE_ROOT, python: str = sys.executable
) -> Path:
    """The cloud assembly folder of the local stage, synthesised once per fingerprint by
    running `app.py` with `python`."""
    outdir = cache_root / fingerprint(repo)
    template = outdir / f"{STACK}.template.json"
    with cache_lock(cache_root):
        if template.is_file():
            return outdir
        env = {
            **os.environ,
            "CDK_OUTDIR": str(outdir),
            "CDK_CONTEXT_JSON": json.dumps(local_stage_context(repo)),
            "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        }
        done = subprocess.run(
            [python, str(repo / "app.py")],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=SYNTH_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0 or not template.is_file():
            raise SynthError(f"synthesis of the local stage failed: {done.stderr[-3000:]}")
    return outdir


def sourcedir_entry(outdir: Path) -> dict[str, Any]:
    """The asset manifest's entry for the training code's `sourcedir.tar.gz`."""
    manifest = json.loads((outdir / f"{STACK}.assets.json").read_text())
    for asset in manifest.get("files", {}).values():
        source = asset.get("source", {})
        if source.get("packaging") == "file" and str(source.get("path", "")).endswith(".tar.gz"):
            return dict(asset)
    raise SynthError("the cloud assembly has no sourcedir.tar.gz asset")
