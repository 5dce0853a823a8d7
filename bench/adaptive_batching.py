"""Benchmark 2: batched serving in the local serving path, on against off, at concurrency 16.

On the SageMaker emulator (moto's S3 behind it) each model.tar.gz is deployed twice, both with
the Model environment maas deploys with (maas_contract.sagemaker.batched_serving_environment:
TS_DEFAULT_SERVICE_HANDLER names code/inference.py's `handle`, which joins a TorchServe batch
into one predict_fn call, as in the AWS PyTorch inference container): one endpoint with
SAGEMAKER_TS_BATCH_SIZE=BATCH_ON and one with SAGEMAKER_TS_BATCH_SIZE=1 (batching off), both
with SAGEMAKER_TS_MAX_BATCH_DELAY=MAX_WAIT_MS. CONCURRENCY threads call plain boto3
`sagemaker-runtime invoke_endpoint`, one instance per request, a bounded number of requests
each; runs alternate off/on so load drift hits both alike. Both serve with PyTorch fp32.

Models:
- image-cnn (the goal row): the recipe at 3x64x64 inputs, sent as application/x-npy. Its
  weights come from one epoch on random images; throughput does not depend on them.
- text-transformer (informs): the fine-tuned MiniLM as a training job writes it, one SST-2
  sentence per request as JSON. Texts of different lengths pad to the longest in a batch.

    python -m bench.adaptive_batching
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import Row, closed_loop, min_max, percentile

if TYPE_CHECKING:
    from maas_local.sagemaker.server import Emulator

CONCURRENCY = 16
REQUESTS_PER_THREAD = 12
REPEATS = 3
BATCH_ON, MAX_WAIT_MS = 16, 5
BUCKET = "maas-bench"
ROLE = "arn:aws:iam::123456789012:role/maas-bench"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5-cpu-py311"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def emulator() -> Iterator[tuple[Emulator, str]]:
    """moto's server for S3 and the SageMaker emulator, both stopped on exit."""
    from moto.server import ThreadedMotoServer

    from maas_local.sagemaker import serve
    from maas_local.sagemaker.sigv4 import Verifier

    saved = {k: os.environ.get(k) for k in [*CREDENTIALS, "AWS_ENDPOINT_URL"]}
    os.environ.update(CREDENTIALS)
    port = _free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    try:
        with tempfile.TemporaryDirectory(prefix="maas-bench-sm-") as root:
            server = serve(
                "127.0.0.1",
                0,
                root,
                None,
                seed=7,
                time_scale=0.01,
                verifier=Verifier(
                    CREDENTIALS["AWS_ACCESS_KEY_ID"], CREDENTIALS["AWS_SECRET_ACCESS_KEY"]
                ),
            )
            try:
                yield server, os.environ["AWS_ENDPOINT_URL"]
            finally:
                server.shutdown()
    finally:
        moto.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def signed_client(service: str, url: str, cfg):
    """Signed with the emulator's credentials (the local stack's client helper)."""
    from maas_local.aws_resources import local_client

    return local_client(service, url, CREDENTIALS, cfg)


def _clients(url: str):
    from botocore.config import Config

    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=120)
    return signed_client("sagemaker", url, cfg), cfg


def deploy(sm, s3_uri: str, name: str, environment: dict[str, str]) -> str:
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": s3_uri, "Environment": environment},
    )
    variant = {
        "VariantName": "v1",
        "ModelName": name,
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.xlarge",
        "InitialVariantWeight": 1.0,
    }
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return name


