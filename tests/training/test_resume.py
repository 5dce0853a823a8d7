"""A run that stops or dies resumes from its last checkpoint and ends with the same weights."""

from __future__ import annotations

import signal
import subprocess

import pytest
import torch

from maas_training.checkpoint import CHECKPOINT_FILE, CheckpointMismatchError
from maas_training.weights import load_file
from tests.training.support import PYTHON, TINY, TRAINING, run_train, train_argv


def assert_same_weights(a, b) -> None:
    wa, wb = (
        load_file(str(a / "model" / "model.safetensors")),
        load_file(str(b / "model" / "model.safetensors")),
    )
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert different == []


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["image-cnn", "text-lstm"])
def test_run_stopped_after_epoch_one_resumes_to_identical_weights(
    recipe, digits, sst2, tmp_path, capsys
):
    data = sst2 if recipe == "text-lstm" else digits
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    run_train(recipe, data, straight, *TINY[recipe], "--checkpoint-dir", str(straight / "ckpt"))

    stopped = run_train(
        recipe,
        data,
        resumed,
        *TINY[recipe],
        "--checkpoint-dir",
        str(resumed / "ckpt"),
        "--stop-after-epoch",
        "1",
    )
    assert stopped == {"stopped_after_epoch": 1}
    assert not (resumed / "model").exists()
    capsys.readouterr()
    run_train(recipe, data, resumed, *TINY[recipe], "--checkpoint-dir", str(resumed / "ckpt"))
    assert "after epoch 1" in capsys.readouterr().out
    assert_same_weights(straight, resumed)


@pytest.mark.slow
def test_process_killed_mid_epoch_resumes_to_identical_weights(digits, tmp_path):
    extra = (
        "--epochs",
        "3",
        "--base-channels",
        "8",
        "--batch-size",
        "8",
        "--max-train-samples",
        "400",
    )
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run_train("image-cnn", digits, straight, *extra, "--checkpoint-dir", str(straight / "ckpt"))

    ckpt = killed / "ckpt"
    argv = [
        PYTHON,
        str(TRAINING / "train.py"),
        *train_argv("image-cnn", digits, killed, *extra),
        "--checkpoint-dir",
        str(ckpt),
        "--log-interval",
        "1",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:  # the first step line of epoch 2: epoch 1's checkpoint exists
            if line.startswith("epoch=2 step="):
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.kill()
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    state = torch.load(ckpt / CHECKPOINT_FILE, weights_only=True)
    assert state["epochs_done"] == 1, "the kill should land inside epoch 2"
    assert not (killed / "model").exists()

    run_train("image-cnn", digits, killed, *extra, "--checkpoint-dir", str(ckpt))
    assert_same_weights(straight, killed)


@pytest.mark.slow
def test_resume_refuses_a_checkpoint_from_other_hyperparameters(digits, tmp_path):
    same = ("--epochs", "2", "--base-channels", "8", "--checkpoint-dir", str(tmp_path / "ckpt"))
    run_train("image-cnn", digits, tmp_path, *same, "--stop-after-epoch", "1")
    with pytest.raises(CheckpointMismatchError, match="lr"):
        run_train("image-cnn", digits, tmp_path, *same, "--lr", "0.01")
