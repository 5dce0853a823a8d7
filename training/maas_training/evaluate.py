"""Scores a trained model dir on a data channel through the serving code path.

    python -m maas_training.evaluate --model-dir model --data data/digits/test

Classifiers report test_accuracy; the autoencoder reports test_roc_auc with its anomaly class.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from maas_training.data import read_npz, read_tsv
from maas_training.serving import LoadedModel, load, run_images, run_texts


def model_outputs(model: LoadedModel, channel: str | Path) -> tuple[list[np.ndarray], list]:
    """The backend's raw outputs (logits, or score + embedding) and the data's own labels."""
    if model.config["input"]["kind"] == "text":
        labels, texts = read_tsv(channel)
        return run_texts(model, texts), labels
    x, y = read_npz(channel)
    return run_images(model, x), [] if y is None else list(y)


def score(model: LoadedModel, channel: str | Path) -> dict[str, float]:
    outputs, labels = model_outputs(model, channel)
    return model.task.score(outputs, labels, model.config)


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
    result = score(load(a.model_dir), a.data)
    print(" ".join(f"test_{k}={v:.6g}" for k, v in result.items()), flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=2))
