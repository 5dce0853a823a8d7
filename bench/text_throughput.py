"""Benchmark 1: text classification throughput on CPU, maas's serving path against the pipeline.

maas: the fine-tuned MiniLM served by its model dir's code/inference.py, loaded as the local
model server loads it (as SageMaker's container does): a JSON request of REQUEST_TEXTS
sentences through input_fn -> predict_fn (int8 ONNX, length buckets) -> output_fn, and the
labels read back from the JSON answer.
Baseline: Hugging Face `pipeline("text-classification")` on the same fine-tuned fp32 weights
and tokenizer, loaded from the same model dir, once with its default batch_size (1) and once
with batch_size=32. Both sides run the same sentences with the same thread count.

    python -m bench.text_throughput
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Row, bench_threads, min_max
from bench.minilm import fine_tuned_model
from maas_training.artifacts import load_model
from maas_training.models import TextTransformer

REQUEST_TEXTS = 256  # sentences per request to the serving path
REPEATS = 3
TIMED_TEXTS = 512  # each repeat times this many sentences; accuracy uses the whole slice
GOAL_SPEEDUP, GOAL_ACCURACY_DROP = 3.0, 0.005


def _maas(model_dir: Path, threads: int) -> Callable[[list[str]], list[str]]:
    import onnxruntime as ort

    from maas_local.sagemaker.model_worker import load

    saved = os.environ.get("MAAS_INFERENCE_BACKEND")
    os.environ["MAAS_INFERENCE_BACKEND"] = "onnx-int8"  # only for this load: servers inherit env
    try:
        handler = load(model_dir)  # code/inference.py, with code/ on sys.path, then model_fn
    finally:
        if saved is None:
            os.environ.pop("MAAS_INFERENCE_BACKEND", None)
        else:
            os.environ["MAAS_INFERENCE_BACKEND"] = saved
    model = handler.model
    assert model.backend.name == "onnx:model.int8.onnx", model.backend.name
    # The same thread count as the baseline, stated rather than left to onnxruntime's default.
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    model.backend.session = ort.InferenceSession(
        str(model_dir / "model.int8.onnx"), options, providers=["CPUExecutionProvider"]
    )

    def classify(texts: list[str]) -> list[str]:
        labels: list[str] = []
        for i in range(0, len(texts), REQUEST_TEXTS):
            body = json.dumps({"instances": texts[i : i + REQUEST_TEXTS]})
            request = handler.input_fn(body.encode(), "application/json")
            answer = handler.output_fn(handler.predict_fn(request, model), "")
            labels += [str(p["label"]) for p in json.loads(answer)["predictions"]]
        return labels

    return classify


def _pipeline(model_dir: Path, batch_size: int) -> Callable[[list[str]], list[str]]:
    from transformers import AutoTokenizer, pipeline

    wrapper, config = load_model(model_dir)  # model.safetensors + config.json, fp32, eval mode
    assert isinstance(wrapper, TextTransformer), type(wrapper)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir / "tokenizer"), local_files_only=True)
    pipe = pipeline("text-classification", model=wrapper.hf, tokenizer=tokenizer, device="cpu")
    max_len = config["input"]["max_len"]

    def classify(texts: list[str]) -> list[str]:
        kwargs = {"batch_size": batch_size} if batch_size > 1 else {}
        out = pipe(texts, truncation=True, max_length=max_len, **kwargs)
        return [o["label"] for o in out]

    return classify


def _accuracy(predicted: list[str], truth: list[str]) -> float:
    return sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)


def _rates(sides: dict, texts: list[str], log) -> dict[str, list[float]]:
    """Sentences/s per side and repeat. Sides take turns on each request-sized chunk, so
    drift in the shared machine's load falls on every side alike."""
    rates: dict[str, list[float]] = {name: [] for name in sides}
    for r in range(REPEATS):
        seconds = dict.fromkeys(sides, 0.0)
        for i in range(0, len(texts), REQUEST_TEXTS):
            chunk = texts[i : i + REQUEST_TEXTS]
            for name, classify in sides.items():
                started = time.perf_counter()
                classify(chunk)
                seconds[name] += time.perf_counter() - started
        for name in sides:
            rates[name].append(len(texts) / seconds[name])
        log(
            f"[text] repeat {r + 1}/{REPEATS}: "
            + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in rates.items())
        )
    return rates


def run(log=print) -> list[Row]:
    import torch

    threads = bench_threads()
    torch.set_num_threads(threads)
    model_dir, rows, facts = fine_tuned_model(log)
    texts, truth = [t for _, t in rows], [y for y, _ in rows]
    sides = {
        "maas": _maas(model_dir, threads),
        "pipeline": _pipeline(model_dir, 1),
        "pipeline_bs32": _pipeline(model_dir, 32),
    }
    log(f"[text] accuracy on {len(texts)} held-out sentences")
    accuracy = {
        "maas": _accuracy(sides["maas"](texts), truth),
        "pipeline": _accuracy(sides["pipeline_bs32"](texts), truth),
    }
    for classify in sides.values():
        classify(texts[:32])  # warm: first-call allocations, lazy imports
    rates = _rates(sides, texts[:TIMED_TEXTS], log)
    return _rows(rates, accuracy, facts, threads)


def _rows(rates: dict, accuracy: dict, facts: dict, threads: int) -> list[Row]:
    drop = accuracy["pipeline"] - accuracy["maas"]
    maas = statistics.median(rates["maas"])
    out = []
    for name, label in (("pipeline", "batch_size=1 (default)"), ("pipeline_bs32", "batch_size=32")):
        base = statistics.median(rates[name])
        ratios = [m / b for m, b in zip(rates["maas"], rates[name], strict=True)]
        ratio = statistics.median(ratios)  # of each repeat's ratio: its sides ran side by side
        out.append(
            Row(
                bench=f"1. text classification CPU vs pipeline {label}",
                maas=f"{maas:.0f} sent/s, acc {accuracy['maas']:.2%}",
                baseline=f"{base:.0f} sent/s, acc {accuracy['pipeline']:.2%}",
                ratio=ratio,
                goal=f">= {GOAL_SPEEDUP:g}x, acc drop <= {GOAL_ACCURACY_DROP * 100:g} pt",
                met=ratio >= GOAL_SPEEDUP and drop <= GOAL_ACCURACY_DROP,
                spread=(
                    f"{len(ratios)} repeats: ratio {min_max(ratios, '{:.1f}')}x; maas"
                    f" {min_max(rates['maas'])}, pipeline {min_max(rates[name])} sent/s"
                ),
                notes=[
                    f"accuracy drop {drop * 100:+.2f} pt on {facts['eval_rows']} held-out"
                    f" SST-2 sentences; MiniLM fine-tuned on {facts['train_rows']} rows;"
                    f" {threads} threads",
                ],
            )
        )
    return out


if __name__ == "__main__":
    for row in run():
        print(row)
