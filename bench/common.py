"""What every benchmark shares: the row it reports, spread statistics, the machine it ran on."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One line of the table: maas against a baseline measured in the same run.

    `ratio` is maas / baseline for higher-is-better figures (throughput) and the reverse
    comparison is spelled out in `goal` for lower-is-better ones (latency, import time).
    """

    bench: str
    maas: str  # the raw figure, with its unit
    baseline: str  # the raw figure, with its unit and what the baseline is
    ratio: float | None
    goal: str  # e.g. ">= 3x", "<= 1.5x", or "-" when the row only informs
    met: bool | None  # None: no goal, or not measured
    spread: str
    notes: list[str] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # each repeat's ratio, for the chart

    @property
    def goal_ratio(self) -> tuple[str, float] | None:
        """(">=" or "<=", the ratio) from a goal that starts with one, e.g. ">= 1.5x, ..."."""
        m = re.match(r"\s*(>=|<=)\s*([0-9.]+)x", self.goal)
        return (m.group(1), float(m.group(2))) if m else None

    @property
    def verdict(self) -> str:
        if self.met is None:
            return "-" if self.ratio is not None else "not measured"
        return "yes" if self.met else "NO"


@dataclass
class ClosedLoop:
    """What `closed_loop` measured: each answered request's latency, the answers by item,
    the failures, and the wall time from the common start to the last thread's end."""

    latencies_ms: list[float]
    answers: dict[int, Any]
    errors: list[str]
    seconds: float

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds


def closed_loop(callers: list[Callable[[int], Any]], items: int, per_client: int) -> ClosedLoop:
    """One thread per caller, all released together, each sending `per_client` requests back
    to back: caller i's k-th request is item (i * per_client + k) % items. A failure is
    counted and reported, never hidden, and has no latency."""
    latencies: list[list[float]] = [[] for _ in callers]
    answers: dict[int, Any] = {}
    errors: list[str] = []
    start = threading.Barrier(len(callers) + 1)

    def client(i: int) -> None:
        start.wait()
        for k in range(per_client):
            which = (i * per_client + k) % items
            t0 = time.perf_counter()
            try:
                answers[which] = callers[i](which)
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
                continue
            latencies[i].append((time.perf_counter() - t0) * 1000)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(callers))]
    for thread in threads:
        thread.start()
    start.wait()
    t0 = time.perf_counter()
    for thread in threads:
        thread.join(timeout=600)
    seconds = time.perf_counter() - t0
    return ClosedLoop([x for per in latencies for x in per], answers, errors, seconds)


def print_rows(rows: list[Row]) -> int:
    """A benchmark module's `python -m` output: its rows as run_all's table, then the notes."""
    from bench.run_all import table_text

    print()
    print(table_text(rows))
    for row in rows:
        for note in row.notes:
            print(f"  note: {note}")
    return 0


def not_measured(bench: str, goal: str, why: str) -> Row:
    return Row(bench, "not measured", "not measured", None, goal, None, why)


def iqr(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[2] - q[0]


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100), so it is always an observed value."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def min_max(values: list[float], fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(min(values))}-{fmt.format(max(values))}"


def bench_threads() -> int:
    """One thread count for every side of every comparison: MAAS_BENCH_THREADS or all cores."""
    return int(os.environ.get("MAAS_BENCH_THREADS") or os.cpu_count() or 1)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# The vector extensions that decide int8 and fp32 speed: without AVX-512 VNNI (or AVX-VNNI),
# onnxruntime's int8 matmuls run no faster than fp32, so the text row moves with the host.
_CPU_FEATURES = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def cpu_flags() -> set[str] | None:
    """The CPU's instruction-set flags from /proc/cpuinfo; None where it cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None


def _cpu_features() -> str:
    flags = cpu_flags()
    if flags is None:
        return "unknown"
    return ", ".join(f for f in _CPU_FEATURES if f in flags) or "none of " + ", ".join(
        _CPU_FEATURES
    )


def _memory_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except ImportError:
        return "not installed"


def machine() -> dict[str, str]:
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cpu features": _cpu_features(),
        "cores": str(os.cpu_count()),
        "memory": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": _version("torch"),
        "onnxruntime": _version("onnxruntime"),
        "transformers": _version("transformers"),
        "threads": str(bench_threads()),
        "load average at start (1, 5, 15 min)": load,
    }
