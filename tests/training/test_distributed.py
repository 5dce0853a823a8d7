"""Two processes under torchrun (gloo) train one model, and rank 0 alone writes it."""

from __future__ import annotations

import json
import socket

import pytest

from maas_training.metrics import parse_line
from tests.training.support import TRAINING, run_python, train_argv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_processes_train_and_only_rank_zero_writes(digits, tmp_path):
    logs = tmp_path / "logs"
    ckpt = tmp_path / "ckpt"
    result = run_python(
        [
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(free_port()),
            "--log-dir",
            str(logs),
            "--redirects",
            "3",
            str(TRAINING / "train.py"),
            *train_argv(
                "image-cnn",
                digits,
                tmp_path,
                "--epochs",
                "3",
                "--base-channels",
                "8",
                "--max-train-samples",
                "400",
                "--batch-size",
                "16",
            ),
            "--checkpoint-dir",
            str(ckpt),
        ],
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]

    rank_logs = {p.parent.name: p.read_text() for p in logs.rglob("stdout.log")}
    assert set(rank_logs) == {"0", "1"}
    assert "world_size=2" in rank_logs["0"] and "wrote model" in rank_logs["0"]
    epochs = [
        parse_line(x)
        for x in rank_logs["0"].splitlines()
        if x.startswith("epoch=") and "step=" not in x
    ]
    assert len(epochs) == 3 and epochs[-1]["train:loss"] < epochs[0]["train:loss"]
    assert rank_logs["1"].strip() == ""  # rank 1 trained silently and wrote nothing

    model_dir = tmp_path / "model"
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "code",
        "config.json",
        "history.json",
        "model.safetensors",
        "signature.json",
    ]
    # no rank-1 or temp files: the checkpoint, and what the registry reads from its folder
    assert sorted(p.name for p in ckpt.iterdir()) == [
        "checkpoint.pt",
        "history.json",
        "signature.json",
    ]
    metrics = json.loads((tmp_path / "output" / "metrics.json").read_text())
    assert metrics["train:loss"] == pytest.approx(epochs[-1]["train:loss"], rel=1e-4)
