"""Runs a loaded model on numpy inputs, with PyTorch or with onnxruntime.

Both backends take the same inputs and give the same outputs:
  images: [x (N, C, H, W) float32]          text: [ids (N, T) int64, lengths (N,) int64]
  classifiers -> [logits (N, K)]            autoencoder -> [anomaly_score (N,), embedding (N, L)]

MAAS_INFERENCE_BACKEND picks one: `auto` (default: ONNX when model.onnx or model.int8.onnx is
present and onnxruntime imports, else PyTorch), `torch`, `onnx` (model.onnx, else
model.int8.onnx) or `onnx-int8`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from maas_training.artifacts import load_model
from maas_training.recipes import recipe_named
from maas_training.tasks import Task

BACKEND_ENV = "MAAS_INFERENCE_BACKEND"
CHOICES = ("auto", "torch", "onnx", "onnx-int8")


class TorchBackend:
    name = "torch"

    def __init__(self, model: nn.Module, task: Task):
        self.model = model  # in eval mode
        self.graph = task.serving_graph(model)

    @classmethod
    def from_dir(cls, model_dir: Path) -> TorchBackend:
        model, config = load_model(model_dir)
        return cls(model, recipe_named(config["recipe"]).task)

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            out = self.graph(*(torch.from_numpy(a) for a in inputs))
            outputs = out if isinstance(out, tuple) else (out,)
            return [o.float().numpy() for o in outputs]


class OnnxBackend:
    def __init__(self, path: Path):
        import onnxruntime as ort

        self.name = f"onnx:{path.name}"
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, dict(zip(self.input_names, inputs, strict=True)))


def _onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def choose_backend(model_dir: str | Path) -> TorchBackend | OnnxBackend:
    model_dir = Path(model_dir)
    choice = os.environ.get(BACKEND_ENV, "auto").strip().lower() or "auto"
    if choice not in CHOICES:
        raise ValueError(f"{BACKEND_ENV}={choice!r} is not one of {', '.join(CHOICES)}")
    fp32, int8 = model_dir / "model.onnx", model_dir / "model.int8.onnx"
    candidates = {"onnx-int8": [int8]}.get(choice, [fp32, int8])
    onnx_file = next((p for p in candidates if p.exists()), None)
    if choice == "torch" or (
        choice == "auto" and (onnx_file is None or not _onnxruntime_available())
    ):
        return TorchBackend.from_dir(model_dir)
    if onnx_file is None:
        raise FileNotFoundError(
            f"{BACKEND_ENV}={choice} but {model_dir} holds no "
            f"{' or '.join(p.name for p in candidates)}"
        )
    return OnnxBackend(onnx_file)
