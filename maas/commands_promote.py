"""`maas promote MODEL:VERSION --to PROFILE`: a version validated on the local stack, copied into
another stage's registry through that stage's API alone.

What moves: the version's pinned artifact (the exact bytes the local endpoint served), its
signature (signature.json: inputs, outputs, label names), its recipe and its metrics. The
artifact goes up through presigned URLs the stage's API hands out (`POST
/v1/models/{model}/uploads`), so the client needs the stage's API key and a token, and no AWS
credentials; the stage then registers it as its next version, pinning it under its SHA-256,
which must be the one the local stack pinned.

PROFILE is a profile of ~/.config/maas/config (see `maas/credentials.py`): the stage's API URL,
API key, and token or client credentials. The source is the local stack in --home.

Exit status: 0 promoted; 1 an API refused, or the copy's digest differs; 2 a usage error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import requests

from maas.client import Client
from maas.commands_data import local_s3
from maas.credentials import Credentials, load_profile
from maas.errors import UsageError
from maas.output import add_option, emit

CHUNK = 1024 * 1024
UPLOAD_TIMEOUT_S = 600


def add_parser(subcommands: Any) -> None:
    parser = subcommands.add_parser(
        "promote",
        help="copy a local version into another stage's registry, through its API",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("version", metavar="MODEL:VERSION", help="e.g. digits:3")
    parser.add_argument("--to", required=True, metavar="PROFILE", help="the stage's profile")
    add_option(parser)


def _parse(text: str) -> tuple[str, int]:
    model, _, number = text.rpartition(":")
    if not model or not number.isdigit():
        raise UsageError(f"expected MODEL:VERSION, e.g. digits:3; got {text!r}")
    return model, int(number)


def run(args: argparse.Namespace, home: Path | None) -> int:
    model, number = _parse(args.version)
    if not load_profile(args.to).get("api_url"):
        raise UsageError(f"profile {args.to!r} names no api_url: promote copies to another stage")
    source = Client.local(home)
    version = next((v for v in source.versions(model) if v["version"] == number), None)
    if version is None:
        raise UsageError(f"model {model} has no version {number} on the local stack")
    target = Client(Credentials.resolve(profile=args.to))
    with tempfile.TemporaryDirectory(prefix="maas-promote-") as folder:
        artifact = Path(folder) / "model.tar.gz"
        digest = _download(home, version["pinned_uri"] or version["artifact_uri"], artifact)
        upload = target.create_upload(model)
        _put(upload["upload_url"], artifact)
    signature = json.dumps(version.get("input_schema") or {}).encode()
    _put_bytes(upload["signature_upload_url"], signature)
    described = f"promoted from {source.credentials.api_url} {model}:{number} (sha256 {digest})"
    spec = {
        "artifact_uri": upload["artifact_uri"],
        "recipe": version["recipe"],
        "metrics": version.get("metrics") or {},
        "description": described[:1024],
    }
    registered = target.register_version(model, spec)
    if registered.get("artifact_sha256") != digest:
        print(
            f"maas: the stage pinned sha256 {registered.get('artifact_sha256')}, "
            f"not the local {digest}: the copy differs"
        )
        return 1
    emit(args, registered, lambda: _said(registered, model, number, args.to))
    return 0


def _said(registered: dict[str, Any], model: str, number: int, profile: str) -> str:
    return (
        f"{model}:{number} is version {registered['version']} of {model} in {profile} "
        f"(sha256 {registered['artifact_sha256']})"
    )


def _download(home: Path | None, uri: str, out: Path) -> str:
    """Copies the local stack's object at `uri` to `out`; answers its SHA-256."""
    s3 = local_s3(home)
    if s3 is None:
        raise UsageError("the local stack is not running: `maas local up`")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3.download_file(bucket, key, str(out))
    digest = hashlib.sha256()
    with open(out, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _put(url: str, path: Path) -> None:
    with open(path, "rb") as body:
        headers = {"Content-Length": str(path.stat().st_size)}
        answer = requests.put(url, data=body, headers=headers, timeout=UPLOAD_TIMEOUT_S)
    _check(answer, path.name)


def _put_bytes(url: str, body: bytes) -> None:
    _check(requests.put(url, data=body, timeout=UPLOAD_TIMEOUT_S), "signature.json")


def _check(answer: requests.Response, what: str) -> None:
    if answer.status_code != 200:
        raise UsageError(f"uploading {what} was refused: {answer.status_code} {answer.text[:300]}")
