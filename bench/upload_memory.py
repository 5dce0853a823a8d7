"""How much resident memory a large S3 upload leaves in the local stack's moto server.

Starts `python -m maas_local.moto_server` as `maas local up` does (signed calls only, state
written through to a folder), uploads one object with boto3 (PutObject, or `upload_file`, which
goes multipart past 8 MB), reads it back, restarts the server on its saved state, and prints the
server's resident memory (VmRSS) at each step, and its peak (VmHWM).

    .venv/bin/python -m bench.upload_memory --mb 200 --mode put
    .venv/bin/python -m bench.upload_memory --mb 200 --mode upload_file

Not part of `make bench` (it compares nothing against a baseline); tests/maas_local/
test_large_upload.py holds the bound.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import requests
from botocore.config import Config

from maas_local import moto_server
from maas_local.processes import free_port

BUCKET = "upload-memory"
CHUNK = 4 * 1024 * 1024


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory (or its peak, field="VmHWM"), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def write_random_file(path: Path, size: int) -> str:
    """`size` random bytes to `path`, a chunk at a time; returns their SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(CHUNK, left))
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


class MotoProcess:
    """The stack's moto server in a process of its own, its state in `state_dir`."""

    def __init__(self, state_dir: Path, log: Path) -> None:
        self.state_dir, self.log = state_dir, log
        self.key = "AKIA" + secrets.token_hex(8).upper()
        self.secret = secrets.token_urlsafe(30)
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> None:
        port = free_port()
        env = dict(os.environ)
        env.update(
            {
                moto_server.OWNER_KEY_ENV: self.key,
                moto_server.OWNER_SECRET_ENV: self.secret,
                moto_server.STATE_ENV: str(self.state_dir),
            }
        )
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own module
                [sys.executable, "-m", "maas_local.moto_server", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto exited: {self.log.read_text()[-2000:]}")
            try:
                if requests.get(self.url + moto_server.HEALTH_PATH, timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError("moto did not answer")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def s3(self):
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            config=Config(retries={"max_attempts": 1}),
        )


def upload(s3, path: Path, key: str, mode: str) -> None:
    if mode == "put":
        with open(path, "rb") as body:
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    else:
        s3.upload_file(str(path), BUCKET, key)


def download_sha256(s3, key: str) -> str:
    digest = hashlib.sha256()
    for chunk in s3.get_object(Bucket=BUCKET, Key=key)["Body"].iter_chunks(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--mode", choices=("put", "upload_file"), default="put")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before the last read")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "data.bin"
        expected = write_random_file(data, args.mb * 1024 * 1024)
        moto = MotoProcess(root / "state", root / "moto.log")
        moto.start()
        try:
            s3 = moto.s3()
            s3.create_bucket(Bucket=BUCKET)
            s3.put_object(Bucket=BUCKET, Key="small", Body=b"warm up")
            rows = [("idle", rss_mb(moto.pid))]
            t0 = time.monotonic()
            upload(s3, data, "big", args.mode)
            took = time.monotonic() - t0
            rows.append(("after upload", rss_mb(moto.pid)))
            rows.append(("peak so far (VmHWM)", rss_mb(moto.pid, "VmHWM")))
            time.sleep(args.settle)
            rows.append((f"after {args.settle:g} s", rss_mb(moto.pid)))
            assert download_sha256(s3, "big") == expected, "GetObject: other bytes"
            time.sleep(1)  # the handler thread lets go of its answer after the last byte is read
            rows.append(("after GetObject (+1 s)", rss_mb(moto.pid)))
            ranged = s3.get_object(Bucket=BUCKET, Key="big", Range="bytes=1000-1999")
            with open(data, "rb") as f:
                f.seek(1000)
                assert ranged["Body"].read() == f.read(1000), "Range: other bytes"
            rows.append(("peak with GetObject (VmHWM)", rss_mb(moto.pid, "VmHWM")))
            moto.stop()
            moto.start()
            s3 = moto.s3()
            rows.append(("restarted on saved state", rss_mb(moto.pid)))
            assert s3.get_object(Bucket=BUCKET, Key="small")["Body"].read() == b"warm up"
            rows.append(("restarted, a small GetObject", rss_mb(moto.pid)))
            assert download_sha256(s3, "big") == expected, "after restart: other bytes"
            time.sleep(1)
            rows.append(("restarted, GetObject (+1 s)", rss_mb(moto.pid)))
            rows.append(("restarted, peak (VmHWM)", rss_mb(moto.pid, "VmHWM")))
        finally:
            moto.stop()
    print(f"{args.mb} MiB, {args.mode}, upload {took:.1f} s; moto's resident memory:")
    base = rows[0][1]
    for label, mb in rows:
        print(f"  {label:<28} {mb:7.1f} MiB  ({mb - base:+7.1f})")


if __name__ == "__main__":
    main()
