"""Throughput and p95 latency through the local gateway to a handler, at client concurrency 16.

The gateway runs as `maas local up` runs it (`python -m maas_local.gateway_server --preload`),
in a process of its own, in front of a stand-in handler (bench/gateway_handlers) that spends a
little CPU and then waits on "the model", as a predict handler waits on its endpoint. Sixteen
client threads, each on a keep-alive session, send POSTs through the whole front door: token,
API key, usage plan, proxy event, handler, proxy response.

The baseline, measured in the same run, is a function with one execution environment: one
request through the handler at a time, as the process-wide lock of earlier versions allowed.
maas is the default of 4 environments per function, and 16 (one per client).

    python -m bench.gateway_concurrency         # prints a table
    from bench.gateway_concurrency import run   # rows for bench/run_all.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.common import Row, not_measured, percentile, print_rows
from maas_local.invoker import DEFAULT_CONCURRENCY
from maas_local.tokens import create_issuer, mint_token
from maas_local.usage_plans import UsagePlan, new_api_key, save_api_keys

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = 16
REQUESTS_PER_CLIENT = 25
HANDLER_CPU_MS, HANDLER_WAIT_MS = 2, 20
POOLS = (1, DEFAULT_CONCURRENCY, CLIENTS)  # environments per function; the first is the baseline
OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "bench", "version": "1"},
    "components": {"securitySchemes": {"cognito": {"type": "oauth2", "flows": {}}}},
    "paths": {
        "/v1/work": {
            "post": {
                "tags": ["work"],
                "security": [{"cognito": ["maas/invoke"]}],
                "responses": {"200": {"description": "ok"}},
            }
        }
    },
}


@dataclass
class Measured:
    environments: int
    throughput_rps: float
    p50_ms: float
    p95_ms: float
    errors: int


class Gateway:
    """A gateway process with `environments` per function, on a free port."""

    def __init__(self, home: Path, environments: int) -> None:
        self.home = home
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "BENCH_HANDLER_CPU_MS": str(HANDLER_CPU_MS),
            "BENCH_HANDLER_WAIT_MS": str(HANDLER_WAIT_MS),
        }
        argv = [sys.executable, "-m", "maas_local.gateway_server", "--preload", "--port"]
        argv += [str(port), "--keys-dir", str(home / "keys"), "--openapi", str(home / "api.json")]
        argv += ["--handlers-package", "bench.gateway_handlers"]
        argv += ["--function-concurrency", str(environments)]
        self.log = (home / f"gateway-{environments}.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603 - this interpreter, our own module
            argv, cwd=ROOT, env=env, stdout=self.log, stderr=self.log
        )

    def wait_healthy(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited; see {self.home}")
            try:
                requests.get(f"{self.url}/_local/health", timeout=1).raise_for_status()
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("the gateway did not become healthy")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def _prepare(home: Path) -> dict[str, str]:
    (home / "api.json").write_text(json.dumps(OPENAPI))
    create_issuer(home / "keys", "http://127.0.0.1/bench")
    key = new_api_key("bench", UsagePlan(rate_limit=1e6, burst_limit=10**6, quota_limit=10**9))
    save_api_keys(home / "keys", [key])
    token = mint_token(home / "keys", ["maas/invoke"])
    return {"Authorization": f"Bearer {token}", "x-api-key": key.value}


def _load(url: str, headers: dict[str, str]) -> tuple[list[float], int, float]:
    """Latencies (ms) and errors of CLIENTS threads, and the wall time they took together."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    body = json.dumps({"instances": [[0.1] * 64]})

    def client() -> None:
        nonlocal errors
        session = requests.Session()
        for _ in range(REQUESTS_PER_CLIENT):
            started = time.perf_counter()
            response = session.post(f"{url}/v1/work", data=body, headers=headers, timeout=60)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                errors += response.status_code != 200

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors, time.perf_counter() - started


def measure(home: Path, headers: dict[str, str], environments: int) -> Measured:
    gateway = Gateway(home, environments)
    try:
        gateway.wait_healthy()
        _load(gateway.url, headers)  # warm: every environment started, every session open
        latencies, errors, seconds = _load(gateway.url, headers)
    finally:
        gateway.stop()
    return Measured(
        environments,
        len(latencies) / seconds,
        percentile(latencies, 50),
        percentile(latencies, 95),
        errors,
    )


def run(log: Callable[[str], None] = print) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="maas-bench-gateway-") as tmp:
        home = Path(tmp)
        headers = _prepare(home)
        results = []
        for environments in POOLS:
            result = measure(home, headers, environments)
            log(
                f"gateway: {environments:>2} environments: {result.throughput_rps:.0f} req/s, "
                f"p50 {result.p50_ms:.1f} ms, p95 {result.p95_ms:.1f} ms, {result.errors} errors"
            )
            results.append(result)
    baseline, *others = results
    return [_row(baseline, other) for other in others]


def _row(baseline: Measured, other: Measured) -> Row:
    if baseline.errors or other.errors:  # failed requests are fast: no ratio from them
        return not_measured(
            f"6. gateway, concurrency {CLIENTS}, {other.environments} environments/function",
            "-",
            f"not measured: {other.errors} failed requests ({baseline.errors} with 1 env)",
        )
    return Row(
        bench=f"6. gateway, concurrency {CLIENTS}, {other.environments} environments/function",
        maas=f"{other.throughput_rps:.0f} req/s, p95 {other.p95_ms:.0f} ms",
        baseline=f"{baseline.throughput_rps:.0f} req/s, p95 {baseline.p95_ms:.0f} ms (1 env)",
        ratio=other.throughput_rps / baseline.throughput_rps,
        goal="-",
        met=None,
        spread=f"p50 {other.p50_ms:.0f} vs {baseline.p50_ms:.0f} ms",
        notes=[
            f"handler: {HANDLER_CPU_MS} ms CPU then {HANDLER_WAIT_MS} ms waiting on the model; "
            f"{CLIENTS} clients x {REQUESTS_PER_CLIENT} requests after a warm-up round; "
            f"errors {other.errors} (baseline {baseline.errors})"
        ],
    )


def main() -> int:
    return print_rows(run())


if __name__ == "__main__":
    raise SystemExit(main())
