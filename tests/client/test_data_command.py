"""`maas data`: the example data it writes, and what it refuses before touching S3."""

from __future__ import annotations

import numpy as np
import pytest

from maas.cli import main


def test_digits_writes_every_channel_and_a_predict_body(tmp_path, capsys):
    assert main(["data", "digits", str(tmp_path / "digits")]) == 0

    for split in ("train", "validation", "test"):
        with np.load(tmp_path / "digits" / split / "digits.npz") as data:
            assert data["x"].shape[1:] == (1, 8, 8) and len(data["x"]) == len(data["y"]) > 0
    body = np.load(tmp_path / "digits" / "test" / "x.npy")
    assert body.shape == (5, 1, 8, 8) and body.dtype == np.float32
    assert "x.npy" in capsys.readouterr().out


def test_upload_refuses_a_destination_that_is_not_s3(tmp_path):
    (tmp_path / "a.txt").write_text("a")

    with pytest.raises(SystemExit, match="s3://BUCKET/PREFIX/"):
        main(["data", "upload", str(tmp_path), "/tmp/elsewhere"])


def test_upload_of_an_empty_folder_fails_and_says_why(tmp_path, capsys):
    assert main(["data", "upload", str(tmp_path), "s3://maas-local-data/x/"]) == 1
    assert "no files" in capsys.readouterr().err


def test_upload_without_a_running_stack_says_so(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("a")
    monkeypatch.setenv("MAAS_HOME", str(tmp_path / "no-stack"))

    with pytest.raises(SystemExit, match="not running"):
        main(["data", "upload", str(tmp_path), "s3://maas-local-data/x/"])
