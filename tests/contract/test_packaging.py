"""The sourcedir packer: one archive for the CDK asset, the local stack and the wheel."""

from __future__ import annotations

import hashlib
import tarfile

import pytest

from maas_contract.packaging import pack_sourcedir, shipped_files, sourcedir_bytes


def test_sourcedir_archive_is_byte_identical_across_builds_and_skips_caches(tmp_path):
    source = tmp_path / "training"
    (source / "__pycache__").mkdir(parents=True)
    (source / "pkg" / "tests").mkdir(parents=True)
    (source / "train.py").write_text("print('train')\n")
    (source / "pkg" / "models.py").write_text("X = 1\n")
    (source / "pkg" / "tests" / "test_models.py").write_text("")
    (source / ".env").write_text("SECRET=1\n")
    (source / "runs").mkdir()
    (source / "runs" / "model.tar.gz").write_bytes(b"old")
    (source / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"junk")
    first = pack_sourcedir(source, tmp_path / "a" / "sourcedir.tar.gz")
    (source / "train.py").touch()  # a new mtime must not change the archive
    second = pack_sourcedir(source, tmp_path / "b" / "sourcedir.tar.gz")
    assert (
        hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(second.read_bytes()).digest()
    )
    with tarfile.open(first) as tar:
        assert sorted(tar.getnames()) == ["pkg/models.py", "train.py"]
        assert {member.mtime for member in tar.getmembers()} == {946684800}
    assert [p.name for p in shipped_files(source)] == ["models.py", "train.py"]


def test_sourcedir_without_an_entry_point_is_refused(tmp_path):
    (tmp_path / "inference.py").write_text("")
    with pytest.raises(FileNotFoundError, match="train.py"):
        sourcedir_bytes(tmp_path)
    assert not (tmp_path / "out.tar.gz").exists()
