"""Following a job or a deployment: poll until it ends, yielding what is worth a line."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

Json = dict[str, Any]


def training_milestone(job: Json) -> tuple[Any, ...]:
    """What makes a job's progress worth a line: its states, and the per-epoch metrics."""
    metrics = job.get("metrics") or {}
    per_epoch = tuple(sorted((k, v) for k, v in metrics.items() if k.startswith("validation:")))
    return (
        job.get("status"),
        job.get("secondary_status"),
        job.get("registered_version"),
        per_epoch,
    )


def watch(
    fetch: Callable[[], Json],
    terminal: frozenset[str],
    timeout_s: float,
    interval_s: float,
    milestone: Callable[[Json], Any],
) -> Iterator[Json]:
    """Fetches every `interval_s` seconds; yields the item when its milestone changes, until its
    status is terminal. Raises TimeoutError after `timeout_s` seconds."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        current = fetch()
        if milestone(current) != last:
            yield current
            last = milestone(current)
        if current.get("status") in terminal:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"still {current.get('status')} after {timeout_s:.0f}s")
        time.sleep(interval_s)
