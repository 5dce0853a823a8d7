"""The fine-tuned MiniLM that the text benchmarks serve, and the SST-2 sentences they use.

SST-2's `train.tsv` is split by `maas_training.prepare_sst2`: 1,000 whole sentences held out,
and every row in a word-boundary substring relation with one of them dropped from training
(training/README.md, "The SST-2 fine-tune"). The held-out sentences are train.py's validation
channel and the slice every throughput and accuracy figure is taken on.

The model is the text-transformer recipe's default fine-tune: `training/train.py --recipe
text-transformer` with no other hyperparameter, on every remaining row (about 30 minutes on
2 cores). It is cached under bench/.cache/, keyed by a hash of the code that decides the
weights, the arguments and the data, so a rerun skips it; the model dir's code/ is rewritten
from today's code on every run, and `training/export.py quantize` (ONNX fp32 and dynamic
int8) reruns whenever the export code changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from maas_training.prepare_sst2 import read_tsv, sentence_split, write_tsv

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ROOT / "training"
CACHE = Path(__file__).resolve().parent / ".cache"
SST2 = Path(os.environ.get("MAAS_SST2_TSV") or ROOT.parent / "shared/data/sst2/train.tsv")
FINE_TUNE_ARGS = ["--recipe", "text-transformer", "--progress", "lines"]
# What decides the fine-tuned weights (train.py and the modules it trains with); serving and
# export code is not in the key: code/ is rewritten and the export redone without retraining.
TRAINING_CODE = [
    "train.py",
    *(f"maas_training/{m}.py" for m in (
        "recipes", "preparation", "models", "data", "text", "tasks", "runtime", "checkpoint",
        "weights", "metrics", "generation", "lora",
    )),
]  # fmt: skip
EXPORT_CODE = ["export.py", "maas_training/backends.py", "maas_training/artifacts.py"]


def read_rows(path: Path = SST2) -> list[tuple[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"SST-2 not found at {path}; set MAAS_SST2_TSV to its train.tsv")
    return read_tsv(path)


def split_rows() -> dict[str, list[tuple[str, str]]]:
    split = sentence_split(read_rows())
    return {"eval": split.validation, "val": split.validation, "train": split.train}


def _digest(files: list[str], *extra: object) -> str:
    h = hashlib.sha256()
    for name in files:
        h.update(name.encode() + (TRAINING / name).read_bytes())
    h.update(json.dumps(extra).encode())
    return h.hexdigest()[:16]


def _ensure_ignored() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    ignore = CACHE / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# models and data the benchmarks cache; never committed\n*\n")


def fine_tuned_model(log=print) -> tuple[Path, list[tuple[str, str]], dict]:
    """(model dir holding model.onnx and model.int8.onnx, eval rows, facts for RESULTS.md)."""
    splits = split_rows()
    _ensure_ignored()
    key = _digest(TRAINING_CODE, FINE_TUNE_ARGS, splits["train"], splits["val"])
    work = CACHE / f"minilm-{key}"
    model_dir = work / "model"
    facts = {"train_rows": len(splits["train"]), "eval_rows": len(splits["eval"]), "key": key}
    if (work / "facts.json").exists():
        log(f"[minilm] cached fine-tuned model {model_dir.relative_to(ROOT)}")
        facts.update(json.loads((work / "facts.json").read_text()))
    else:
        facts.update(_fine_tune(work, splits, log))
        (work / "facts.json").write_text(json.dumps(facts))
    _refresh(model_dir, key, log)
    return model_dir, splits["eval"], facts


def _fine_tune(work: Path, splits: dict, log) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    write_tsv(work / "train" / "train.tsv", splits["train"])
    write_tsv(work / "val" / "val.tsv", splits["val"])
    log(
        f"[minilm] fine-tuning MiniLM on {len(splits['train'])} SST-2 rows with the recipe's"
        " defaults (about 30 minutes on 2 cores; runs once, cached)"
    )
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(TRAINING / "train.py"), *FINE_TUNE_ARGS,
         "--train", str(work / "train"), "--validation", str(work / "val"),
         "--model-dir", str(work / "model"), "--output-data-dir", str(work / "out")],
        check=True, cwd=ROOT,
    )  # fmt: skip
    metrics = json.loads((work / "out" / "metrics.json").read_text())
    return {
        "fine_tune_s": round(time.perf_counter() - started, 1),
        "val_accuracy": metrics.get("validation:accuracy"),
    }


def _refresh(model_dir: Path, key: str, log) -> None:
    """Today's serving code in code/, and the ONNX exports of today's export code."""
    from maas_training.artifacts import read_config, write_code
    from maas_training.recipes import recipe_named

    write_code(model_dir, recipe_named(read_config(model_dir)["recipe"]), with_onnx=True)
    export_key = _digest(EXPORT_CODE, key)
    stamp = model_dir.parent / "export.key"
    if stamp.exists() and stamp.read_text() == export_key:
        return
    log("[minilm] exporting ONNX fp32 and dynamic int8")
    for stale in model_dir.glob("*.onnx"):
        stale.unlink()
    shutil.rmtree(model_dir.parent / "optimum-side", ignore_errors=True)
    subprocess.run(
        [sys.executable, str(TRAINING / "export.py"), "quantize", "--model-dir", str(model_dir)],
        check=True,
        capture_output=True,
    )
    stamp.write_text(export_key)


if __name__ == "__main__":
    path, rows, info = fine_tuned_model()
    print(path, len(rows), info)
