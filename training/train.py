"""Trains one maas recipe; the same script runs locally and in SageMaker's PyTorch container.

    python training/train.py --recipe image-cnn --train data/train --validation data/validation

Hyperparameters come from argv and SM_HPS (argv wins); channels from SM_CHANNEL_TRAIN and
SM_CHANNEL_VALIDATION; outputs go to SM_MODEL_DIR and SM_OUTPUT_DATA_DIR. Under torchrun
(WORLD_SIZE > 1) it trains with DistributedDataParallel and rank 0 alone writes.

Outputs: the model folder (weights, config.json, signature.json, history.json, code/; for
text-generation a Hugging Face folder, with maas's config in maas.json);
metrics.json and history.json (each epoch's metrics) in the output data folder; and, with a
checkpoint folder, signature.json and history.json there too, because SageMaker uploads that
folder to the job's CheckpointConfig.S3Uri, where the registry reads the signature without
opening model.tar.gz.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import traceback
from pathlib import Path
from typing import cast

import torch
from torch.nn.parallel import DistributedDataParallel

from maas_training import signature
from maas_training.artifacts import read_config, write_model_dir
from maas_training.checkpoint import load_checkpoint, save_checkpoint
from maas_training.data import epoch_batches
from maas_training.metrics import format_line, sagemaker_names
from maas_training.preparation import Prepared
from maas_training.recipes import RECIPES, Recipe, prepare
from maas_training.runtime import Runtime, progress, seed_epoch, start_runtime, stop_runtime
from maas_training.tasks import Task

SCHEDULES = ("cosine", "linear")  # the learning rate after warmup: see make_optimizer

# Arguments that do not change what is computed, so a resumed run may change them.
NOT_IN_FINGERPRINT = {
    "checkpoint_dir",
    "model_dir",
    "output_data_dir",
    "train",
    "validation",
    "stop_after_epoch",
    "log_interval",
    "progress",
    "compile",
    "threads",
}


def as_bool(v: str | bool) -> bool:
    if isinstance(v, bool):
        return v
    if v.lower() in ("1", "true", "yes", "on"):
        return True
    if v.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {v!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )

    def add(name: str, **kw) -> None:  # SageMaker may spell a hyperparameter with - or _
        flags = [f"--{name}"] + ([f"--{name.replace('-', '_')}"] if "-" in name else [])
        p.add_argument(*flags, **kw)

    env = os.environ.get
    ckpt = "/opt/ml/checkpoints" if Path("/opt/ml/checkpoints").is_dir() else None
    # fmt: off
    add("recipe", choices=list(RECIPES), help="which model to train")
    add("epochs", type=int, default=None, help="passes over the data (default: per recipe)")
    add("batch-size", type=int, default=None, help="examples per step and process (per recipe)")
    add("lr", type=float, default=None, help="peak learning rate (default: per recipe)")
    add("weight-decay", type=float, default=0.01, help="AdamW weight decay")
    add("warmup-fraction", type=float, default=0.05, help="share of steps warming up the lr")
    add("lr-schedule", choices=SCHEDULES, default=None, help="after warmup (default: per recipe)")
    add("grad-clip", type=float, default=1.0, help="clip the gradient norm to this (0: off)")
    add("seed", type=int, default=42, help="seeds split, init, data order and dropout")
    add("val-fraction", type=float, default=0.1, help="held-out share if no validation channel")
    add("max-train-samples", type=int, default=0, help="use at most this many rows (0: all)")
    add("dropout", type=float, default=None, help="image-cnn, text-lstm: dropout probability")
    add("base-channels", type=int, default=32, help="image-cnn: channels of the first block")
    add("embed-dim", type=int, default=64, help="text-lstm: word embedding size")
    add("hidden-dim", type=int, default=None, help="text-lstm: LSTM size; autoencoder: layer")
    add("vocab-size", type=int, default=None, help="text-lstm: words kept; text-generation: BPE")
    add("min-freq", type=int, default=1, help="text-lstm: drop words seen fewer times")
    add("max-len", type=int, default=None, help="text recipes: tokens kept per text")
    add("train-embeddings", type=as_bool, nargs="?", const=True, default=False,
        help="text-transformer: train the word-embedding table too (default: frozen)")
    add("pretrained-path", default=env("SM_CHANNEL_PRETRAINED"), help="text recipes: an HF folder")
    add("block-size", type=int, default=128, help="text-generation: tokens per training window")
    add("n-layer", type=int, default=2, help="text-generation: transformer blocks of a fresh model")
    add("n-head", type=int, default=4, help="text-generation: attention heads of a fresh model")
    add("n-embd", type=int, default=128, help="text-generation: width of a fresh model")
    add("lora-r", type=int, default=0, help="text-generation: LoRA rank (0: train all weights)")
    add("lora-alpha", type=float, default=None, help="LoRA scale numerator (default: 2 * rank)")
    add("lora-dropout", type=float, default=0.0, help="LoRA: dropout on the adapters' input")
    add("lora-target-modules", default=None, help="LoRA: a,b,...: modules (default: all linear)")
    add("latent-dim", type=int, default=8, help="autoencoder: embedding size")
    add("ae-kind", choices=("dense", "conv"), default="dense", help="autoencoder: layer kind")
    add("anomaly-class", default=None, help="autoencoder: label kept out of training, scored")
    add("label-names", default=None, help="classifiers: a,b,...: a name per label, in order")
    add("threads", type=int, default=0, help="CPU threads (0: torch default; 1 for tiny models)")
    add("precision", choices=("auto", "bf16", "fp32"), default="auto", help="auto: bf16 on CUDA")
    add("compile", type=as_bool, nargs="?", const=True, default=False, help="use torch.compile")
    add("progress", choices=("auto", "bar", "lines"), default="auto", help="auto: bar on a TTY")
    add("log-interval", type=int, default=0, help="steps between progress lines (0: 10/epoch)")
    add("stop-after-epoch", type=int, default=0, help="exit after this epoch, as spot might")
    add("checkpoint-dir", default=ckpt, help="per-epoch checkpoints (default: /opt/ml/checkpoints)")
    add("model-dir", default=env("SM_MODEL_DIR", "model"), help="where the model goes")
    add("output-data-dir", default=env("SM_OUTPUT_DATA_DIR", "output/data"), help="metrics.json")
    add("train", default=env("SM_CHANNEL_TRAIN"), help="training channel: .npz, .tsv or .txt files")
    add("validation", default=env("SM_CHANNEL_VALIDATION"), help="validation channel (optional)")
    # fmt: on
    return p


def hps_argv(raw: str | None) -> list[str]:
    """SM_HPS ({"epochs": 3, "compile": true}) as argv, so argparse converts and checks it."""
    argv: list[str] = []
    for key, value in json.loads(raw or "{}").items():
        if not key.startswith("sagemaker_"):
            argv += [
                f"--{key.replace('_', '-')}",
                str(value).lower() if isinstance(value, bool) else str(value),
            ]
    return argv


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(
        hps_argv(os.environ.get("SM_HPS")) + list(sys.argv[1:] if argv is None else argv)
    )
    if not args.recipe:
        *others, last = RECIPES
        parser.error(f"--recipe is required ({', '.join(others)} or {last})")
    if not args.train:
        parser.error("no training data: pass --train DIR or set SM_CHANNEL_TRAIN")
    for key, value in RECIPES[args.recipe].defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    check_lora(parser, args)
    return args


def check_lora(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """LoRA adapts a pretrained causal LM: refuse it where there is none to adapt."""
    if args.lora_r < 0:
        parser.error(f"--lora-r must be 0 (off) or a positive rank, got {args.lora_r}")
    if args.lora_r == 0:
        return
    if not RECIPES[args.recipe].lora:
        supported = ", ".join(name for name, r in RECIPES.items() if r.lora)
        parser.error(f"--lora-r: recipe {args.recipe} has no LoRA fine-tuning (only {supported})")
    if not args.pretrained_path:
        parser.error(
            "--lora-r needs --pretrained-path (or a pretrained channel): LoRA adapts a "
            "pretrained model and cannot train one from scratch"
        )
    if not 0.0 <= args.lora_dropout < 1.0:
        parser.error(f"--lora-dropout must be in [0, 1), got {args.lora_dropout}")


def make_optimizer(
    model: torch.nn.Module, args: argparse.Namespace, steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    trainable = [p for p in model.parameters() if p.requires_grad]  # LoRA: the adapters alone
    # One fused kernel per step instead of a loop of small ones: about a tenth of a CPU
    # fine-tune's step time (training/README.md, "The SST-2 fine-tune").
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in trainable)
    opt = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=args.weight_decay, fused=fused)
    warmup = max(1, int(steps * args.warmup_fraction))
    linear = args.lr_schedule == "linear"

    def schedule(step: int) -> float:  # linear warmup, then down to 10% (cosine) or 0 (linear)
        if step < warmup:
            return (step + 1) / warmup
        done = min(1.0, (step - warmup) / max(1, steps - warmup))
        return 1.0 - done if linear else 0.1 + 0.45 * (1 + math.cos(math.pi * done))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)


def train_one_epoch(
    rt: Runtime,
    args: argparse.Namespace,
    task: Task,
    model: torch.nn.Module,
    data: Prepared,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    epoch: int,
) -> float:
    batches = epoch_batches(
        data.train, args.batch_size, args.seed, epoch, rt.rank, rt.world, shuffle=True
    )
    every = args.log_interval or max(1, len(batches) // 10)
    total = torch.zeros((), device=rt.device)
    count = torch.zeros((), device=rt.device)
    model.train()
    for idx in progress(batches, rt, args.progress, epoch + 1, every, lambda: float(total / count)):
        inputs, targets = data.train.batch(idx, rt.device)
        with rt.autocast():
            loss = task.loss(model, inputs, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        scheduler.step()
        total.add_(loss.detach() * len(idx))
        count.add_(len(idx))
    return rt.mean_across_ranks(total, count)


def stepping_module(rt: Runtime, args: argparse.Namespace, raw: torch.nn.Module) -> torch.nn.Module:
    """What the training steps call: compiled when asked, wrapped in DDP across processes.
    Checkpoints, evaluation and the saved model use `raw` itself."""
    # torch.compile's annotations say Callable; given a module it returns one (OptimizedModule).
    model = cast(torch.nn.Module, torch.compile(raw)) if args.compile else raw
    if rt.world > 1:
        model = DistributedDataParallel(
            model, device_ids=[rt.local_rank] if rt.device.type == "cuda" else None
        )
    return model


def fit(
    rt: Runtime,
    args: argparse.Namespace,
    recipe: Recipe,
    data: Prepared,
    history: list[dict[str, float]],
) -> dict:
    """The epoch loop with checkpoint and resume; returns the last epoch's metrics and
    appends each epoch's (epoch, train_loss, val_...) to `history`."""
    task = recipe.task
    raw = data.model.to(rt.device)
    steps = args.epochs * len(
        epoch_batches(data.train, args.batch_size, args.seed, 0, rt.rank, rt.world, True)
    )
    optimizer, scheduler = make_optimizer(raw, args, steps)
    fingerprint = {k: v for k, v in sorted(vars(args).items()) if k not in NOT_IN_FINGERPRINT}
    fingerprint["world_size"] = rt.world
    start = load_checkpoint(
        args.checkpoint_dir,
        model=raw,
        optimizer=optimizer,
        scheduler=scheduler,
        fingerprint=fingerprint,
        history=history,
    )
    if start:
        rt.log(f"resumed from {args.checkpoint_dir} after epoch {start}")
    model = stepping_module(rt, args, raw)
    metrics: dict = {}
    for epoch in range(start, args.epochs):
        seed_epoch(args.seed, epoch, rt.rank)
        train_loss = train_one_epoch(rt, args, task, model, data, optimizer, scheduler, epoch)
        metrics = {
            "train_loss": train_loss,
            **task.validate(raw, data.val, 4 * args.batch_size, rt.device, rt.autocast),
        }
        rt.log(format_line({"epoch": epoch + 1}, metrics))
        history.append({"epoch": epoch + 1, **metrics})
        if rt.is_writer and args.checkpoint_dir:
            save_checkpoint(
                args.checkpoint_dir,
                model=raw,
                optimizer=optimizer,
                scheduler=scheduler,
                epochs_done=epoch + 1,
                fingerprint=fingerprint,
                history=history,
            )
            _write_json(Path(args.checkpoint_dir) / HISTORY_FILE, history)
        rt.barrier()
        if args.stop_after_epoch and epoch + 1 >= args.stop_after_epoch and epoch + 1 < args.epochs:
            rt.log(f"stopping after epoch {epoch + 1} as --stop-after-epoch asks")
            return {"stopped_after_epoch": epoch + 1}
    if not metrics:  # every epoch was already in the checkpoint
        metrics = task.validate(raw, data.val, 4 * args.batch_size, rt.device, rt.autocast)
    return metrics


