"""Fixtures for the fast-path equivalence tests: a MiniLM model dir with its ONNX exports, and
moto's S3 with the SageMaker emulator in front of it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_backend_override(monkeypatch):
    monkeypatch.delenv("MAAS_INFERENCE_BACKEND", raising=False)


@pytest.fixture(scope="session")
def minilm_dir(tmp_path_factory) -> Path:
    """The text-transformer recipe's model dir (the packaged MiniLM with a seeded 2-class head,
    not fine-tuned: equivalence does not need trained weights, only logits of a trained
    model's size, so that differences show in the probabilities), plus model.onnx and
    model.int8.onnx written by export.py."""
    import torch

    from export import quantize_onnx
    from maas_training.artifacts import write_model_dir
    from maas_training.models import (
        default_transformer_path,
        load_pretrained_transformer,
        model_config_dict,
    )
    from maas_training.text import HFTokenizer

    torch.manual_seed(0)
    path = default_transformer_path()
    model = load_pretrained_transformer(path, ["negative", "positive"])
    with torch.no_grad():  # a fresh head gives logits near 0; scale them to a trained model's range
        model.hf.classifier.weight.mul_(100.0)
    config = {
        "recipe": "text-transformer",
        "model_config": model_config_dict(model),
        "labels": ["negative", "positive"],
        "input": {"kind": "text", "max_len": 64, "tokenizer": "tokenizer"},
    }
    out = tmp_path_factory.mktemp("minilm") / "model"
    write_model_dir(out, model.eval(), config, HFTokenizer(path, 64))
    quantize_onnx(out)  # exports model.onnx first, then model.int8.onnx
    return out


@pytest.fixture(scope="module")
def emulator() -> Iterator[object]:
    """moto's S3 and the SageMaker emulator; the bench's own context manager starts both."""
    from bench.adaptive_batching import emulator as start

    saved = os.environ.get("MAAS_INFERENCE_BACKEND")
    with start() as (server, _):
        yield server
    if saved is not None:
        os.environ["MAAS_INFERENCE_BACKEND"] = saved
