"""Fixtures for training/: real small data (digits, an SST-2 sample) and tiny trained models."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.training.support import SST2_TSV, TINY, run_train

# Tiny models on a shared 2-core machine: one thread per process avoids OpenMP spin contention
# (5x faster here). Subprocesses inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(autouse=True)
def _no_sagemaker_env(monkeypatch):
    for key in (
        "SM_HPS",
        "SM_CHANNEL_TRAIN",
        "SM_CHANNEL_VALIDATION",
        "SM_MODEL_DIR",
        "SM_OUTPUT_DATA_DIR",
        "SM_OUTPUT_DIR",
        "WORLD_SIZE",
        "RANK",
        "LOCAL_RANK",
        "MAAS_INFERENCE_BACKEND",
    ):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session")
def digits(tmp_path_factory) -> Path:
    """sklearn's digits as train/validation/test .npz channels."""
    from maas_training.prepare_digits import write_digits

    out = tmp_path_factory.mktemp("digits")
    write_digits(out)
    return out


@pytest.fixture(scope="session")
def sst2(tmp_path_factory) -> Path:
    """A seeded sample of SST-2: 1200 training rows and 300 validation rows, with the header."""
    assert SST2_TSV.exists(), f"SST-2 sample data not found at {SST2_TSV}; set MAAS_SST2_TSV"
    header, *rows = SST2_TSV.read_text(encoding="utf-8").splitlines()
    random.Random(0).shuffle(rows)
    out = tmp_path_factory.mktemp("sst2")
    for name, part in (("train", rows[:1200]), ("validation", rows[1200:1500])):
        (out / name).mkdir()
        (out / name / "data.tsv").write_text("\n".join([header, *part]) + "\n", encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def trained(tmp_path_factory, digits, sst2) -> dict[str, Path]:
    """Tiny trained model dirs for image-cnn, text-lstm and autoencoder."""
    dirs = {}
    for recipe, extra in TINY.items():
        out = tmp_path_factory.mktemp(recipe)
        run_train(recipe, sst2 if recipe == "text-lstm" else digits, out, *extra)
        dirs[recipe] = out / "model"
    return dirs
