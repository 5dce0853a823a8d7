"""Helpers shared by the training tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TRAINING = REPO / "training"
SST2_TSV = Path(
    os.environ.get("MAAS_SST2_TSV", REPO.parent / "shared" / "data" / "sst2" / "train.tsv")
)
PYTHON = sys.executable


def train_argv(recipe: str, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--recipe",
        recipe,
        "--train",
        str(data / "train"),
        "--validation",
        str(data / "validation"),
        "--model-dir",
        str(out / "model"),
        "--output-data-dir",
        str(out / "output"),
        "--progress",
        "lines",
        *extra,
    ]


def run_train(recipe: str, data: Path, out: Path, *extra: str) -> dict:
    """Trains in this process (no torch import per run) and returns the final metrics."""
    import train

    return train.main(train_argv(recipe, data, out, *extra))


def run_python(args: list[str], timeout: float = 240, **kw) -> subprocess.CompletedProcess:
    """A fresh interpreter, as SageMaker would start one."""
    return subprocess.run([PYTHON, *args], capture_output=True, text=True, timeout=timeout, **kw)


TINY = {
    "image-cnn": ("--epochs", "3", "--base-channels", "8", "--batch-size", "64"),
    "text-lstm": ("--epochs", "3", "--embed-dim", "16", "--hidden-dim", "16", "--batch-size", "64"),
    "autoencoder": (
        "--epochs",
        "3",
        "--hidden-dim",
        "32",
        "--anomaly-class",
        "0",
        "--batch-size",
        "64",
    ),
}
