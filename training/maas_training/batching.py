"""Decoded requests joined into one model call, and the answer cut back into one per request.

inference.py's `handle` (TorchServe's batch entry point) runs this, in the AWS container and on
the local emulator alike. Inputs join when they are arrays (torch or numpy, or dicts and
dataclasses of them) with the same trailing shape and dtype, or lists of texts, and everything
else about them is equal. Each group of joinable inputs is predicted once and split back by
rows. A group whose joined call fails, or whose answer does not split by rows, is predicted
one input at a time, so joining never changes an answer and one bad input fails alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any


@dataclass
class Outcome:
    """One input's prediction, or the error predicting it raised."""

    value: Any = None
    error: Exception | None = None


def _kind(value: Any) -> str | None:
    module = type(value).__module__
    if module.startswith("torch") and hasattr(value, "shape") and hasattr(value, "dtype"):
        return "torch"
    if module == "numpy" and type(value).__name__ == "ndarray":
        return "numpy"
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return "texts"  # one text per row, as text models take them
    return None


def _fields(value: Any) -> dict[str, Any]:
    return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}


def _is_record(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def signature(value: Any) -> Hashable | None:
    """What two inputs must share to join; None for an input that joins with nothing."""
    kind = _kind(value)
    if kind == "texts":
        return ("texts",)
    if kind is not None:
        if value.ndim == 0:
            return None
        return (kind, tuple(value.shape[1:]), str(value.dtype))
    if _is_record(value):
        inner = signature(_fields(value))
        return None if inner is None else (type(value), inner)
    if isinstance(value, dict):
        parts: list[Hashable] = []
        for key, item in value.items():
            if _kind(item) is not None:
                part = signature(item)
            elif _hashable(item):
                part = ("equal", item)  # kept as it is: must be the same in every input
            else:
                return None
            if part is None:
                return None
            parts.append((key, part))
        if not any(_kind(item) is not None for item in value.values()):
            return None
        return ("dict", tuple(parts))
    return None


def groups(items: list[Any]) -> list[list[int]]:
    """Indexes of the items that may join, in order of first appearance; singletons apart."""
    by_signature: dict[Hashable, list[int]] = {}
    alone: list[list[int]] = []
    for i, item in enumerate(items):
        key = signature(item)
        if key is None:
            alone.append([i])
        else:
            by_signature.setdefault(key, []).append(i)
    return sorted([*by_signature.values(), *alone], key=lambda group: group[0])


def concat(items: list[Any]) -> tuple[Any, list[int]] | None:
    """Row-concatenates same-shaped arrays (or dicts of them); None when they don't fit."""
    kinds = {_kind(x) for x in items}
    if kinds == {"texts"}:
        return [text for x in items for text in x], [len(x) for x in items]
    if len(kinds) == 1 and None not in kinds:
        first = items[0]
        if first.ndim == 0 or any(
            x.shape[1:] != first.shape[1:] or x.dtype != first.dtype for x in items
        ):
            return None
        sizes = [int(x.shape[0]) for x in items]
        if kinds == {"torch"}:
            import torch

            return torch.cat(items, dim=0), sizes
        import numpy as np

        return np.concatenate(items, axis=0), sizes
    if all(_is_record(x) for x in items) and len({type(x) for x in items}) == 1:
        joined = concat([_fields(x) for x in items])
        if joined is None:
            return None
        return dataclasses.replace(items[0], **joined[0]), joined[1]
    if all(isinstance(x, dict) for x in items) and len({tuple(sorted(x)) for x in items}) == 1:
        return _concat_dicts(items)
    return None


def _concat_dicts(items: list[dict[str, Any]]) -> tuple[Any, list[int]] | None:
    merged: dict[str, Any] = {}
    sizes_seen: list[list[int]] = []
    for key in items[0]:
        values = [x[key] for x in items]
        if _kind(values[0]) is None:
            if any(v != values[0] for v in values):
                return None
            merged[key] = values[0]
            continue
        joined = concat(values)
        if joined is None:
            return None
        merged[key], sizes = joined
        sizes_seen.append(sizes)
    if not sizes_seen or any(s != sizes_seen[0] for s in sizes_seen):
        return None
    return merged, sizes_seen[0]


def split(prediction: Any, sizes: list[int]) -> list[Any] | None:
    """Cuts a batched prediction back into one per request; None when rows don't line up."""
    total = sum(sizes)
    bounds = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
    if _is_record(prediction):
        rows = split(_fields(prediction), sizes)
        return None if rows is None else [dataclasses.replace(prediction, **r) for r in rows]
    if _kind(prediction) is not None or isinstance(prediction, list):
        if _kind(prediction) in ("torch", "numpy") and prediction.ndim == 0:
            return None
        if len(prediction) != total:
            return None
        return [prediction[bounds[i] : bounds[i + 1]] for i in range(len(sizes))]
    if isinstance(prediction, dict | tuple):
        items = prediction.items() if isinstance(prediction, dict) else enumerate(prediction)
        parts: dict[Any, list[Any] | None] = {k: split(v, sizes) for k, v in items}
        if not any(p is not None for p in parts.values()):
            return None
        result = []
        for i in range(len(sizes)):
            row = {k: (p[i] if p is not None else prediction[k]) for k, p in parts.items()}
            result.append(row if isinstance(prediction, dict) else tuple(row.values()))
        return result
    return None


def _one(predict: Callable[[Any], Any], item: Any) -> Outcome:
    try:
        return Outcome(predict(item))
    except Exception as exc:  # this input's own failure, answered in its own slot
        return Outcome(error=exc)


def predict_joined(items: list[Any], predict: Callable[[Any], Any]) -> list[Outcome]:
    """One `predict` call per group of joinable items, split back; one call per item where
    joining does not fit or the joined call fails."""
    outcomes: list[Outcome] = [Outcome() for _ in items]
    for group in groups(items):
        rows = _predict_group([items[i] for i in group], predict) if len(group) > 1 else None
        if rows is None:
            for i in group:
                outcomes[i] = _one(predict, items[i])
        else:
            for i, row in zip(group, rows, strict=True):
                outcomes[i] = Outcome(row)
    return outcomes


def _predict_group(items: list[Any], predict: Callable[[Any], Any]) -> list[Any] | None:
    joined = concat(items)
    if joined is None:
        return None
    inputs, sizes = joined
    try:
        return split(predict(inputs), sizes)
    except Exception:
        return None  # one bad input must not fail the others: they are retried one by one
