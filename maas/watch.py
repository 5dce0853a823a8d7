"""Following a job or a deployment: poll until it ends, yielding what is worth a line (or, for
a job, with the lines its log took in meanwhile)."""

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


def watch_with_lines(
    fetch: Callable[[], Json],
    read: Callable[[bool], list[str]],
    terminal: frozenset[str],
    interval_s: float,
    settle_s: float,
) -> Iterator[tuple[Json, list[str]]]:
    """Every `interval_s` seconds: the item, with the lines `read(False)` gave since. Once its
    status is terminal, `settle_s` later (a log may still be taking in its last lines): the
    item with the rest, a last line not yet ended too (`read(True)`). It waits as long as the
    item runs: a training job may take hours, and Ctrl-C is how a person stops following."""
    while True:
        current = fetch()
        if current.get("status") in terminal:
            time.sleep(settle_s)
            yield current, read(True)
            return
        yield current, read(False)
        time.sleep(interval_s)
