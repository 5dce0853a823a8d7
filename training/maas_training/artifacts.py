"""The model dir that SageMaker serves, and the model.tar.gz that carries it.

A model dir holds maas's config (recipe, model config, labels, input spec, hyperparameters,
metrics) in config.json, beside model.safetensors. A recipe whose folder is a Hugging Face one
(text-generation) leaves config.json and the weights to the library and keeps maas's config
in maas.json; `read_config` finds it either way.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from maas_training import signature
from maas_training.preparation import TextEncoder
from maas_training.recipes import BESIDE_HF_CONFIG_FILE, CONFIG_FILE, Recipe, recipe_named
from maas_training.weights import load_model as load_weights
from maas_training.weights import save_model

PACKAGE_DIR = Path(__file__).resolve().parent
# The serving container imports code/inference.py, with code/ on sys.path; inference.py sits
# beside this package (as train.py does) and imports it, so code/ gets both, whole.
ENTRY_POINT = PACKAGE_DIR.parent / "inference.py"
ONNX_FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
FORMAT_VERSION = 1


def requirements(recipe: Recipe, with_onnx: bool) -> list[str]:
    """Packages beyond torch and numpy, which every SageMaker PyTorch container has.

    The image recipes need nothing more, so they serve in network-isolated containers where
    pip cannot reach an index. Extras here must be preinstalled in the image or reachable.
    """
    reqs = list(recipe.requirements)
    if with_onnx:
        reqs.append("onnxruntime>=1.19")
    return reqs


def write_code(model_dir: Path, recipe: Recipe, with_onnx: bool = False) -> None:
    """code/: inference.py, this whole package (no list of modules to keep), requirements.txt."""
    if not ENTRY_POINT.is_file():  # an installed copy of the package, away from training/
        raise FileNotFoundError(f"{ENTRY_POINT} not found: code/ needs the package's inference.py")
    code = model_dir / "code"
    code.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ENTRY_POINT, code / ENTRY_POINT.name)
    package_copy = code / PACKAGE_DIR.name
    shutil.rmtree(package_copy, ignore_errors=True)  # a re-packaged model gets today's code alone
    shutil.copytree(PACKAGE_DIR, package_copy, ignore=shutil.ignore_patterns("__pycache__"))
    reqs = requirements(recipe, with_onnx)
    lines = reqs or ["# nothing beyond torch and numpy, which the serving container has"]
    (code / "requirements.txt").write_text("\n".join(lines) + "\n")


def read_config(model_dir: str | Path) -> dict[str, Any]:
    """maas's config of a model dir: maas.json beside a Hugging Face folder's own config.json,
    else config.json."""
    for name in (BESIDE_HF_CONFIG_FILE, CONFIG_FILE):
        path = Path(model_dir) / name
        if path.is_file():
            return json.loads(path.read_text())
    raise FileNotFoundError(f"{model_dir} holds no {CONFIG_FILE}: not a model dir train.py wrote")


def load_model(model_dir: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuilds the trained module from model.safetensors + config.json (or from the recipe's
    own folder format), in eval mode."""
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    recipe = recipe_named(config["recipe"])
    if recipe.load is not None:
        model = recipe.load(model_dir)
    else:
        model = recipe.build(config["model_config"])
        load_weights(model, model_dir / "model.safetensors")
    return model.eval(), config


def write_model_dir(
    model_dir: str | Path,
    model: nn.Module,
    config: dict[str, Any],
    text_encoder: TextEncoder | None = None,
    metrics: dict[str, float] | None = None,
) -> Path:
    """Weights (safetensors), maas's config, signature.json, tokenizer files and code/: a
    deployable folder."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    recipe = recipe_named(config["recipe"])
    on_cpu = model.cpu() if next(model.parameters()).device.type != "cpu" else model
    if recipe.save is not None:
        recipe.save(on_cpu, model_dir)
    else:
        save_model(on_cpu, str(model_dir / "model.safetensors"))
    full = {
        "format_version": FORMAT_VERSION,
        **config,
        "framework": {"torch": torch.__version__.split("+")[0]},
        "metrics": metrics or {},
    }
    (model_dir / recipe.config_file).write_text(json.dumps(full, indent=2, default=str))
    signature.write(model_dir, full)
    if text_encoder is not None:
        target = model_dir / config["input"]["tokenizer"]
        text_encoder.save(target)
    write_code(model_dir, recipe)
    return model_dir


def package(model_dir: str | Path, out: str | Path, onnx: str = "none") -> Path:
    """Writes model.tar.gz in SageMaker's layout: model files at the root, code/ beside them,
    and the model's signature.json beside the archive, where registration looks for it.

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
    config = read_config(model_dir)
    write_code(model_dir, recipe_named(config["recipe"]), with_onnx=bool(wanted))
    skip = {ONNX_FILES[k] for k in ONNX_FILES if k not in wanted}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            rel = path.relative_to(model_dir)
            if path.is_dir() or rel.name in skip or "__pycache__" in rel.parts or path == out:
                continue
            tar.add(path, arcname=str(rel), recursive=False)
    signature.write(out.parent, config)
    return out
