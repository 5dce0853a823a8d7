"""TorchServe's batch forming, for the emulator's model servers.

Requests queue up; one inference thread takes up to `max_size` of them, waiting at most
`max_delay_s` after the first (TorchServe's `batchSize` and `maxBatchDelay`), and hands the
batch to `run`, which answers each request in order. What happens inside a batch (one model
call per request, or one joined call) is the entry point's business (model_worker.py), not the
queue's. `max_size=1` sends every request on its own.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Item = TypeVar("Item")
Answer = TypeVar("Answer")


@dataclass
class _Waiting(Generic[Item, Answer]):
    item: Item
    future: Future[Answer] = field(default_factory=Future)


class Batcher(Generic[Item, Answer]):
    """One inference thread in front of a batch runner."""

    def __init__(
        self,
        run: Callable[[list[Item]], list[Answer]],
        *,
        max_size: int = 1,
        max_delay_s: float = 0.1,
    ) -> None:
        self.run = run
        self.max_size = max(1, max_size)
        self.max_delay_s = max(0.0, max_delay_s)
        self.batches = 0  # batches of more than one request, and the requests in them
        self.batched_requests = 0
        self._queue: queue.Queue[_Waiting[Item, Answer] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="batcher", daemon=True)
        self._thread.start()

    def submit(self, item: Item, timeout: float) -> Answer:
        waiting: _Waiting[Item, Answer] = _Waiting(item)
        self._queue.put(waiting)
        return waiting.future.result(timeout=timeout)

    def close(self) -> None:
        self._queue.put(None)

    def _collect(self, first: _Waiting[Item, Answer]) -> list[_Waiting[Item, Answer]]:
        batch = [first]
        deadline = time.monotonic() + self.max_delay_s
        while len(batch) < self.max_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                waiting = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if waiting is None:
                self._queue.put(None)
                break
            batch.append(waiting)
        return batch

    def _loop(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = self._collect(first) if self.max_size > 1 else [first]
            if len(batch) > 1:
                self.batches += 1
                self.batched_requests += len(batch)
            try:
                answers = self.run([waiting.item for waiting in batch])
                if len(answers) != len(batch):
                    raise RuntimeError(f"{len(answers)} answers for {len(batch)} requests")
            except BaseException as exc:  # never leave a caller waiting
                for waiting in batch:
                    waiting.future.set_exception(exc)
                continue
            for waiting, answer in zip(batch, answers, strict=True):
                waiting.future.set_result(answer)
