"""Benchmark 7: text generation through maas's local serving path.

The text-generation recipe's model (GPT-2 architecture at the recipe's default size, over a
byte-level BPE tokenizer trained on the standard library's docstrings) is packed as a
model.tar.gz and deployed on the SageMaker emulator with the LMI container's settings, as the
deployments API deploys a generation version. Every request asks for the same number of new
tokens (`ignore_eos_token`), greedy, so both sides of each comparison do the same work.

- **Batch 1.** One stream at a time through `InvokeEndpointWithResponseStream` (SigV4, the
  emulator's router, the LMI worker's continuous-batching engine, event-stream framing):
  tokens/s and time to first token, against Hugging Face `generate()` in this process on the
  same weights with the same thread count. Goal: at least 1.0x.
- **Concurrency 8.** Eight streams at once against the endpoint with continuous batching
  (OPTION_MAX_ROLLING_BATCH_SIZE 8), against the same server given a running batch of one
  (one request at a time). Goal: at least 3x the aggregate tokens/s, and a p95 time to first
  token under load no worse than 2x that of a single request sent alone.

    python -m bench.run_all --only 7
"""

from __future__ import annotations

import json
import os
import statistics
import tarfile
import tempfile
import threading
import time
from pathlib import Path

from bench.adaptive_batching import _clients, emulator, signed_client, wait_in_service
from bench.common import Row, bench_threads, min_max, percentile

BUCKET = "maas-bench-generation"
ROLE = "arn:aws:iam::123456789012:role/maas-bench"
INSTANCE_TYPE = "ml.g5.2xlarge"  # the LMI image is a CUDA image; the emulator runs it on CPU
NEW_TOKENS = 64
PROMPT = "Return a new list containing all items from the iterable in ascending order."
REPEATS = 5  # batch-1 requests per side, after one warm-up each
CONCURRENCY = 8
ROUNDS = 3  # rounds of CONCURRENCY simultaneous streams per side


def recipe_model(folder: Path, log) -> Path:
    """The recipe's default architecture and tokenizer; its weights need no training to time
    decoding, which costs the same whatever the weights."""
    import torch

    from maas_training.generation import fresh_model, train_tokenizer
    from maas_training.prepare_stdlib_text import docstrings, stdlib_modules

    torch.manual_seed(0)
    _, files = stdlib_modules()
    docs = [doc for path in files[:300] for doc in docstrings(path.read_bytes())]
    tokenizer = train_tokenizer(docs, vocab_size=2048)
    model = fresh_model(tokenizer, block_size=128, n_layer=2, n_head=4, n_embd=128, dropout=0.0)
    model.eval().save_pretrained(str(folder))
    tokenizer.save(folder)
    log(f"[generation] model: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params")
    return folder


def _tarball(folder: Path, out: Path) -> Path:
    with tarfile.open(out, "w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    return out


def hf_generate(folder: Path, log) -> dict[str, list[float]]:
    """Hugging Face generate() on the same folder, in this process, the same thread count."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(bench_threads())
    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True).eval()
    ids = tok(PROMPT, return_tensors="pt").input_ids

    def run(n: int) -> float:
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=n,
                min_new_tokens=n,
                do_sample=False,
                pad_token_id=tok.eos_token_id,
            )
        assert out.shape[1] - ids.shape[1] == n
        return time.perf_counter() - start

    run(NEW_TOKENS)  # warm-up
    totals = [run(NEW_TOKENS) for _ in range(REPEATS)]
    firsts = [run(1) for _ in range(REPEATS)]
    log(f"[generation] HF generate: {statistics.median(totals) * 1e3:.0f} ms per {NEW_TOKENS}")
    return {"tps": [NEW_TOKENS / t for t in totals], "ttft": firsts}


def _request() -> bytes:
    return json.dumps(
        {
            "inputs": PROMPT,
            "parameters": {
                "max_new_tokens": NEW_TOKENS,
                "do_sample": False,
                "ignore_eos_token": True,
                "details": True,
            },
            "stream": True,
        }
    ).encode()


def stream_once(runtime, endpoint: str) -> tuple[float, float, int]:
    """(time to first token, total seconds, generated tokens) of one streamed request."""
    from maas_contract.generation import StreamEnd, StreamToken, iter_stream

    start = time.perf_counter()
    answer = runtime.invoke_endpoint_with_response_stream(
        EndpointName=endpoint, Body=_request(), ContentType="application/json"
    )
    first, tokens, end = None, 0, None
    chunks = (event["PayloadPart"]["Bytes"] for event in answer["Body"] if "PayloadPart" in event)
    for item in iter_stream(chunks):
        if isinstance(item, StreamToken):
            tokens += 1
            if first is None:
                first = time.perf_counter() - start
        elif isinstance(item, StreamEnd):
            end = item
    total = time.perf_counter() - start
    if end is None or end.completion_tokens != NEW_TOKENS or first is None:
        raise RuntimeError(f"{endpoint}: the stream ended after {tokens} tokens ({end})")
    return first, total, end.completion_tokens


def concurrent(runtimes: list, endpoint: str) -> tuple[float, list[float]]:
    """Aggregate tokens/s and every request's time to first token over ROUNDS rounds of
    CONCURRENCY simultaneous streams."""
    ttfts: list[float] = []
    tokens = 0
    elapsed = 0.0
    for _ in range(ROUNDS):
        took, results = _one_round(runtimes, endpoint)
        elapsed += took
        for first, _total, n in results:
            ttfts.append(first)
            tokens += n
    return tokens / elapsed, ttfts


def _one_round(runtimes: list, endpoint: str) -> tuple[float, list[tuple[float, float, int]]]:
    """CONCURRENCY streams released together; (wall seconds, each stream's figures)."""
    results: list = [None] * CONCURRENCY
    barrier = threading.Barrier(CONCURRENCY + 1)

    def one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = stream_once(runtimes[i], endpoint)
        except BaseException as exc:  # noqa: BLE001 - raised below, in the caller's thread
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(CONCURRENCY)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    took = time.perf_counter() - start
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return took, results


def _deploy(sm, uri: str, name: str, image: str, batch: int) -> str:
    from maas_contract.generation import container_environment

    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": image,
            "ModelDataUrl": uri,
            "Environment": container_environment(max_rolling_batch_size=batch),
        },
    )
    variant = {
        "VariantName": "v1",
        "ModelName": name,
        "InitialInstanceCount": 1,
        "InstanceType": INSTANCE_TYPE,
        "InitialVariantWeight": 1.0,
    }
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return name


