"""Scores a trained model dir on a data channel through the serving code path.

    python training/evaluate_model.py --model-dir model --data data/digits/test

Classifiers report test_accuracy; the autoencoder reports test_roc_auc with its anomaly class.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from inference import LoadedModel, _run_images, _run_texts, model_fn  # noqa: E402
from maas_data import encode_labels, read_npz, read_tsv  # noqa: E402
from maas_metrics import roc_auc  # noqa: E402


def model_outputs(model: LoadedModel, channel: str | Path) -> tuple[list[np.ndarray], list]:
    """The backend's raw outputs (logits, or score + embedding) and the data's own labels."""
    if model.config["input"]["kind"] == "text":
        labels, texts = read_tsv(channel)
        return _run_texts(model, texts), labels
    x, y = read_npz(channel)
    return _run_images(model, x), [] if y is None else list(y)


def score(model: LoadedModel, channel: str | Path) -> dict[str, float]:
    cols, labels = model_outputs(model, channel)
    config = model.config
    if config["recipe"] == "autoencoder":
        anomaly = config.get("anomaly_class")
        if anomaly is None or not labels:
            return {"mean_anomaly_score": float(cols[0].mean())}
        flags = np.array([str(v) == anomaly for v in labels])
        return {"roc_auc": roc_auc(cols[0], flags), "rows": float(len(flags))}
    targets = encode_labels(labels, config["labels"])
    return {"accuracy": float((cols[0].argmax(1) == targets).mean()), "rows": float(len(targets))}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model-dir", required=True, help="a trained model dir (what train.py wrote)")
    p.add_argument(
        "--data", required=True, help="a channel: folder of .npz or .tsv files with labels"
    )
    p.add_argument("--out", default=None, help="also write the figures to this JSON file")
    return p.parse_args(argv)


if __name__ == "__main__":
    a = parse_args()
    result = score(model_fn(a.model_dir), a.data)
    print(" ".join(f"test_{k}={v:.6g}" for k, v in result.items()), flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=2))
