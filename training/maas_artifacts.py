"""The model dir that SageMaker serves, and the model.tar.gz that carries it."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import torch
from maas_safetensors import save_model

HERE = Path(__file__).resolve().parent
# inference.py and every module it imports: the model's code/ folder is self-contained.
INFERENCE_MODULES = (
    "inference.py",
    "maas_backends.py",
    "maas_codecs.py",
    "maas_models.py",
    "maas_safetensors.py",
    "maas_text.py",
)
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
FORMAT_VERSION = 1


def requirements(recipe: str, with_onnx: bool) -> list[str]:
    """Packages beyond torch and numpy, which every SageMaker PyTorch container has.

    The image recipes need nothing more, so they serve in network-isolated containers where
    pip cannot reach an index. Extras here must be preinstalled in the image or reachable.
    """
    reqs: list[str] = []
    if recipe == "text-transformer":
        reqs += ["transformers>=4.44", "tokenizers>=0.19"]
    if with_onnx:
        reqs.append("onnxruntime>=1.19")
    return reqs


def write_code(model_dir: Path, recipe: str, with_onnx: bool = False) -> None:
    code = model_dir / "code"
    code.mkdir(parents=True, exist_ok=True)
    for name in INFERENCE_MODULES:
        shutil.copy2(HERE / name, code / name)
    reqs = requirements(recipe, with_onnx)
    lines = reqs or ["# nothing beyond torch and numpy, which the serving container has"]
    (code / "requirements.txt").write_text("\n".join(lines) + "\n")


def write_model_dir(
    model_dir: str | Path,
    model: torch.nn.Module,
    config: dict,
    text_encoder=None,
    metrics: dict | None = None,
) -> Path:
    """Weights (safetensors), config.json, tokenizer files and code/: a deployable folder."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    save_model(
        model.cpu() if next(model.parameters()).device.type != "cpu" else model,
        str(model_dir / "model.safetensors"),
    )
    full = {
        "format_version": FORMAT_VERSION,
        **config,
        "framework": {"torch": torch.__version__.split("+")[0]},
        "metrics": metrics or {},
    }
    (model_dir / "config.json").write_text(json.dumps(full, indent=2, default=str))
    if text_encoder is not None:
        target = model_dir / config["input"]["tokenizer"]
        text_encoder.save(target)
    write_code(model_dir, config["recipe"])
    return model_dir


def package(model_dir: str | Path, out: str | Path, onnx: str = "none") -> Path:
    """Writes model.tar.gz in SageMaker's layout: model files at the root, code/ beside them.

    onnx: none | fp32 | int8 | both: which ONNX files (already exported) to include.
    """
    model_dir, out = Path(model_dir), Path(out)
    wanted = {"none": [], "fp32": ["fp32"], "int8": ["int8"], "both": ["fp32", "int8"]}[onnx]
    for kind in wanted:
        if not (model_dir / ONNX_FILES[kind]).exists():
            step = "onnx" if kind == "fp32" else "quantize"
            raise FileNotFoundError(
                f"{model_dir / ONNX_FILES[kind]} does not exist; run export.py {step} first"
            )
    config = json.loads((model_dir / "config.json").read_text())
    write_code(model_dir, config["recipe"], with_onnx=bool(wanted))
    skip = {ONNX_FILES[k] for k in ONNX_FILES if k not in wanted}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            rel = path.relative_to(model_dir)
            if path.is_dir() or rel.name in skip or "__pycache__" in rel.parts or path == out:
                continue
            tar.add(path, arcname=str(rel), recursive=False)
    return out
