"""The few S3 moves the emulator makes, through plain boto3 (AWS_ENDPOINT_URL* picks the server)."""

from __future__ import annotations

import functools
import os
import tarfile
import threading
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

from maas_local.iam_guard import IamGuard
from maas_local.sagemaker.protocol import validation

_LOCAL = threading.local()
# With the execution roles' policies loaded (`use_roles`), every S3 call made for a job or a
# model is authorised against the role it names, as SageMaker's calls are in the cloud.
_ROLES: IamGuard | None = None
_ROLES_FILE: Path | None = None
_ROLES_LOCK = threading.Lock()


def use_roles(policies_file: Path | None) -> None:
    """Hold S3 access to the roles in `policies_file` (None: no roles, no checks). The file
    is read on first use: the stack writes it once the resources it names exist."""
    global _ROLES, _ROLES_FILE
    with _ROLES_LOCK:
        _ROLES, _ROLES_FILE = None, policies_file
    _LOCAL.__dict__.clear()


def _roles() -> IamGuard | None:
    global _ROLES
    with _ROLES_LOCK:
        if _ROLES is None and _ROLES_FILE is not None:
            if not _ROLES_FILE.is_file():
                raise RuntimeError(f"the execution roles' policies are not in {_ROLES_FILE} yet")
            _ROLES = IamGuard.from_file(_ROLES_FILE)
        return _ROLES


def client(role: str | None = None):
    """One S3 client per thread and role: boto3 clients are not shared across threads here.
    With roles in use, a call without a role is refused: SageMaker always acts as one."""
    clients = _LOCAL.__dict__.setdefault("clients", {})
    if role not in clients:
        made = boto3.client(
            "s3",
            region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5),
        )
        made.meta.events.register_first("needs-retry.s3", _wait_for_s3)
        guard = _roles()
        if guard is not None:
            guard.bind(made, role or "no-role")
        clients[role] = made
    return clients[role]


# S3 does not go away under a job; the local one does, for the seconds the stack's supervisor
# takes to restart it (botocore's own retries give up within about 2 s). A call that cannot
# connect waits for it, up to a minute, rather than failing the job or the endpoint.
S3_OUTAGE_S = 60.0
_RETRY_EVERY_S = 0.5


def _wait_for_s3(attempts: int, caught_exception: Exception | None = None, **_: object):
    if isinstance(caught_exception, EndpointConnectionError | ConnectionClosedError):
        if attempts * _RETRY_EVERY_S < S3_OUTAGE_S:
            return _RETRY_EVERY_S
    return None  # botocore's own retry rules decide


@functools.lru_cache(maxsize=256)
def split(uri: str) -> tuple[str, str]:
    """`s3://bucket/key/prefix` -> (bucket, key/prefix)."""
    if not uri.startswith("s3://") or len(uri) < 6:
        raise validation(f"Not an S3 URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *parts])


def download_prefix(uri: str, dest: Path, *, role: str | None = None) -> tuple[int, int]:
    """Copies every object under the prefix into dest, keeping relative paths; (files, bytes)."""
    bucket, prefix = split(uri)
    s3 = client(role)
    files = size = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/"):
                continue
            rel = key[len(prefix) :].lstrip("/") or Path(key).name
            target = _inside(dest, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))
            files += 1
            size += obj["Size"]
    return files, size


def download_file(uri: str, dest: Path, *, role: str | None = None) -> None:
    bucket, key = split(uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    client(role).download_file(bucket, key, str(dest))


def upload_file(path: Path, uri: str, *, role: str | None = None) -> None:
    bucket, key = split(uri)
    client(role).upload_file(str(path), bucket, key)


def put_bytes(
    uri: str, body: bytes, *, kms_key_id: str | None = None, role: str | None = None
) -> None:
    """One object; with a KMS key, encrypted with it (SSE-KMS) as SageMaker writes when asked."""
    bucket, key = split(uri)
    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id else {}
    client(role).put_object(Bucket=bucket, Key=key, Body=body, **extra)


def upload_dir(
    src: Path,
    uri: str,
    seen: dict[str, tuple[int, float]] | None = None,
    *,
    role: str | None = None,
) -> int:
    """Uploads files that are new or changed since `seen` (updated in place); returns count."""
    seen = {} if seen is None else seen
    count = 0
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src).as_posix()
        # The script keeps writing while this runs: an atomic save renames its temp file
        # away between the listing and the upload. A file that is gone is not an error;
        # the next sync picks up whatever replaced it.
        try:
            stat = path.stat()
            stamp = (stat.st_size, stat.st_mtime)
            if seen.get(rel) == stamp:
                continue
            upload_file(path, join(uri, rel), role=role)
        except FileNotFoundError:
            continue
        seen[rel] = stamp
        count += 1
    return count


def make_tar(src: Path, dest: Path) -> None:
    """`tar -czf dest -C src .`"""
    with tarfile.open(dest, "w:gz") as tar:
        for path in sorted(src.iterdir()):
            tar.add(path, arcname=path.name)


# In the cloud, an archive unpacks into the instance's storage volume and stops when it is full.
# Here it would fill the user's disk, so unpacking stops at a cap (a 200 KB gzip of zeros holds
# 200 MB): MAAS_SAGEMAKER_MAX_UNPACKED_BYTES, 10 GiB unless set.
MAX_UNPACKED_BYTES = 10 * 2**30


class UnpackLimitError(ValueError):
    """The archive's files add up to more than the emulator unpacks."""


def max_unpacked_bytes() -> int:
    return int(os.environ.get("MAAS_SAGEMAKER_MAX_UNPACKED_BYTES", MAX_UNPACKED_BYTES))


def extract_tar(archive: Path, dest: Path, *, max_bytes: int | None = None) -> None:
    """Extracts with the `data` filter (no absolute paths, links out, or devices), and stops
    before the files it writes add up to more than `max_bytes`.

    A member's size is in its header and extraction writes exactly that many bytes, so the
    sum is checked before each member is written, never after the disk has filled.
    """
    limit = max_unpacked_bytes() if max_bytes is None else max_bytes
    total = 0

    def capped(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        nonlocal total
        kept = tarfile.data_filter(member, path)
        if kept is not None and kept.isfile():
            total += kept.size
            if total > limit:
                raise UnpackLimitError(
                    f"{archive.name} unpacks to more than {limit} bytes, the most allowed"
                )
        return kept

    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        # capped() applies tarfile.data_filter to every member, then the size cap.
        tar.extractall(dest, filter=capped)  # noqa: S202  # nosec B202


def _inside(root: Path, rel: str) -> Path:
    target = (root / rel).resolve()
    if not target.is_relative_to(root.resolve()):
        raise validation(f"S3 key escapes the channel folder: {rel}")
    return target
