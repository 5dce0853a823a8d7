"""Benchmark 1: text classification throughput on CPU, maas's serving path against the pipeline.

maas: the fine-tuned MiniLM served by its model dir's code/inference.py, loaded as the local
model server loads it (as SageMaker's container does): a JSON request of REQUEST_TEXTS
sentences through input_fn -> predict_fn (int8 ONNX, length buckets) -> output_fn, and the
labels read back from the JSON answer.
Baselines:
- Hugging Face `pipeline("text-classification")` on the same fine-tuned fp32 weights and
  tokenizer, loaded from the same model dir, once with its default batch_size (1) and once
  with batch_size=32;
- the expert's pick, Hugging Face Optimum: `ORTModelForSequenceClassification` in the same
  `pipeline`, batch_size=32, on Optimum's ONNX export quantized by Optimum's own dynamic int8
  preset for this CPU. maas's side of that row serves its own graph of the same weights,
  quantized by the same quantizer and preset (bench/optimum_side.py), so the row compares
  serving paths on equal int8 weights.
Every side runs the same sentences with the same thread count.

    python -m bench.text_throughput
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Row, bench_threads, min_max, not_measured
from bench.minilm import fine_tuned_model
from maas_training.artifacts import load_model
from maas_training.models import TextTransformer

REQUEST_TEXTS = 256  # sentences per request to the serving path
REPEATS = 3
TIMED_TEXTS = 512  # each repeat times this many sentences; accuracy uses the whole slice
GOAL_SPEEDUP, GOAL_ACCURACY_DROP = 3.0, 0.005
GOAL_OPTIMUM = 1.5  # against Optimum's int8 pipeline, with the same accuracy-drop bound


def _maas(model_dir: Path, threads: int) -> Callable[[list[str]], list[str]]:
    """The serving path on model_dir's model.int8.onnx."""
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
                # a side in another process reports its own call's time, without the pipe
                own = getattr(classify, "last_seconds", None)
                seconds[name] += own if own is not None else time.perf_counter() - started
        for name in sides:
            rates[name].append(len(texts) / seconds[name])
        log(
            f"[text] repeat {r + 1}/{REPEATS}: "
            + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in rates.items())
        )
    return rates


class _Optimum:
    """Optimum's pipeline as a side: labels by name, and the child's own call time."""

    def __init__(self, pipe, labels: list[str]):
        self.pipe, self.labels, self.last_seconds = pipe, labels, None

    def __call__(self, texts: list[str]) -> list[str]:
        indexes, _ = self.pipe.classify(texts)
        self.last_seconds = self.pipe.last_seconds
        return [self.labels[i] for i in indexes]


def _optimum_side(model_dir: Path, work: Path, threads: int, max_len: int, log):
    """(maas on Optimum-quantized weights, Optimum's pipeline, facts); raises when Optimum's
    side cannot run, and `run` turns that into the row's reason."""
    from bench import optimum_side
    from maas_training.artifacts import read_config

    facts = {"install_error": optimum_side.install_error()}
    folder = optimum_side.prepare(model_dir, work, log)
    facts["preset"] = optimum_side.preset(folder)
    view = optimum_side.serving_dir(model_dir, optimum_side.QUANTIZED, work / "maas-view")
    pipe = optimum_side.OptimumPipeline(folder, threads, max_len)
    labels = [str(x) for x in read_config(model_dir)["labels"]]
    return _maas(view, threads), _Optimum(pipe, labels), facts


def run(log=print) -> list[Row]:
    import torch

    from maas_training.artifacts import read_config

    threads = bench_threads()
    torch.set_num_threads(threads)
    model_dir, rows, facts = fine_tuned_model(log)
    texts, truth = [t for _, t in rows], [y for y, _ in rows]
    sides = {
        "maas": _maas(model_dir, threads),
        "pipeline": _pipeline(model_dir, 1),
        "pipeline_bs32": _pipeline(model_dir, 32),
    }
    optimum_error = None
    try:
        max_len = read_config(model_dir)["input"]["max_len"]
        maas_q, optimum, optimum_facts = _optimum_side(
            model_dir, model_dir.parent / "optimum-side", threads, max_len, log
        )
        sides |= {"maas_optimum_int8": maas_q, "optimum": optimum}
        facts["optimum"] = optimum_facts
    except Exception as exc:  # the row says why; the other rows stand
        optimum_error = f"{type(exc).__name__}: {exc}"[:300]
        log(f"[text] Optimum side not measured: {optimum_error}")
    try:
        log(f"[text] accuracy on {len(texts)} held-out sentences")
        accuracy = {
            name: _accuracy(sides[name](texts), truth)
            for name in ("maas", "pipeline_bs32", "maas_optimum_int8", "optimum")
            if name in sides
        }
        accuracy["pipeline"] = accuracy.pop("pipeline_bs32")
        for classify in sides.values():
            classify(texts[:32])  # warm: first-call allocations, lazy imports
        rates = _rates(sides, texts[:TIMED_TEXTS], log)
    finally:
        if "optimum" in sides:
            sides["optimum"].pipe.close()
    return _rows(rates, accuracy, facts, threads) + [
        _optimum_row(rates, accuracy, facts, threads, optimum_error)
    ]


def _optimum_row(rates: dict, accuracy: dict, facts: dict, threads: int, error: str | None) -> Row:
    bench = "1. text classification CPU vs Optimum ORT int8 pipeline batch_size=32"
    goal = f">= {GOAL_OPTIMUM:g}x, acc drop <= {GOAL_ACCURACY_DROP * 100:g} pt"
    if error is not None:
        return not_measured(bench, goal, f"not measured: {error}")
    info = facts["optimum"]
    drop = accuracy["optimum"] - accuracy["maas_optimum_int8"]
    ratios = [m / b for m, b in zip(rates["maas_optimum_int8"], rates["optimum"], strict=True)]
    ratio = statistics.median(ratios)
    notes = [
        f"both sides serve the same fine-tuned weights, int8-quantized by Optimum's quantizer"
        f" (AutoQuantizationConfig.{info['preset']}, dynamic); maas: its serving path on its"
        f" own graph, Optimum: ORTModelForSequenceClassification in pipeline(batch_size=32);"
        f" {threads} threads each; accuracy drop {drop * 100:+.2f} pt on"
        f" {facts['eval_rows']} held-out sentences",
    ]
    if info["install_error"]:
        notes.append(
            "Optimum cannot be installed beside the project's pins, so it ran from its own"
            " folder (.venv-optimum, bench/optimum-requirements.txt) in front of the same"
            f" torch and onnxruntime; pip's answer: {info['install_error']}"
        )
    return Row(
        bench=bench,
        maas=f"{statistics.median(rates['maas_optimum_int8']):.0f} sent/s,"
        f" acc {accuracy['maas_optimum_int8']:.2%}",
        baseline=f"{statistics.median(rates['optimum']):.0f} sent/s, acc {accuracy['optimum']:.2%}",
        ratio=ratio,
        ratios=ratios,
        goal=goal,
        met=ratio >= GOAL_OPTIMUM and drop <= GOAL_ACCURACY_DROP,
        spread=(
            f"{len(ratios)} repeats: ratio {min_max(ratios, '{:.2f}')}x; maas"
            f" {min_max(rates['maas_optimum_int8'])}, Optimum {min_max(rates['optimum'])} sent/s"
        ),
        notes=notes,
    )


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
                ratios=ratios,
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