HISTORY_FILE = "history.json"


def _write_json(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=2))
    os.replace(tmp, path)  # a checkpoint upload mid-write sees the old file or the new one


def save_outputs(
    rt: Runtime,
    args: argparse.Namespace,
    data: Prepared,
    metrics: dict,
    history: list[dict[str, float]],
) -> None:
    if not rt.is_writer:
        return
    named = sagemaker_names(metrics)
    hps = {k: v for k, v in vars(args).items() if k not in NOT_IN_FINGERPRINT}
    write_model_dir(
        args.model_dir,
        data.model,
        {**data.config, "hyperparameters": hps},
        data.text_encoder,
        named,
    )
    _write_json(Path(args.model_dir) / HISTORY_FILE, history)
    out = Path(args.output_data_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(named, indent=2))
    _write_json(out / HISTORY_FILE, history)
    if args.checkpoint_dir:  # last: the registry reads it once the job has completed
        signature.write(args.checkpoint_dir, read_config(args.model_dir))
    rt.log(f"wrote model to {args.model_dir} and metrics to {out / 'metrics.json'}")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    rt = start_runtime(args.precision)
    try:
        recipe = RECIPES[args.recipe]
        data = prepare(recipe, args)
        rt.log(
            f"recipe={args.recipe} train_rows={len(data.train)} val_rows={len(data.val)} "
            f"device={rt.device} world_size={rt.world} bf16={rt.bf16}"
        )
        if "lora" in data.config:
            n, total = (
                data.config["lora"][k] for k in ("trainable_parameters", "total_parameters")
            )
            rt.log(f"lora: trainable_parameters={n} of {total} ({100 * n / total:.3f}%)")
        history: list[dict[str, float]] = []
        metrics = fit(rt, args, recipe, data, history)
        if "stopped_after_epoch" not in metrics:
            save_outputs(rt, args, data, metrics, history)
        rt.barrier()
        return metrics
    finally:
        stop_runtime(rt)


def report_failure(exc: BaseException) -> None:
    """SageMaker builds FailureReason from the failure file and the last stderr line."""
    reason = f"maas training failed: {type(exc).__name__}: {exc}"
    output_dir = os.environ.get("SM_OUTPUT_DIR")
    if output_dir and Path(output_dir).is_dir():
        (Path(output_dir) / "failure").write_text(reason[:1024])
    traceback.print_exc()
    print(reason, file=sys.stderr, flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - any failure must end as a clear last stderr line
        report_failure(exc)
        sys.exit(1)
