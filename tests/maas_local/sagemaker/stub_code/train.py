"""A minimal script-mode training script for emulator tests: a nearest-centroid classifier.

Reads every *.npz (x (N, F), y (N,)) in SM_CHANNEL_TRAIN / SM_CHANNEL_VALIDATION, "trains" for
--epochs epochs (printing the metrics the job's MetricDefinitions parse), checkpoints each epoch
to --checkpoint-dir and resumes from it, and saves centroids plus code/ into SM_MODEL_DIR.
"""

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np


def parse_args():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2, help="passes over the data")
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds per epoch")
    parser.add_argument("--fail-with", default="", help="raise ValueError with this message")
    parser.add_argument("--checkpoint-dir", default="", help="where epochs are checkpointed")
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR"), help="output")
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"), help="data")
    return parser.parse_args()


def load(channel):
    parts = [np.load(p) for p in sorted(Path(channel).glob("*.npz"))]
    if not parts:
        raise FileNotFoundError(f"no .npz files in {channel}")
    return np.concatenate([p["x"] for p in parts]), np.concatenate([p["y"] for p in parts])


def main():
    args = parse_args()
    hps = json.loads(os.environ["SM_HPS"])
    print(f"hyperparameters {json.dumps(hps, sort_keys=True)}")
    x, y = load(args.train)
    start = 0
    ckpt = Path(args.checkpoint_dir) / "epoch.json" if args.checkpoint_dir else None
    if ckpt and ckpt.exists():
        start = json.loads(ckpt.read_text())["epoch"]
        print(f"resumed from epoch {start}")
    labels = np.unique(y)
    centroids = np.stack([x[y == c].mean(axis=0) for c in labels])
    for epoch in range(start + 1, args.epochs + 1):
        if args.fail_with and epoch == args.epochs:
            raise ValueError(args.fail_with)
        time.sleep(args.sleep)
        distance = ((x[:, None, :] - centroids[None]) ** 2).sum(-1)
        accuracy = float((labels[distance.argmin(1)] == y).mean())
        print(f"epoch={epoch} train_loss={1.0 / epoch:.4f} val_accuracy={accuracy:.4f}")
        print(f"progress epoch {epoch}/{args.epochs}", file=sys.stderr)
        if ckpt:
            ckpt.write_text(json.dumps({"epoch": epoch}))
    model_dir = Path(args.model_dir)
    np.save(model_dir / "centroids.npy", centroids)
    np.save(model_dir / "labels.npy", labels)
    shutil.copytree(Path(__file__).parent / "serve", model_dir / "code")
    out = Path(os.environ["SM_OUTPUT_DATA_DIR"]) / "metrics.json"
    out.write_text(json.dumps({"validation:accuracy": accuracy}))


if __name__ == "__main__":
    main()
