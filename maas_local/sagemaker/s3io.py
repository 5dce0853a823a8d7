"""The few S3 moves the emulator makes, through plain boto3 (AWS_ENDPOINT_URL* picks the server)."""

from __future__ import annotations

import functools
import os
import tarfile
import threading
from pathlib import Path

import boto3
from botocore.config import Config

from maas_local.sagemaker.protocol import validation

_LOCAL = threading.local()


def client():
    """One S3 client per thread: boto3 clients are not shared across threads here."""
    if getattr(_LOCAL, "s3", None) is None:
        _LOCAL.s3 = boto3.client(
            "s3",
            region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5),
        )
    return _LOCAL.s3


@functools.lru_cache(maxsize=256)
def split(uri: str) -> tuple[str, str]:
    """`s3://bucket/key/prefix` -> (bucket, key/prefix)."""
    if not uri.startswith("s3://") or len(uri) < 6:
        raise validation(f"Not an S3 URI: {uri}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *parts])


def download_prefix(uri: str, dest: Path) -> tuple[int, int]:
    """Copies every object under the prefix into dest, keeping relative paths; (files, bytes)."""
    bucket, prefix = split(uri)
    s3 = client()
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


def download_file(uri: str, dest: Path) -> None:
    bucket, key = split(uri)
    dest.parent.mkdir(parents=True, exist_ok=True)
    client().download_file(bucket, key, str(dest))


def upload_file(path: Path, uri: str) -> None:
    bucket, key = split(uri)
    client().upload_file(str(path), bucket, key)


def upload_dir(src: Path, uri: str, seen: dict[str, tuple[int, float]] | None = None) -> int:
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
            upload_file(path, join(uri, rel))
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


def extract_tar(archive: Path, dest: Path) -> None:
    """Extracts with the `data` filter: no absolute paths, links out, or devices."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:*") as tar:
        tar.extractall(dest, filter="data")


def _inside(root: Path, rel: str) -> Path:
    target = (root / rel).resolve()
    if not target.is_relative_to(root.resolve()):
        raise validation(f"S3 key escapes the channel folder: {rel}")
    return target
