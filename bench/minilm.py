"""The fine-tuned MiniLM that the text benchmarks serve, and the SST-2 slices they use.

SST-2's `train.tsv` is split once with a fixed seed into three disjoint row sets:
  eval   EVAL_ROWS rows: the held-out slice every throughput and accuracy figure is taken on;
  val    VAL_ROWS rows: train.py's validation channel (kept small: it is scored every epoch);
  train  TRAIN_ROWS rows: the fine-tuning subset (MiniLM fine-tunes at ~7 rows/s on 2 cores).
SST-2's rows are phrases cut from sentences, so an eval phrase may share words with a training
phrase from the same sentence; both sides of every comparison see the same rows.

The model is fine-tuned by `training/train.py` itself (the text-transformer recipe) and cached
under bench/.cache/ keyed by a hash of the training code, the arguments and the data, so a
rerun skips it. Then `training/export.py quantize` writes its ONNX export and dynamic int8
quantization.
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ROOT / "training"
CACHE = Path(__file__).resolve().parent / ".cache"
SST2 = Path(os.environ.get("MAAS_SST2_TSV") or ROOT.parent / "shared/data/sst2/train.tsv")
SEED = 20240601
EVAL_ROWS, VAL_ROWS, TRAIN_ROWS = 2000, 256, 2000
FINE_TUNE_ARGS = [
    "--recipe",
    "text-transformer",
    "--epochs",
    "1",
    "--batch-size",
    "32",
    "--max-len",
    "64",
    "--seed",
    "42",
    "--threads",
    "0",
    "--progress",
    "lines",
]


def read_rows(path: Path = SST2) -> list[tuple[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"SST-2 not found at {path}; set MAAS_SST2_TSV to its train.tsv")
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        label, _, text = line.partition("\t")
        if i == 0 and label.strip().lower() == "label":
            continue
        if text.strip():
            rows.append((label.strip(), text))
    return rows


def split_rows() -> dict[str, list[tuple[str, str]]]:
    rows = read_rows()
    order = np.random.default_rng(SEED).permutation(len(rows))
    cuts = np.cumsum([EVAL_ROWS, VAL_ROWS, TRAIN_ROWS])
    parts = np.split(order[: cuts[-1]], cuts[:-1])
    return {
        name: [rows[i] for i in idx]
        for name, idx in zip(("eval", "val", "train"), parts, strict=True)
    }


def _write_tsv(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("label\tsentence\n" + "".join(f"{y}\t{t}\n" for y, t in rows))


def _key(splits: dict[str, list[tuple[str, str]]]) -> str:
    h = hashlib.sha256()
    for f in sorted(TRAINING.rglob("*.py")):  # train.py, inference.py, ..., maas_training/
        h.update(f.relative_to(TRAINING).as_posix().encode() + f.read_bytes())
    h.update(json.dumps([FINE_TUNE_ARGS, splits["train"], splits["val"]]).encode())
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
    key = _key(splits)
    work = CACHE / f"minilm-{key}"
    model_dir = work / "model"
    facts = {"train_rows": len(splits["train"]), "eval_rows": len(splits["eval"]), "key": key}
    if (model_dir / "model.int8.onnx").exists():
        log(f"[minilm] cached fine-tuned model {model_dir.relative_to(ROOT)}")
        facts.update(json.loads((work / "facts.json").read_text()))
        return model_dir, splits["eval"], facts
    shutil.rmtree(work, ignore_errors=True)
    for name in ("train", "val"):
        _write_tsv(work / name / f"{name}.tsv", splits[name])
    log(f"[minilm] fine-tuning MiniLM on {len(splits['train'])} SST-2 rows (runs once, cached)")
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(TRAINING / "train.py"),
            *FINE_TUNE_ARGS,
            "--train",
            str(work / "train"),
            "--validation",
            str(work / "val"),
            "--model-dir",
            str(model_dir),
            "--output-data-dir",
            str(work / "out"),
        ],
        check=True,
        cwd=ROOT,
    )
    facts["fine_tune_s"] = round(time.perf_counter() - started, 1)
    facts["val_accuracy"] = json.loads((work / "out" / "metrics.json").read_text()).get(
        "validation:accuracy"
    )
    log("[minilm] exporting ONNX fp32 and dynamic int8")
    subprocess.run(
        [sys.executable, str(TRAINING / "export.py"), "quantize", "--model-dir", str(model_dir)],
        check=True,
        capture_output=True,
    )
    (work / "facts.json").write_text(json.dumps(facts))
    return model_dir, splits["eval"], facts


if __name__ == "__main__":
    path, rows, info = fine_tuned_model()
    print(path, len(rows), info)
