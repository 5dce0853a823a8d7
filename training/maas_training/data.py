"""Reading SageMaker channels into tensors, and batching them in a seeded order.

Image recipes read every `*.npz` in a channel (`x` (N, C, H, W), `y` (N,), optional
`label_names`); text recipes read every `*.tsv` (`label<TAB>text`, header line optional).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


class DataError(ValueError):
    """The training data is missing or malformed."""


def _files(channel: str | Path, suffix: str) -> list[Path]:
    root = Path(channel)
    if not root.exists():
        raise DataError(f"data channel {root} does not exist")
    files = [root] if root.is_file() else sorted(root.rglob(f"*{suffix}"))
    if not files:
        raise DataError(f"no {suffix} files in data channel {root}")
    return files


def read_npz(channel: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """All `*.npz` in a channel: x (N, C, H, W) float32, y (N,) or None; y named if given."""
    xs, ys = [], []
    for f in _files(channel, ".npz"):
        with np.load(f, allow_pickle=False) as z:
            if "x" not in z:
                raise DataError(f"{f} has no array named 'x' (expected x (N, C, H, W) and y (N,))")
            x = z["x"]
            if x.ndim != 4:
                raise DataError(f"{f}: x must be (N, C, H, W), got shape {x.shape}")
            xs.append(x.astype(np.float32))
            if "y" in z:
                y = z["y"]
                ys.append(z["label_names"][y] if "label_names" in z else y)
    x = np.concatenate(xs)
    if ys and len(ys) != len(xs):
        raise DataError(f"some .npz files in {channel} have 'y' and some do not")
    y = np.concatenate(ys) if ys else None
    if y is not None and len(y) != len(x):
        raise DataError(f"{channel}: x has {len(x)} rows but y has {len(y)}")
    if not np.isfinite(x).all():
        raise DataError(f"{channel}: x contains NaN or Inf")
    return x, y


def read_tsv(channel: str | Path) -> tuple[list[str], list[str]]:
    """All `*.tsv` in a channel as (labels, texts); a first line labelled 'label' is a header."""
    labels, texts = [], []
    for f in _files(channel, ".tsv"):
        with f.open(newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)):
                if i == 0 and row and row[0].strip().lower() == "label":
                    continue
                if not row or not "".join(row).strip():
                    continue
                if len(row) < 2:
                    raise DataError(f"{f} line {i + 1}: expected 'label<TAB>text'")
                labels.append(row[0].strip())
                texts.append("\t".join(row[1:]))
    if not texts:
        raise DataError(f"no rows in the .tsv files of {channel}")
    return labels, texts


def _label_key(v) -> tuple:
    if isinstance(v, str) and v.lstrip("-").isdigit():
        return (0, int(v), v)
    return (0, v, str(v)) if isinstance(v, int | float) else (1, 0, str(v))


def sorted_labels(values) -> list:
    """Distinct labels as the data named them (str or int), numbers in numeric order."""
    return sorted({v.item() if hasattr(v, "item") else v for v in values}, key=_label_key)


def encode_labels(values, labels: list) -> np.ndarray:
    index = {v: i for i, v in enumerate(labels)}
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        key = v.item() if hasattr(v, "item") else v
        if key not in index:
            raise DataError(f"label {key!r} appears in validation data but not in training data")
        out[i] = index[key]
    return out


def holdout(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded (train_idx, val_idx) split, used when there is no validation channel."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"--val-fraction must be between 0 and 1, got {fraction}")
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * fraction)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


@dataclass
class TensorData:
    """In-memory examples. Text inputs are (ids (N, T), lengths (N,)); images are (x,)."""

    inputs: tuple[torch.Tensor, ...]
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.targets)

    def batch(
        self, idx: torch.Tensor, device: torch.device
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        parts = [t[idx] for t in self.inputs]
        if len(parts) == 2:  # text: trim the padding that no row in this batch needs
            parts[0] = parts[0][:, : int(parts[1].max())]
        return tuple(p.to(device, non_blocking=True) for p in parts), self.targets[idx].to(device)


def epoch_batches(
    data: TensorData, batch_size: int, seed: int, epoch: int, rank: int, world: int, shuffle: bool
) -> list[torch.Tensor]:
    """This rank's batches for one epoch; the order depends on (seed, epoch) alone.

    Ranks take strided shares of one permutation, padded to equal size as DistributedSampler
    does, so every rank runs the same number of steps. Text batches are bucketed by length.
    """
    n = len(data)
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n, generator=g) if shuffle else torch.arange(n)
    per_rank = -(-n // world)
    order = torch.cat([order, order[: per_rank * world - n]])[rank::world]
    if len(data.inputs) == 2 and shuffle:
        lengths = data.inputs[1][order]
        chunk = batch_size * 32
        sorted_parts = [
            order[i : i + chunk][torch.argsort(lengths[i : i + chunk], stable=True)]
            for i in range(0, len(order), chunk)
        ]
        batches = list(torch.cat(sorted_parts).split(batch_size))
        return [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
    return list(order.split(batch_size))
