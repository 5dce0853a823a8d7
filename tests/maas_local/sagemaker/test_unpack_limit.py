"""A model archive that unpacks past the emulator's cap fails its endpoint instead of filling
the disk (a gzip of zeros is about a thousandth of its unpacked size)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from maas_local.sagemaker import s3io
from tests.maas_local.sagemaker.emulator_helpers import (
    BUCKET,
    IMAGE,
    ROLE,
    create_config,
    unique,
    wait_endpoint,
)

MIB = 2**20


class _Zeros(io.RawIOBase):
    """`size` zero bytes, read in pieces: the test never holds the unpacked size in memory."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        n = min(len(buffer), self.left)
        buffer[:n] = b"\0" * n
        self.left -= n
        return n


def bomb(files: dict[str, int]) -> bytes:
    """A .tar.gz of files of zeros, {name: unpacked size}."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, size in files.items():
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BufferedReader(_Zeros(size)))
    return out.getvalue()


def test_unpacking_stops_before_the_cap_is_passed(tmp_path: Path):
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(bomb({"a.bin": 3 * MIB, "b.bin": 3 * MIB, "c.bin": 3 * MIB}))
    dest = tmp_path / "model"

    with pytest.raises(s3io.UnpackLimitError, match="unpacks to more than"):
        s3io.extract_tar(archive, dest, max_bytes=5 * MIB)

    written = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    assert written <= 5 * MIB  # the member that would pass the cap was never written
    assert not (dest / "b.bin").exists()


def test_an_archive_within_the_cap_unpacks_whole(tmp_path: Path):
    archive = tmp_path / "model.tar.gz"
    archive.write_bytes(bomb({"a.bin": 2 * MIB, "b.bin": 2 * MIB}))

    s3io.extract_tar(archive, tmp_path / "model", max_bytes=4 * MIB)

    assert (tmp_path / "model" / "b.bin").stat().st_size == 2 * MIB


def test_an_archive_of_200_kb_that_unpacks_to_200_mb_fails_the_endpoint(
    sm, s3, monkeypatch: pytest.MonkeyPatch
):
    body = bomb({"weights.bin": 200 * MIB})
    assert len(body) < 300_000
    monkeypatch.setenv("MAAS_SAGEMAKER_MAX_UNPACKED_BYTES", str(64 * MIB))
    name = unique("bomb")
    key = f"models/{name}/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/{key}"},
    )
    config = create_config(sm, unique("cfg"), {"main": (name, 1.0)})
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)

    described = wait_endpoint(sm, name)

    assert described["EndpointStatus"] == "Failed"
    assert "unpacks to more than 67108864 bytes" in described["FailureReason"]
    sm.delete_endpoint(EndpointName=name)
