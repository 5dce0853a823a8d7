"""A bounded loopback load test on predict: concurrency steps 1 to 32, about 40 s in all.

Passes when no request fails and no local process (gateway, SageMaker emulator, moto, model
servers) grows its RSS by 10% or more from the end of the warm-up to the end of the run.
Latency and throughput are printed (and kept for the session summary), never asserted.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from dataclasses import dataclass, field

import psutil
import pytest
import requests

from tests.reliability.reliability_helpers import DIGITS, record

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STEPS = (1, 2, 4, 8, 16, 32)
STEP_SECONDS = 5.5
WARM_UP_SECONDS = 4.0
MAX_REQUESTS_PER_STEP = 20_000  # a bound even if the machine were very fast
RSS_GROWTH_LIMIT = 0.10


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _hammer(url: str, headers: dict, body: bytes, tally: Tally, stop_at: float, budget) -> None:
    with requests.Session() as session:
        while time.monotonic() < stop_at and next(budget, None) is not None:
            started = time.perf_counter()
            try:
                response = session.post(url, data=body, headers=headers, timeout=30)
                ok = response.status_code == 200 and "predictions" in response.text
                error = None if ok else f"{response.status_code} {response.text[:200]}"
            except requests.RequestException as exc:
                error = f"{type(exc).__name__}: {exc}"
            elapsed = (time.perf_counter() - started) * 1000
            with tally.lock:
                tally.latencies_ms.append(elapsed)
                if error:
                    tally.errors.append(error)


def _run_step(url: str, headers: dict, body: bytes, workers: int, seconds: float) -> Tally:
    tally = Tally()
    stop_at = time.monotonic() + seconds
    budget = iter(range(MAX_REQUESTS_PER_STEP))
    threads = [
        threading.Thread(target=_hammer, args=(url, headers, body, tally, stop_at, budget))
        for _ in range(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    return tally


def _local_processes(stack) -> dict[str, psutil.Process]:
    """Every process of the stack: moto, emulator, gateway, the gateway's fork server and the
    functions' execution environments it forks, and the model servers."""
    supervisor = psutil.Process(stack.state["supervisor"]["pid"])
    found = {}
    for proc in supervisor.children(recursive=True):
        try:
            argv = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        name = next((part for part in ("moto", "gateway") if part in argv), None)
        if "maas_local.forkserver" in argv:  # forked environments keep the server's argv
            name = f"function-environment {proc.pid}"
        elif "multiprocessing.resource_tracker" in argv:
            name = f"resource-tracker {proc.pid}"
        elif "model_worker" in argv:
            name = f"model-server {proc.pid}"
        elif "maas_local.sagemaker" in argv:
            name = "sagemaker-emulator"
        found[name or f"other {proc.pid}"] = proc
    return found


def _rss(proc: psutil.Process) -> int:
    try:
        return proc.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if values else 0.0


def test_predict_under_stepped_load_loses_nothing_and_does_not_grow_memory(stack, digits_model):
    _, held = digits_model
    url = f"{stack.api_url}/v1/models/{DIGITS}/predict"
    headers = {**stack.headers("invoke"), "Content-Type": "application/json"}
    body = json.dumps({"instances": held.x[:1].reshape(1, 64).tolist()}).encode()

    warm = _run_step(url, headers, body, max(STEPS), WARM_UP_SECONDS)
    processes = _local_processes(stack)
    baseline = {name: proc.memory_info().rss for name, proc in processes.items()}

    results = {}
    started = time.monotonic()
    for workers in STEPS:
        tally = _run_step(url, headers, body, workers, STEP_SECONDS)
        results[workers] = tally
        served = len(tally.latencies_ms)
        print(
            f"load: concurrency {workers:>2}: {served} requests, {len(tally.errors)} errors, "
            f"{served / STEP_SECONDS:.0f} req/s, p50 {_percentile(tally.latencies_ms, 50):.1f} ms,"
            f" p99 {_percentile(tally.latencies_ms, 99):.1f} ms"
        )
    elapsed = time.monotonic() - started
    after = {name: _rss(proc) for name, proc in processes.items()}

    everything = [ms for tally in results.values() for ms in tally.latencies_ms]
    errors = [e for tally in [warm, *results.values()] for e in tally.errors]
    # An environment that timed out is replaced, so only those still alive are compared.
    growth = {name: after[name] / baseline[name] - 1 for name in baseline if after[name]}
    figures = {
        "requests": len(everything) + len(warm.latencies_ms),
        "errors": len(errors),
        "p50_ms": round(_percentile(everything, 50), 1),
        "p99_ms": round(_percentile(everything, 99), 1),
        "throughput_rps": round(len(everything) / elapsed, 1),
        "rss_growth": {name: f"{g:+.1%}" for name, g in growth.items()},
    }
    record("load", figures)
    print(f"load: {figures}")
    helpers = ("model-server", "function-environment", "resource-tracker")
    assert sorted(p for p in processes if not p.startswith(helpers)) == [
        "gateway",
        "moto",
        "sagemaker-emulator",
    ]
    assert any(p.startswith("model-server") for p in processes)
    assert all(len(t.latencies_ms) > 0 for t in results.values())
    assert errors == [], errors[:5]
    assert {n: g for n, g in growth.items() if g >= RSS_GROWTH_LIMIT} == {}
