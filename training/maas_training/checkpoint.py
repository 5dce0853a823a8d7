"""Per-epoch training checkpoints, written atomically so a killed run never leaves half a file.

Resuming is exact because nothing random carries over between epochs: each epoch reseeds the
RNGs and shuffles from (seed, epoch). The checkpoint therefore holds the model, optimizer and
scheduler states and the number of finished epochs, and nothing else is needed; it also keeps
the metrics of those epochs, so that a resumed run's history starts at epoch 1.

Frozen weights (LoRA's base model) are left out: they never change, and the resumed run loads
them again from the same pretrained folder, so the checkpoint holds the adapters alone.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

CHECKPOINT_FILE = "checkpoint.pt"


class CheckpointMismatchError(RuntimeError):
    """The checkpoint directory holds a run with different hyperparameters."""


def save_checkpoint(
    directory: str | Path,
    *,
    model,
    optimizer,
    scheduler,
    epochs_done: int,
    fingerprint: dict,
    history: list[dict[str, float]] | None = None,
) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {
        "epochs_done": epochs_done,
        "fingerprint": fingerprint,
        "model": _changing_state(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "history": list(history or []),
    }
    final = directory / CHECKPOINT_FILE
    tmp = directory / f".{CHECKPOINT_FILE}.{os.getpid()}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, final)  # atomic: readers see the old checkpoint or the new one
    return final


def load_checkpoint(
    directory: str | Path | None,
    *,
    model,
    optimizer,
    scheduler,
    fingerprint: dict,
    history: list[dict[str, float]] | None = None,
) -> int:
    """Restores states from the directory's checkpoint; returns the epochs it had finished.
    `history`, when given, receives the metrics of those epochs."""
    if not directory:
        return 0
    path = Path(directory) / CHECKPOINT_FILE
    if not path.exists():
        return 0
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state["fingerprint"] != fingerprint:
        changed = sorted(
            k
            for k in set(fingerprint) | set(state["fingerprint"])
            if fingerprint.get(k) != state["fingerprint"].get(k)
        )
        raise CheckpointMismatchError(
            f"checkpoint {path} comes from a run with different hyperparameters "
            f"({', '.join(changed)}); remove it or pass another --checkpoint-dir"
        )
    _load_changing_state(model, state["model"], path)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if history is not None:
        history[:] = state.get("history", [])
    return int(state["epochs_done"])


def _frozen_names(model) -> set[str]:
    # remove_duplicate=False: a tied weight's every name (lm_head.weight beside wte.weight)
    return {n for n, p in model.named_parameters(remove_duplicate=False) if not p.requires_grad}


def _changing_state(model) -> dict:
    """The model's state less its frozen parameters (all of it when nothing is frozen)."""
    frozen = _frozen_names(model)
    return {k: v for k, v in model.state_dict().items() if k not in frozen}


def _load_changing_state(model, state: dict, path: Path) -> None:
    missing, unexpected = model.load_state_dict(state, strict=False)
    absent = sorted(set(missing) - _frozen_names(model))
    if absent or unexpected:
        raise CheckpointMismatchError(
            f"checkpoint {path} does not fit the model: missing {absent[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}; remove it or pass another --checkpoint-dir"
        )
