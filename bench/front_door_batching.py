"""Benchmark 8: batched serving through the front door, at client concurrency 16.

The whole path, as `maas local up` runs it (maas_local.lifecycle, in a home of its own): the
local gateway checks the token, the API key and its usage plan, and hands a proxy event to the
real predict handler (handlers/, in the gateway's parallel execution environments), which calls
sagemaker-runtime InvokeEndpoint on the SageMaker emulator, whose model server runs the model's
code/inference.py. Nothing on the way is a stand-in.

One model.tar.gz (the MiniLM text-transformer, PyTorch fp32: packaged without ONNX, so batched
answers are exact) is registered through the API under two model names and deployed through
the API twice: `batching: true` (the Model environment maas deploys with,
maas_contract.sagemaker.batched_serving_environment's SAGEMAKER_TS_BATCH_SIZE and
SAGEMAKER_TS_MAX_BATCH_DELAY) and `batching: false` (no TorchServe batch: the toolkit's batch
size of 1). Each request is one sentence, `{"instances": [sentence]}`, POSTed to
/v1/models/{name}/predict by CLIENTS threads on keep-alive sessions, each with its own token.

Rows:
- batching on against off, both through the front door. Runs alternate (off, on, direct; then
  the order turns) so load drift hits every side alike; REPEATS runs; the median ratio.
- the front door's own cost: the same bodies at the same concurrency, to the same (batching
  on) endpoint, through gateway + handler against plain boto3 invoke_endpoint.

    python -m bench.front_door_batching      # prints the rows
    from bench.front_door_batching import run
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from bench.common import Row, closed_loop, min_max, percentile, print_rows

CLIENTS = 16
REQUESTS_PER_CLIENT = 12
REPEATS = 3
SENTENCES = 64  # distinct request bodies, taken in turn
TOLERANCE = 1e-5  # probabilities, batching on against off (PyTorch fp32)
MODELS = {"on": "bench-front-door-on", "off": "bench-front-door-off"}
# Endpoint creation and canary waits run at this fraction of real time (as the reliability
# tests run them); serving itself is not scaled.
TIME_SCALE = "0.02"
TOKEN_TTL_S = 3600

Log = Callable[[str], None]


@dataclass
class FrontDoor:
    """A running local stack, as a client and as a direct caller of the emulator see it."""

    home: Path
    api_url: str
    sagemaker_url: str
    moto_url: str
    api_key: str
    credentials: dict[str, str]

    def headers(self) -> dict[str, str]:
        from maas_local.tokens import mint_token, scope_names

        token = mint_token(self.home / "keys", scope_names("invoke,admin"), ttl_seconds=TOKEN_TTL_S)
        return {"Authorization": f"Bearer {token}", "x-api-key": self.api_key}

    def aws(self, service: str, **config: Any) -> Any:
        from botocore.config import Config

        from maas_local.aws_resources import local_client

        url = self.sagemaker_url if service.startswith("sagemaker") else self.moto_url
        return local_client(service, url, self.credentials, Config(**config) if config else None)


@contextmanager
def local_stack(log: Log, environments: int | None = None) -> Iterator[FrontDoor]:
    """`maas local up` in a temporary home with one unmetered API key; `down` on exit.
    `environments`: execution environments per function (default: `maas local up`'s)."""
    from maas_local import lifecycle
    from maas_local.aws_resources import stack_credentials
    from maas_local.config import StackPaths, read_json
    from maas_local.stack import StackOptions
    from maas_local.usage_plans import UsagePlan, new_api_key, save_api_keys

    saved = os.environ.get("MAAS_SAGEMAKER_TIME_SCALE")
    os.environ["MAAS_SAGEMAKER_TIME_SCALE"] = TIME_SCALE
    with tempfile.TemporaryDirectory(prefix="maas-bench-front-door-") as tmp:
        paths = StackPaths(Path(tmp)).ensure()
        # The first key is the stack's default; unmetered, so the usage plan never throttles.
        key = new_api_key("bench", UsagePlan(rate_limit=1e6, burst_limit=10**6, quota_limit=10**9))
        save_api_keys(paths.keys, [key])
        try:
            log("[front door] maas local up")
            options = StackOptions()
            if environments is not None:
                options.function_concurrency = environments
            if lifecycle.up(paths, foreground=False, options=options) != 0:
                raise RuntimeError(f"the local stack did not start; see {paths.progress_log}")
            state = read_json(paths.state_file)
            if not state:
                raise RuntimeError(f"the local stack wrote no state; see {paths.progress_log}")
            yield FrontDoor(
                home=paths.home,
                api_url=state["api_url"],
                sagemaker_url=state["parts"]["sagemaker"]["url"],
                api_key=key.value,
                credentials=stack_credentials(paths.keys),
                moto_url=state["parts"]["moto"]["url"],
            )
        finally:
            lifecycle.down(paths, quiet=True)
            if saved is None:
                os.environ.pop("MAAS_SAGEMAKER_TIME_SCALE", None)
            else:
                os.environ["MAAS_SAGEMAKER_TIME_SCALE"] = saved


def _artifact_bucket() -> str:
    from maas_local.config import RESOURCE_PREFIX

    return f"{RESOURCE_PREFIX}-artifacts"


def deploy_both(door: FrontDoor, tarball: Path, log: Log) -> dict[str, str]:
    """Uploads model.tar.gz (and its signature.json), registers it under both names and deploys
    it with batching on and off, through the API (maas.Client); returns mode -> endpoint name."""
    from maas import Client

    s3, bucket = door.aws("s3"), _artifact_bucket()
    prefix = f"bench/front-door/{uuid.uuid4().hex[:8]}"
    s3.upload_file(str(tarball), bucket, f"{prefix}/model.tar.gz")
    s3.upload_file(str(tarball.with_name("signature.json")), bucket, f"{prefix}/signature.json")
    uri = f"s3://{bucket}/{prefix}/model.tar.gz"
    api = Client.local(door.home)  # the stack's key (the bench's unmetered one), admin tokens
    deployments = {}
    for mode, name in MODELS.items():
        spec = {"artifact_uri": uri, "recipe": "text-transformer"}
        version = api.register_version(name, spec)["version"]
        body = {"version": version, "capture_percent": 0, "batching": mode == "on"}
        deployments[mode] = api.deploy(name, body)["id"]
        log(f"[front door] deploying {name} v{version} with batching {mode}")
    endpoints = {}
    for mode, name in MODELS.items():
        *_, found = api.watch_deployment(name, deployments[mode], timeout_s=600)
        if found["status"] != "Succeeded":
            raise RuntimeError(f"deployment of {name} ended {found['status']}: {found}")
        endpoints[mode] = api.model(name)["endpoint_name"]
    return endpoints


@contextmanager
def stood_up(
    model_dir: Path, log: Log, environments: int | None = None
) -> Iterator[tuple[FrontDoor, dict[str, str]]]:
    """A local stack with the model deployed with batching on and off (mode -> endpoint)."""
    from maas_training.artifacts import package

    with tempfile.TemporaryDirectory(prefix="maas-bench-model-") as tmp:
        # A copy, packaged without ONNX (PyTorch fp32 serves it): packaging rewrites code/.
        model_copy = Path(tmp) / "model"
        shutil.copytree(model_dir, model_copy, ignore=shutil.ignore_patterns("*.onnx"))
        tarball = Path(tmp) / "artifact" / "model.tar.gz"
        failed: list[BaseException] = []

        def pack() -> None:
            try:
                package(model_copy, tarball, onnx="none")
            except BaseException as exc:  # raised again below, in this thread
                failed.append(exc)

        # gzip of the weights takes seconds; the stack starts meanwhile.
        packing = threading.Thread(target=pack)
        packing.start()
        try:
            with local_stack(log, environments) as door:
                packing.join()
                if failed:
                    raise failed[0]
                yield door, deploy_both(door, tarball, log)
        finally:
            packing.join()


# -- load ------------------------------------------------------------------------------------
Caller = Callable[[bytes], dict[str, Any]]  # one body -> the model's first prediction


@dataclass
class Run:
    rps: float
    p50_ms: float
    p95_ms: float
    answers: dict[int, dict[str, Any]] = field(default_factory=dict)  # sentence -> prediction
    errors: list[str] = field(default_factory=list)


def load(callers: list[Caller], bodies: list[bytes], per_client: int) -> Run:
    """Every caller (one thread each) sends `per_client` one-sentence requests back to back."""
    done = closed_loop(
        [lambda which, call=call: call(bodies[which]) for call in callers], len(bodies), per_client
    )
    if not done.latencies_ms:
        return Run(0.0, float("nan"), float("nan"), done.answers, done.errors)
    p50, p95 = (percentile(done.latencies_ms, p) for p in (50, 95))
    return Run(done.rps, p50, p95, done.answers, done.errors)


def gateway_callers(door: FrontDoor, model: str, count: int) -> list[Caller]:
    """One keep-alive session per client, each with its own token (as separate clients)."""
    url = f"{door.api_url}/v1/models/{model}/predict"

    def caller() -> Caller:
        session = requests.Session()
        headers = {**door.headers(), "Content-Type": "application/json"}

        def call(body: bytes) -> dict[str, Any]:
            response = session.post(url, data=body, headers=headers, timeout=120)
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
            return dict(response.json()["outputs"]["predictions"][0])

        return call

    return [caller() for _ in range(count)]


def direct_callers(door: FrontDoor, endpoint: str, count: int) -> list[Caller]:
    """One boto3 sagemaker-runtime client per client, signed with the stack's credentials."""

    def caller() -> Caller:
        runtime = door.aws(
            "sagemaker-runtime",
            retries={"total_max_attempts": 1, "mode": "standard"},
            read_timeout=120,
        )

        def call(body: bytes) -> dict[str, Any]:
            reply = runtime.invoke_endpoint(
                EndpointName=endpoint,
                Body=body,
                ContentType="application/json",
                Accept="application/json",
            )
            return dict(json.loads(reply["Body"].read())["predictions"][0])

        return call

    return [caller() for _ in range(count)]


def differing(a: dict[int, dict[str, Any]], b: dict[int, dict[str, Any]]) -> tuple[int, int]:
    """(sentences answered differently, sentences both answered): another label, or a
    probability further than TOLERANCE."""
    both = a.keys() & b.keys()
    differ = 0
    for k in both:
        pa, pb = a[k]["probabilities"], b[k]["probabilities"]
        far = len(pa) != len(pb) or any(abs(x - y) > TOLERANCE for x, y in zip(pa, pb, strict=True))
        differ += a[k]["label"] != b[k]["label"] or far
    return differ, len(both)


# -- the benchmark ---------------------------------------------------------------------------
SIDES = ("off", "on", "direct")  # through the front door off / on; straight to the on endpoint


def measure(
    door: FrontDoor,
    endpoints: dict[str, str],
    bodies: list[bytes],
    *,
    clients: int,
    requests_per_client: int,
    repeats: int,
    log: Log,
) -> dict[str, list[Run]]:
    callers = {
        "off": gateway_callers(door, MODELS["off"], clients),
        "on": gateway_callers(door, MODELS["on"], clients),
        "direct": direct_callers(door, endpoints["on"], clients),
    }
    for side in SIDES:  # warm: every execution environment started, every connection open
        warm = load(callers[side], bodies, 2)
        if warm.errors:
            raise RuntimeError(f"warm-up of {side} failed: {warm.errors[0]}")
    results: dict[str, list[Run]] = {side: [] for side in SIDES}
    for r in range(repeats):
        order = SIDES if r % 2 == 0 else tuple(reversed(SIDES))
        for side in order:
            results[side].append(load(callers[side], bodies, requests_per_client))
        log(f"[front door] repeat {r + 1}/{repeats}: " + ", ".join(
            f"{side} {v[-1].rps:.1f} req/s p50 {v[-1].p50_ms:.0f} p95 {v[-1].p95_ms:.0f} ms"
            f" ({len(v[-1].errors)} errors)" for side, v in results.items()
        ))  # fmt: skip
    return results


def run(
    log: Log = print,
    *,
    model_dir: Path | None = None,
    sentences: list[str] | None = None,
    clients: int = CLIENTS,
    requests_per_client: int = REQUESTS_PER_CLIENT,
    repeats: int = REPEATS,
    environments: int | None = CLIENTS,
) -> list[Row]:
    """Rows 8a and 8b. Without `model_dir`, the fine-tuned MiniLM of benchmark 1 and its
    held-out SST-2 sentences. `environments` per function: one per client by default, as
    Lambda runs 16 concurrent requests in 16 execution environments (the predict function has
    no reserved concurrency); None: `maas local up`'s default of 4, which caps a batch at 4."""
    from maas_local.invoker import DEFAULT_CONCURRENCY

    what = "a MiniLM text-transformer model dir"
    if model_dir is None:
        from bench.minilm import fine_tuned_model

        model_dir, rows, _ = fine_tuned_model(log)
        sentences = sentences or [text for _, text in rows]
        what = "the fine-tuned MiniLM (SST-2)"
    if not sentences:
        raise ValueError("give sentences with a model dir of your own")
    bodies = [json.dumps({"instances": [s]}).encode() for s in sentences[:SENTENCES]]
    with stood_up(model_dir, log, environments) as (door, endpoints):
        results = measure(
            door,
            endpoints,
            bodies,
            clients=clients,
            requests_per_client=requests_per_client,
            repeats=repeats,
            log=log,
        )
    setup = Setup(
        what,
        clients,
        requests_per_client,
        repeats,
        len(bodies),
        environments or DEFAULT_CONCURRENCY,
    )
    return [batching_row(results, setup), gateway_row(results, setup)]


@dataclass
class Setup:
    what: str
    clients: int
    requests_per_client: int
    repeats: int
    bodies: int
    environments: int  # per function

    def text(self) -> str:
        return (
            f"{self.what}, PyTorch fp32, 1 sentence/request ({self.bodies} distinct);"
            f" {self.clients} clients x {self.requests_per_client} requests per run after a"
            f" warm-up round, {self.repeats} runs"
        )


def _median(runs: list[Run], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in runs)


def _spread(runs: list[Run], name: str) -> str:
    rps = [r.rps for r in runs]
    return f"{name} {min_max(rps, '{:.1f}')} req/s, p95 {min_max([r.p95_ms for r in runs])} ms"


def _answers(runs: list[Run]) -> dict[int, dict[str, Any]]:
    return {k: v for r in runs for k, v in r.answers.items()}


def _errors(runs: list[Run]) -> list[str]:
    return [e for r in runs for e in r.errors]


def _gateway_share(results: dict[str, list[Run]]) -> tuple[float, float]:
    """(the share of the on path's p50 that the front door adds, its throughput ratio)."""
    gateway, direct = _median(results["on"], "p50_ms"), _median(results["direct"], "p50_ms")
    rps = _median(results["on"], "rps") / _median(results["direct"], "rps")
    return (gateway - direct) / gateway, rps


def batching_row(results: dict[str, list[Run]], setup: Setup) -> Row:
    from maas_contract.sagemaker import SERVING_BATCH_SIZE, SERVING_MAX_BATCH_DELAY_MS

    on, off = results["on"], results["off"]
    ratios = [a.rps / b.rps if b.rps else float("nan") for a, b in zip(on, off, strict=True)]
    ratio = statistics.median(ratios)
    p95_on, p95_off = _median(on, "p95_ms"), _median(off, "p95_ms")
    errors = _errors(on) + _errors(off)
    differ, compared = differing(_answers(on), _answers(off))
    met = ratio >= 2.0 and p95_on <= p95_off and not errors and differ == 0
    share, rps_ratio = _gateway_share(results)
    notes = [
        setup.text(),
        f"whole path: local gateway (token, API key, usage plan) -> the predict handler in"
        f" {setup.environments} execution environments (so at most {setup.environments}"
        " requests reach the endpoint at once; the rest wait for an environment) -> emulator"
        " InvokeEndpoint -> model server; on = deploy with batching"
        f" (SAGEMAKER_TS_BATCH_SIZE={SERVING_BATCH_SIZE},"
        f" SAGEMAKER_TS_MAX_BATCH_DELAY={SERVING_MAX_BATCH_DELAY_MS} ms), off = batching false"
        " (batch size 1)",
        f"{differ} of {compared} sentences answered differently on vs off (label, or a"
        f" probability beyond {TOLERANCE:g}); {len(errors)} failed requests"
        + (f" (first: {errors[0]})" if errors else ""),
        f"the front door's share of the on path: {share:.0%} of its p50 (gateway + handler"
        f" vs InvokeEndpoint direct), throughput {rps_ratio:.2f}x of direct (row 8b)",
    ]
    if not met:
        reasons = []
        if ratio < 2.0:
            reasons.append(f"throughput {ratio:.2f}x, {2.0 - ratio:.2f}x short of 2x")
        if p95_on > p95_off:
            reasons.append(f"p95 on {p95_on:.0f} ms is {p95_on / p95_off:.2f}x off's {p95_off:.0f}")
        if errors or differ:
            reasons.append("failed requests or differing answers")
        notes.append("not met: " + "; ".join(reasons))
    return Row(
        bench=f"8. front door batching, concurrency {setup.clients}, MiniLM",
        maas=f"{_median(on, 'rps'):.1f} req/s, p95 {p95_on:.0f} ms",
        baseline=f"{_median(off, 'rps'):.1f} req/s, p95 {p95_off:.0f} ms (batching off)",
        ratio=ratio,
        goal=">= 2x at equal or better p95",
        met=met,
        spread=(
            f"{len(ratios)} runs: ratio {min_max(ratios, '{:.2f}')}x; {_spread(on, 'on')};"
            f" {_spread(off, 'off')}"
        ),
        notes=notes,
    )


def gateway_row(results: dict[str, list[Run]], setup: Setup) -> Row:
    on, direct = results["on"], results["direct"]
    ratios = [a.p50_ms / b.p50_ms for a, b in zip(on, direct, strict=True)]
    errors = _errors(direct)
    differ, compared = differing(_answers(on), _answers(direct))
    share, rps_ratio = _gateway_share(results)
    return Row(
        bench=f"8. gateway's own cost, concurrency {setup.clients}",
        maas=(
            f"p50 {_median(on, 'p50_ms'):.0f} ms, p95 {_median(on, 'p95_ms'):.0f} ms,"
            f" {_median(on, 'rps'):.1f} req/s (gateway + handler)"
        ),
        baseline=(
            f"p50 {_median(direct, 'p50_ms'):.0f} ms, p95 {_median(direct, 'p95_ms'):.0f} ms,"
            f" {_median(direct, 'rps'):.1f} req/s (boto3 InvokeEndpoint direct)"
        ),
        ratio=statistics.median(ratios),
        goal="-",
        met=None,
        spread=(
            f"{len(ratios)} runs: p50 ratio {min_max(ratios, '{:.2f}')}x; {_spread(on, 'gateway')};"
            f" {_spread(direct, 'direct')}"
        ),
        notes=[
            "ratio = p50 latency through gateway + handler / p50 straight to InvokeEndpoint"
            f" (same batching-on endpoint, bodies and concurrency); throughput {rps_ratio:.2f}x"
            f" of direct; the front door adds {share:.0%} of the on path's p50",
            setup.text(),
            f"{differ} of {compared} sentences answered differently through the gateway vs"
            f" direct; {len(errors)} failed direct requests"
            + (f" (first: {errors[0]})" if errors else ""),
        ],
    )


def main() -> int:
    return print_rows(run())


if __name__ == "__main__":
    raise SystemExit(main())
