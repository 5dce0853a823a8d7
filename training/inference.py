"""SageMaker inference handlers for every maas recipe: model_fn, input_fn, predict_fn, output_fn.

Requests: application/json ({"instances": [...]} or an Open Inference Protocol v2
{"inputs": [...]}), application/x-npy, and text/plain for text models (one text per line).
Responses are JSON: {"predictions": [...]}, or OIP v2 {"outputs": [...]} for an OIP request.
Bad input raises a ValueError subclass that says what was expected.

Every answer says which model version gave it. The SageMaker Model's container environment
carries the version (MODEL_VERSION_ENV); `output_fn` takes the serving container's request
context as its last argument (the SageMaker inference toolkit passes it to a handler function
that declares one more parameter than the contract's, and the PyTorch container serves on
TorchServe, whose `Context.set_response_header` sets a response header) and sets
`X-Amzn-SageMaker-Custom-Attributes`, which SageMaker returns as InvokeEndpoint's
CustomAttributes. The value is `maas-version=N`; when the caller sent CustomAttributes, theirs
come first: `<caller's>,maas-version=N` (a `maas-version` entry of the caller's is replaced, and
the caller's part is dropped if keeping it would pass SageMaker's 1,024-character limit).
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling modules, wherever code/ lands

import maas_codecs  # noqa: E402
import numpy as np  # noqa: E402
from maas_backends import OnnxBackend, TorchBackend, choose_backend  # noqa: E402
from maas_text import HFTokenizer, WordVocab, length_buckets, pad  # noqa: E402

CHUNK = 128  # rows per forward pass; bounds memory for large batches
# The same names as maas_contract.sagemaker (training/ imports nothing outside itself; a test
# holds the two equal).
MODEL_VERSION_ENV = "MAAS_MODEL_VERSION"
VERSION_ATTRIBUTE = "maas-version"
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
CUSTOM_ATTRIBUTES_MAX = 1024


@dataclass
class LoadedModel:
    config: dict[str, Any]
    backend: TorchBackend | OnnxBackend
    encoder: WordVocab | HFTokenizer | None = None


def model_fn(model_dir: str) -> LoadedModel:
    root = Path(model_dir)
    config = json.loads((root / "config.json").read_text())
    spec = config["input"]
    encoder: WordVocab | HFTokenizer | None = None
    if spec["kind"] == "text":
        tok = root / spec["tokenizer"]
        encoder = WordVocab.load(tok) if tok.is_file() else HFTokenizer(tok, spec["max_len"])
    return LoadedModel(config, choose_backend(root), encoder)


def input_fn(request_body: bytes | str, request_content_type: str) -> maas_codecs.Request:
    return maas_codecs.decode(request_body, request_content_type)


def _run_images(model: LoadedModel, x: np.ndarray) -> list[np.ndarray]:
    parts = [model.backend.run([x[i : i + CHUNK]]) for i in range(0, len(x), CHUNK)]
    return [np.concatenate(cols) for cols in zip(*parts, strict=True)]


def _run_texts(model: LoadedModel, texts: list[str]) -> list[np.ndarray]:
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


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def predict_fn(input_data: maas_codecs.Request, model: LoadedModel) -> maas_codecs.Prediction:
    spec, config = model.config["input"], model.config
    if spec["kind"] == "text":
        cols = _run_texts(model, maas_codecs.texts(input_data.values))
    else:
        cols = _run_images(model, maas_codecs.images(input_data.values, spec["shape"]))
    if config["recipe"] == "autoencoder":
        outputs = {
            "anomaly_score": cols[0].astype(np.float32),
            "embedding": cols[1].astype(np.float32),
        }
    else:
        probs = _softmax(cols[0].astype(np.float64)).astype(np.float32)
        outputs = {
            "label": [config["labels"][i] for i in probs.argmax(axis=1)],
            "probabilities": probs,
        }
    return maas_codecs.Prediction(
        input_data.protocol, config.get("model_name", config["recipe"]), outputs, input_data.oip_id
    )


def output_fn(prediction: maas_codecs.Prediction, accept: str, context: Any = None) -> str:
    if context is not None:
        report_version(context)
    return maas_codecs.encode(prediction, accept)


def custom_attributes(caller: str | None, version: str) -> str:
    """The CustomAttributes answer: the caller's attributes, then `maas-version=N`."""
    own = f"{VERSION_ATTRIBUTE}={version}"
    kept = [
        part.strip()
        for part in (caller or "").split(",")
        if part.strip() and part.split("=", 1)[0].strip() != VERSION_ATTRIBUTE
    ]
    combined = ",".join([*kept, own])
    return combined if len(combined) <= CUSTOM_ATTRIBUTES_MAX else own


def report_version(context: Any, idx: int = 0) -> None:
    """Sets the version response header on the toolkit's context (request `idx`, 0 as the
    toolkit uses); nothing when the container's environment names no version."""
    version = os.environ.get(MODEL_VERSION_ENV)
    if not version:
        return
    headers = context.get_all_request_header(idx) or {}
    caller = next(
        (v for k, v in headers.items() if k.lower() == CUSTOM_ATTRIBUTES_HEADER.lower()), None
    )
    context.set_response_header(idx, CUSTOM_ATTRIBUTES_HEADER, custom_attributes(caller, version))
