"""The two models benchmark 2 deploys, each as (name, model.tar.gz, request payloads, about).

image-cnn: training/train.py's image-cnn recipe at 3x64x64, one epoch on seeded random images
(throughput does not depend on the weights), requests of one image each as application/x-npy.
text-transformer: the fine-tuned MiniLM of benchmark 1 as a training job writes it (PyTorch
weights, no ONNX), requests of one held-out SST-2 sentence each as JSON.
Both are packaged by training/export.py, so their code/inference.py carries `handle`, the
TorchServe batch entry point that benchmark 2's endpoints name in TS_DEFAULT_SERVICE_HANDLER.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.common import bench_threads
from bench.minilm import TRAINING, fine_tuned_model

IMAGE_SHAPE = (3, 64, 64)
PAYLOADS = 64


def _package(model_dir: Path, out: Path) -> Path:
    subprocess.run(
        [sys.executable, str(TRAINING / "export.py"), "package", "--model-dir", str(model_dir),
         "--out", str(out), "--onnx", "none"],
        check=True, capture_output=True,
    )  # fmt: skip
    return out


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def image_model_dir(work: Path) -> Path:
    """Where image_cnn trains the model it packages."""
    return work / "img" / "model"


def image_cnn(work: Path, log) -> tuple[str, Path, list[tuple[bytes, str]], str]:
    rng = np.random.default_rng(0)
    for channel, n in (("train", 128), ("validation", 32)):
        (work / "img" / channel).mkdir(parents=True, exist_ok=True)
        x = rng.random((n, *IMAGE_SHAPE), dtype=np.float32)
        np.savez(work / "img" / channel / "data.npz", x=x, y=rng.integers(0, 10, n))
    log("[batching] training image-cnn 3x64x64 for one epoch on random images")
    subprocess.run(
        [sys.executable, str(TRAINING / "train.py"), "--recipe", "image-cnn", "--epochs", "1",
         "--train", str(work / "img" / "train"), "--validation", str(work / "img" / "validation"),
         "--threads", str(bench_threads()), "--model-dir", str(image_model_dir(work)),
         "--output-data-dir", str(work / "img" / "out"), "--progress", "lines"],
        check=True, capture_output=True,
    )  # fmt: skip
    images = rng.random((PAYLOADS, 1, *IMAGE_SHAPE), dtype=np.float32)
    payloads = [(_npy(x), "application/x-npy") for x in images]
    tarball = _package(image_model_dir(work), work / "img.tar.gz")
    return "image-cnn", tarball, payloads, "image-cnn 3x64x64, PyTorch fp32, 1 image/request"


def minilm(work: Path, log) -> tuple[str, Path, list[tuple[bytes, str]], str]:
    model_dir, rows, _ = fine_tuned_model(log)
    payloads = [
        (json.dumps({"instances": [text]}).encode(), "application/json")
        for _, text in rows[:PAYLOADS]
    ]
    tarball = _package(model_dir, work / "minilm.tar.gz")  # no ONNX: PyTorch serves it
    return "text-transformer", tarball, payloads, "MiniLM, PyTorch fp32, 1 sentence/request"
