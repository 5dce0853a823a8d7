"""Writes scikit-learn's 8x8 digits as train/validation/test channels of .npz files.

    python -m maas_training.prepare_digits --out data/digits

Each split holds x (N, 1, 8, 8) float32 scaled to [0, 1] and y (N,) int64, stratified and seeded.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--out", required=True, help="folder that receives train/, validation/ and test/"
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the stratified split")
    p.add_argument(
        "--validation-fraction", type=float, default=0.1, help="share of rows for validation/"
    )
    p.add_argument("--test-fraction", type=float, default=0.2, help="share of rows for test/")
    return p.parse_args(argv)


def split_stratified(y: np.ndarray, fractions: tuple[float, float], seed: int) -> list[np.ndarray]:
    """(train, validation, test) indices with each class spread in the same proportions."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_val, n_test = round(len(idx) * fractions[0]), round(len(idx) * fractions[1])
        parts[1] += idx[:n_val].tolist()
        parts[2] += idx[n_val : n_val + n_test].tolist()
        parts[0] += idx[n_val + n_test :].tolist()
    return [np.sort(np.array(p, dtype=np.int64)) for p in parts]


def write_digits(
    out: str | Path, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2
) -> dict[str, int]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]  # (N, 1, 8, 8)
    y = digits.target.astype(np.int64)
    counts = {}
    for name, idx in zip(
        ("train", "validation", "test"),
        split_stratified(y, (val_fraction, test_fraction), seed),
        strict=True,
    ):
        folder = Path(out) / name
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "digits.npz", x=x[idx], y=y[idx])
        counts[name] = len(idx)
    return counts


if __name__ == "__main__":
    a = parse_args()
    print(
        " ".join(
            f"{k}={v}"
            for k, v in write_digits(a.out, a.seed, a.validation_fraction, a.test_fraction).items()
        )
    )
