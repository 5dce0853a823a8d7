"""A trained model dir, loaded for serving, and a batch run through it.

inference.py's handler functions and the evaluation of a labelled channel both go through here,
so a test figure is measured on exactly the path a request takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maas_training import protocol
from maas_training.artifacts import read_config
from maas_training.backends import OnnxBackend, TorchBackend, choose_backend
from maas_training.recipes import recipe_named
from maas_training.tasks import Task
from maas_training.text import HFTokenizer, WordVocab, length_buckets, pad

CHUNK = 128  # rows per forward pass; bounds memory for large batches


@dataclass
class LoadedModel:
    config: dict[str, Any]
    task: Task
    backend: TorchBackend | OnnxBackend
    encoder: WordVocab | HFTokenizer | None = None


def load(model_dir: str | Path) -> LoadedModel:
    root = Path(model_dir)
    config = read_config(root)
    spec = config["input"]
    if spec["kind"] not in ("text", "image"):
        raise NotImplementedError(
            f"{root} holds a {config['recipe']} model, which inference.py does not serve; "
            "its folder loads with transformers' AutoModelForCausalLM and AutoTokenizer"
        )
    encoder: WordVocab | HFTokenizer | None = None
    if spec["kind"] == "text":
        tok = root / spec["tokenizer"]
        encoder = WordVocab.load(tok) if tok.is_file() else HFTokenizer(tok, spec["max_len"])
    task = recipe_named(config["recipe"]).task
    return LoadedModel(config, task, choose_backend(root), encoder)


def run_images(model: LoadedModel, x: np.ndarray) -> list[np.ndarray]:
    parts = [model.backend.run([x[i : i + CHUNK]]) for i in range(0, len(x), CHUNK)]
    return [np.concatenate(cols) for cols in zip(*parts, strict=True)]


def run_texts(model: LoadedModel, texts: list[str]) -> list[np.ndarray]:
    assert model.encoder is not None
    seqs = model.encoder.encode(texts)
    lengths = np.array([len(s) for s in seqs])
    outputs: list[np.ndarray] | None = None
    for idx in length_buckets(lengths, CHUNK):  # similar lengths share a batch: little padding
        ids, lens = pad([seqs[i] for i in idx], model.encoder.pad_id)
        cols = model.backend.run([ids, lens])
        if outputs is None:
            outputs = [np.empty((len(texts), *c.shape[1:]), dtype=c.dtype) for c in cols]
        for out, c in zip(outputs, cols, strict=True):
            out[idx] = c
    assert outputs is not None
    return outputs


def predict(model: LoadedModel, request: protocol.Request) -> protocol.Prediction:
    """Checks the request's values against the model's input spec, runs them, and names the
    outputs as the model's task answers them."""
    config = model.config
    spec = config["input"]
    if spec["kind"] == "text":
        cols = run_texts(model, protocol.texts(request.values))
    else:
        cols = run_images(model, protocol.images(request.values, spec["shape"]))
    return protocol.Prediction(
        request.protocol,
        config.get("model_name", config["recipe"]),
        model.task.predictions(cols, config),
        request.oip_id,
    )
