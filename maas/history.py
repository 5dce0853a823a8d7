"""A training job's history, read from the lines its script printed:

    epoch=2 step=30/100 train_loss=0.4123                    a step of epoch 2 (30 of 100)
    epoch=2 train_loss=0.41 val_loss=0.3 val_accuracy=0.91   epoch 2 has ended: its metrics

Only lines that start with `epoch=` count; every other `name=number` pair on them is a metric,
so a metric a recipe adds needs no change here. (maas_training.metrics writes these lines; the
client cannot import it, as it needs numpy and lives in the training code.)
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

_STEP = re.compile(r"^(\d+)/(\d+)$")

Values = dict[str, float | None]  # None: the script printed nan or inf


@dataclass(frozen=True)
class Step:
    """Progress within an epoch: `step` of `steps` done, with the running values."""

    epoch: int
    step: int
    steps: int
    values: Values


@dataclass(frozen=True)
class EpochEnd:
    """An epoch has ended, with its metrics."""

    epoch: int
    metrics: Values


def parse(line: str) -> Step | EpochEnd | None:
    """What a log line says about the job's epochs; None for any other line."""
    words = line.split()
    if not words or not words[0].startswith("epoch="):
        return None
    epoch = words[0].removeprefix("epoch=")
    if not epoch.isdigit():
        return None
    pairs = dict(word.split("=", 1) for word in words[1:] if "=" in word)
    done = pairs.pop("step", None)
    values = _metrics(pairs)
    if done is None:
        return EpochEnd(int(epoch), values)
    step = _STEP.match(done)
    if not step:
        return None
    return Step(int(epoch), int(step.group(1)), int(step.group(2)), values)


def history(lines: Iterable[str]) -> list[dict[str, float | None]]:
    """One dict per ended epoch, by epoch: `{"epoch": 1, "train_loss": 0.41, ...}`. An epoch
    run twice (a job restarted from an older checkpoint) keeps its last run's metrics."""
    epochs: dict[int, Values] = {}
    for line in lines:
        event = parse(line)
        if isinstance(event, EpochEnd):
            epochs[event.epoch] = event.metrics
    return [{"epoch": epoch, **epochs[epoch]} for epoch in sorted(epochs)]


def _metrics(pairs: dict[str, str]) -> Values:
    """The pairs whose values are numbers (a value that is a word is not a metric)."""
    values: Values = {}
    for name, text in pairs.items():
        try:
            value = float(text)
        except ValueError:
            continue
        values[name] = value if math.isfinite(value) else None
    return values
