"""Adaptive batching for a model server: concurrent requests share one `predict_fn` call.

Requests queue up; a single inference thread takes up to `max_size` of them, waiting at most
`max_wait_s` after the first. Each request is decoded by `input_fn` on its own. When the decoded
inputs are arrays (torch or numpy, or dicts of them) with the same trailing shape and dtype, they
are concatenated along the first axis, predicted once, and the prediction is split back by
rows. Anything else, or any error in the batched call, falls back to one request at a time,
so batching never changes an answer. `max_size=1` turns batching off.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Request:
    body: bytes
    content_type: str
    accept: str
    context: Any = None  # the toolkit's per-request context, for handlers that take one
    future: Future = field(default_factory=Future)
    decoded: Any = None


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
    return None


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


class Batcher:
    """One inference thread in front of the model's handler functions."""

    def __init__(self, handler: Any, *, max_size: int = 8, max_wait_s: float = 0.005) -> None:
        self.handler = handler
        self.max_size = max(1, max_size)
        self.max_wait_s = max(0.0, max_wait_s)
        self.batches = 0
        self.batched_requests = 0
        self._queue: queue.Queue[Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="batcher", daemon=True)
        self._thread.start()

    def submit(
        self, body: bytes, content_type: str, accept: str, timeout: float, context: Any = None
    ) -> Any:
        request = Request(body, content_type, accept, context)
        self._queue.put(request)
        return request.future.result(timeout=timeout)

    def close(self) -> None:
        self._queue.put(None)

    def _collect(self, first: Request) -> list[Request]:
        batch = [first]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)
                break
            batch.append(item)
        return batch

    def _loop(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = self._collect(first) if self.max_size > 1 else [first]
            try:
                self._process(batch)
            except BaseException as exc:  # never leave a caller waiting
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)

    def _process(self, batch: list[Request]) -> None:
        live = []
        for request in batch:
            try:
                request.decoded = self._input(request)
                live.append(request)
            except Exception as exc:
                request.future.set_exception(exc)
        predictions = self._predict_batched(live) if len(live) > 1 else None
        for i, request in enumerate(live):
            try:
                if predictions is None:
                    prediction = self._predict(request.decoded, request.context)
                else:
                    prediction = predictions[i]
                request.future.set_result(self._output(prediction, request))
            except Exception as exc:
                request.future.set_exception(exc)

    def _predict_batched(self, live: list[Request]) -> list[Any] | None:
        joined = concat([r.decoded for r in live])
        if joined is None:
            return None
        inputs, sizes = joined
        contexts = [r.context for r in live]
        context = None if None in contexts else type(contexts[0]).spanning(contexts)
        try:
            predictions = split(self._predict(inputs, context), sizes)
        except Exception:
            return None  # one bad input must not fail the others: retry them one by one
        if predictions is not None:
            self.batches += 1
            self.batched_requests += len(live)
        return predictions

    # The handler's functions take the request's context only when the caller passed one.
    def _input(self, request: Request) -> Any:
        args = (request.body, request.content_type)
        if request.context is None:
            return self.handler.input_fn(*args)
        return self.handler.input_fn(*args, request.context)

    def _predict(self, data: Any, context: Any) -> Any:
        if context is None:
            return self.handler.predict_fn(data, self.handler.model)
        return self.handler.predict_fn(data, self.handler.model, context)

    def _output(self, prediction: Any, request: Request) -> Any:
        if request.context is None:
            return self.handler.output_fn(prediction, request.accept)
        return self.handler.output_fn(prediction, request.accept, request.context)