def _image() -> str:
    from sagemaker.core import image_uris

    return str(image_uris.retrieve(framework="djl-lmi", region="us-east-1"))


def run(log=print) -> list[Row]:
    import boto3

    threads = bench_threads()
    # The emulator's model servers are processes of their own; they read the thread count
    # from the environment they inherit, as the baseline sets it in this process.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory(prefix="maas-bench-gen-") as tmp:
        folder = recipe_model(Path(tmp) / "model", log)
        baseline = hf_generate(folder, log)
        tarball = _tarball(folder, Path(tmp) / "model.tar.gz")
        with emulator() as (server, _):
            sm, cfg = _clients(server.url)
            s3 = boto3.client("s3")
            s3.create_bucket(Bucket=BUCKET)
            s3.upload_file(str(tarball), BUCKET, "bench/generation/model.tar.gz")
            uri = f"s3://{BUCKET}/bench/generation/model.tar.gz"
            image = _image()
            batched = _deploy(sm, uri, "gen-batched", image, CONCURRENCY)
            serial = _deploy(sm, uri, "gen-serial", image, 1)
            wait_in_service(sm, [batched, serial])
            runtimes = [
                signed_client("sagemaker-runtime", server.url, cfg) for _ in range(CONCURRENCY)
            ]
            stream_once(runtimes[0], batched)  # warm-up
            alone = [stream_once(runtimes[0], batched) for _ in range(REPEATS)]
            log("[generation] batch 1 done; 8 concurrent streams, batched then serial")
            stream_once(runtimes[0], serial)
            batched_tps, batched_ttfts = concurrent(runtimes, batched)
            serial_tps, _ = concurrent(runtimes, serial)
    return [
        _batch_one_row(alone, baseline, threads),
        _concurrency_row(alone, batched_tps, batched_ttfts, serial_tps),
    ]


def _batch_one_row(alone, baseline, threads: int) -> Row:
    tps = [n / total for _, total, n in alone]
    ttft = [first for first, _, _ in alone]
    ratio = statistics.median(tps) / statistics.median(baseline["tps"])
    ttft_ratio = statistics.median(ttft) / statistics.median(baseline["ttft"])
    return Row(
        bench="7a. generation, batch 1: tokens/s through the endpoint vs HF generate()",
        maas=f"{statistics.median(tps):.0f} tok/s, TTFT {statistics.median(ttft) * 1e3:.1f} ms",
        baseline=(
            f"{statistics.median(baseline['tps']):.0f} tok/s, "
            f"TTFT {statistics.median(baseline['ttft']) * 1e3:.1f} ms (HF generate, in-process)"
        ),
        ratio=ratio,
        goal=">= 1.0x",
        met=ratio >= 1.0,
        spread=f"maas {min_max(tps)} tok/s; HF {min_max(baseline['tps'])} tok/s",
        notes=[
            f"{NEW_TOKENS} new tokens, greedy, {threads} threads each side, median of {REPEATS}",
            f"time to first token, endpoint / HF generate(max_new_tokens=1): {ttft_ratio:.2f}x"
            " (the endpoint's includes SigV4, routing and event-stream framing)",
        ],
    )


def _concurrency_row(alone, batched_tps: float, batched_ttfts, serial_tps: float) -> Row:
    ratio = batched_tps / serial_tps
    single_ttft = statistics.median(first for first, _, _ in alone)
    p95 = percentile(batched_ttfts, 95)
    return Row(
        bench="7b. generation, 8 concurrent streams: continuous batching vs one at a time",
        maas=f"{batched_tps:.0f} tok/s aggregate, p95 TTFT {p95 * 1e3:.0f} ms",
        baseline=f"{serial_tps:.0f} tok/s aggregate (running batch of 1, same server)",
        ratio=ratio,
        goal=">= 3x, p95 TTFT <= 2x alone",
        met=ratio >= 3.0 and p95 <= 2 * single_ttft,
        spread=f"TTFT {min_max([t * 1e3 for t in batched_ttfts])} ms over {len(batched_ttfts)}",
        notes=[
            f"{ROUNDS} rounds of {CONCURRENCY} simultaneous streams of {NEW_TOKENS} tokens",
            f"p95 TTFT under load / a single request alone ({single_ttft * 1e3:.1f} ms):"
            f" {p95 / single_ttft:.2f}x",
        ],
    )


if __name__ == "__main__":
    for row in run():
        print(row)