def wait_in_service(sm, names: list[str], timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    for name in names:
        while (status := sm.describe_endpoint(EndpointName=name)["EndpointStatus"]) != "InService":
            if status == "Failed" or time.monotonic() > deadline:
                reason = sm.describe_endpoint(EndpointName=name).get("FailureReason")
                raise RuntimeError(f"endpoint {name} is {status}: {reason}")
            time.sleep(0.2)


def load(runtimes: list, endpoint: str, payloads: list[tuple[bytes, str]], per_thread: int) -> dict:
    """Every thread sends `per_thread` one-instance requests back to back."""

    def caller(runtime) -> Callable[[int], str]:
        def call(which: int) -> str:
            body, content_type = payloads[which]
            reply = runtime.invoke_endpoint(
                EndpointName=endpoint,
                Body=body,
                ContentType=content_type,
                Accept="application/json",
            )
            return str(json.loads(reply["Body"].read())["predictions"][0]["label"])

        return call

    done = closed_loop([caller(r) for r in runtimes], len(payloads), per_thread)
    return {
        "rps": done.rps,
        "p95_ms": percentile(done.latencies_ms, 95) if done.latencies_ms else float("nan"),
        "labels": done.answers,
        "errors": done.errors,
    }


def _environment(batch_size: int) -> dict[str, str]:
    from maas_contract.sagemaker import batched_serving_environment

    return batched_serving_environment(batch_size=batch_size, max_batch_delay_ms=MAX_WAIT_MS)


def _measure(sm, runtimes: list, uri: str, name: str, payloads: list, log) -> dict:
    endpoints = {
        "off": deploy(sm, uri, f"bench-{name}-off", _environment(1)),
        "on": deploy(sm, uri, f"bench-{name}-on", _environment(BATCH_ON)),
    }
    wait_in_service(sm, list(endpoints.values()))
    for endpoint in endpoints.values():
        load(runtimes, endpoint, payloads, 2)  # warm: connections, first forward passes
    results: dict[str, list[dict]] = {"off": [], "on": []}
    for r in range(REPEATS):
        for mode, endpoint in endpoints.items():
            results[mode].append(load(runtimes, endpoint, payloads, REQUESTS_PER_THREAD))
        log(f"[batching] {name} repeat {r + 1}/{REPEATS}: " + ", ".join(
            f"{k} {v[-1]['rps']:.1f} req/s p95 {v[-1]['p95_ms']:.0f} ms" for k, v in results.items()
        ))  # fmt: skip
    for endpoint in endpoints.values():
        sm.delete_endpoint(EndpointName=endpoint)  # stops its model server
    return results


def run(log=print) -> list[Row]:
    import boto3

    from bench.batching_models import image_cnn, image_model_dir, minilm

    with emulator() as (server, _), tempfile.TemporaryDirectory() as tmp:
        sm, cfg = _clients(server.url)
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        runtimes = [signed_client("sagemaker-runtime", server.url, cfg) for _ in range(CONCURRENCY)]
        rows = []
        for build, goal in ((image_cnn, True), (minilm, False)):
            name, tarball, payloads, what = build(Path(tmp), log)
            s3.upload_file(str(tarball), BUCKET, f"bench/{name}/model.tar.gz")
            uri = f"s3://{BUCKET}/bench/{name}/model.tar.gz"
            log(f"[batching] {name}: deploying with batching on and off")
            row = _row(name, what, _measure(sm, runtimes, uri, name, payloads, log), goal)
            if name == "image-cnn":
                row.notes.append(_forward_ceiling(image_model_dir(Path(tmp)), payloads))
            rows.append(row)
    return rows


def _forward_ceiling(model_dir: Path, payloads: list[tuple[bytes, str]]) -> str:
    """How much faster the model itself runs per input at BATCH_ON than one at a time, here:
    no serving path can batch its way past that."""
    import io

    import numpy as np
    import torch

    from bench.common import bench_threads
    from maas_training.artifacts import load_model

    torch.set_num_threads(bench_threads())
    model, _ = load_model(model_dir)
    images = np.concatenate([np.load(io.BytesIO(body)) for body, _ in payloads[:BATCH_ON]])
    per_input = {}
    with torch.inference_mode():
        for size in (1, BATCH_ON):
            batch = torch.from_numpy(images[:size])
            model(batch)  # warm
            started, done = time.perf_counter(), 0
            while time.perf_counter() - started < 2.0:
                model(batch)
                done += size
            per_input[size] = done / (time.perf_counter() - started)
    return (
        f"the model alone, outside the serving path: {per_input[1]:.0f} inputs/s one at a time,"
        f" {per_input[BATCH_ON]:.0f} at batch {BATCH_ON}"
        f" ({per_input[BATCH_ON] / per_input[1]:.2f}x), on {bench_threads()} threads"
    )


def _row(name: str, what: str, results: dict[str, list[dict]], goal: bool) -> Row:
    rps = {k: [r["rps"] for r in v] for k, v in results.items()}
    p95 = {k: [r["p95_ms"] for r in v] for k, v in results.items()}
    ratios = [on / off for on, off in zip(rps["on"], rps["off"], strict=True)]
    ratio = statistics.median(ratios)
    on_p95, off_p95 = statistics.median(p95["on"]), statistics.median(p95["off"])
    errors = [e for v in results.values() for r in v for e in r["errors"]]
    on_labels = {k: v for r in results["on"] for k, v in r["labels"].items()}
    off_labels = {k: v for r in results["off"] for k, v in r["labels"].items()}
    both = on_labels.keys() & off_labels.keys()
    differ = sum(on_labels[k] != off_labels[k] for k in both)
    notes = [
        f"{what}; {CONCURRENCY} threads x {REQUESTS_PER_THREAD} requests per run;"
        f" inference.py's handle on both; on = SAGEMAKER_TS_BATCH_SIZE={BATCH_ON}, off = 1,"
        f" SAGEMAKER_TS_MAX_BATCH_DELAY={MAX_WAIT_MS}",
        f"{differ} of {len(both)} inputs labelled differently on vs off; {len(errors)} failed"
        " requests" + (f" (first: {errors[0]})" if errors else ""),
    ]
    met = ratio >= 2.0 and on_p95 <= off_p95 and not errors and differ == 0
    return Row(
        bench=f"2. adaptive batching, concurrency 16, {name}",
        maas=f"{statistics.median(rps['on']):.1f} req/s, p95 {on_p95:.0f} ms",
        baseline=f"{statistics.median(rps['off']):.1f} req/s, p95 {off_p95:.0f} ms (batching off)",
        ratio=ratio,
        ratios=ratios,
        goal=">= 2x at equal or better p95" if goal else "- (informs)",
        met=met if goal else None,
        spread=(
            f"{REPEATS} runs: ratio {min_max(ratios, '{:.2f}')}x; on {min_max(rps['on'], '{:.1f}')}"
            f" req/s, p95 {min_max(p95['on'])} ms; off {min_max(rps['off'], '{:.1f}')} req/s,"
            f" p95 {min_max(p95['off'])} ms"
        ),
        notes=notes,
    )


if __name__ == "__main__":
    for row in run():
        print(row)
