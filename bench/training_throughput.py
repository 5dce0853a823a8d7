"""Benchmark 4: training throughput on CPU, `training/train.py` against a plain HF `Trainer`.

Both fine-tune the same MiniLM checkpoint (the text-transformer recipe's default, with a fresh
2-class head) on the same ROWS SST-2 rows, batch size BATCH, one epoch (ROWS / BATCH steps),
AdamW at the recipe's lr and weight decay, gradient clipping at 1.0, the same thread count.
The clock covers the epoch loop alone on both sides: train.py's `train_one_epoch`, and the
Trainer's epoch between its `on_epoch_begin` and `on_epoch_end` callbacks. Model loading,
tokenisation, evaluation and saving are outside it on both sides.
The Trainer runs as its documentation shows: `DataCollatorWithPadding` (pads each batch to
its longest row) and its default random sampler.

    python -m bench.training_throughput
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import statistics
import tempfile
import time
from pathlib import Path
from types import ModuleType
from unittest import mock

from bench.common import Row, bench_threads, min_max
from bench.minilm import TRAINING, split_rows

BATCH, STEPS, REPEATS = 16, 16, 3
ROWS = BATCH * STEPS
LR, WEIGHT_DECAY, MAX_LEN, SEED = 5e-5, 0.01, 64, 42


def _rows() -> list[tuple[str, str]]:
    return split_rows()["train"][:ROWS]  # the fine-tuning subset's first rows


@functools.cache
def _train_script() -> ModuleType:
    """training/train.py as a module: SageMaker's entry point is a script, not part of the
    installed maas_training package it imports."""
    spec = importlib.util.spec_from_file_location("maas_train_script", TRAINING / "train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def maas_train(rows: list[tuple[str, str]], threads: int, work: Path) -> float:
    """samples/s of train.py's epoch loop, run in this process through its own main()."""
    train = _train_script()

    for name, part in (("train", rows), ("val", rows[:BATCH])):
        (work / name).mkdir(parents=True, exist_ok=True)
        (work / name / f"{name}.tsv").write_text("".join(f"{y}\t{t}\n" for y, t in part))
    elapsed: list[float] = []
    inner = train.train_one_epoch

    def timed_epoch(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            elapsed.append(time.perf_counter() - t0)

    argv = [
        "--recipe",
        "text-transformer",
        "--epochs",
        "1",
        "--batch-size",
        str(BATCH),
        "--lr",
        str(LR),
        "--weight-decay",
        str(WEIGHT_DECAY),
        "--max-len",
        str(MAX_LEN),
        "--seed",
        str(SEED),
        "--threads",
        str(threads),
        "--progress",
        "lines",
        "--train",
        str(work / "train"),
        "--validation",
        str(work / "val"),
        "--model-dir",
        str(work / "model"),
        "--output-data-dir",
        str(work / "out"),
    ]
    with (
        mock.patch.object(train, "train_one_epoch", timed_epoch),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        train.main(argv)
    return len(rows) / elapsed[0]


def hf_train(rows: list[tuple[str, str]], threads: int, work: Path) -> float:
    """samples/s of a plain Trainer epoch on the same model, rows and hyperparameters."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from maas_training.models import default_transformer_path, hf_offline

    hf_offline()
    torch.set_num_threads(threads)
    path = default_transformer_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    torch.manual_seed(SEED)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=2, local_files_only=True
    )
    encoded = tokenizer([t for _, t in rows], truncation=True, max_length=MAX_LEN)
    dataset = [
        {"input_ids": ids, "attention_mask": mask, "labels": int(y)}
        for ids, mask, (y, _) in zip(
            encoded["input_ids"], encoded["attention_mask"], rows, strict=True
        )
    ]
    elapsed: list[float] = []

    class EpochClock(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kwargs):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, args, state, control, **kwargs):
            elapsed.append(time.perf_counter() - self.t0)

    args = TrainingArguments(
        output_dir=str(work / "hf"),
        per_device_train_batch_size=BATCH,
        num_train_epochs=1,
        learning_rate=LR,
        weight_decay=WEIGHT_DECAY,
        warmup_steps=1,
        max_grad_norm=1.0,
        seed=SEED,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=DataCollatorWithPadding(tokenizer),
        callbacks=[EpochClock()],
    )
    with contextlib.redirect_stdout(io.StringIO()):  # its end-of-training metrics line
        trainer.train()
    return len(rows) / elapsed[0]


def run(log=print) -> list[Row]:
    import torch

    threads = bench_threads()
    torch.set_num_threads(threads)
    rows = _rows()
    rates: dict[str, list[float]] = {"maas": [], "hf": []}
    with tempfile.TemporaryDirectory(prefix="maas-bench-train-") as tmp:
        maas_train(rows[: 2 * BATCH], threads, Path(tmp) / "warm")  # first-run costs, untimed
        hf_train(rows[: 2 * BATCH], threads, Path(tmp) / "warm")
        for r in range(REPEATS):  # alternate, so load drift hits both alike
            rates["maas"].append(maas_train(rows, threads, Path(tmp) / f"maas{r}"))
            rates["hf"].append(hf_train(rows, threads, Path(tmp) / f"hf{r}"))
            log(
                f"[training] repeat {r + 1}/{REPEATS}: train.py {rates['maas'][-1]:.1f}/s,"
                f" Trainer {rates['hf'][-1]:.1f}/s"
            )
    ratios = [m / h for m, h in zip(rates["maas"], rates["hf"], strict=True)]
    maas, hf, ratio = (statistics.median(v) for v in (rates["maas"], rates["hf"], ratios))
    return [
        Row(
            bench="4. training throughput CPU (MiniLM fine-tune)",
            maas=f"{maas:.1f} samples/s (train.py)",
            baseline=f"{hf:.1f} samples/s (HF Trainer)",
            ratio=ratio,
            ratios=ratios,
            goal=">= 1.0x",
            met=ratio >= 1.0,
            spread=(
                f"{REPEATS} runs: ratio {min_max(ratios, '{:.2f}')}x;"
                f" train.py {min_max(rates['maas'], '{:.1f}')},"
                f" Trainer {min_max(rates['hf'], '{:.1f}')} samples/s"
            ),
            notes=[f"{STEPS} steps x batch {BATCH}, max_len {MAX_LEN}, {threads} threads, fp32"],
        )
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
