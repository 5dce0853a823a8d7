"""Where the run executes: process group, device, precision, seeding and progress display."""

from __future__ import annotations

import contextlib
import os
import random
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist


@dataclass
class Runtime:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    bf16: bool

    @property
    def is_writer(self) -> bool:
        """Only rank 0 writes checkpoints, the model, metrics and log lines."""
        return self.rank == 0

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.bf16:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def log(self, line: str) -> None:
        if self.is_writer:
            print(line, flush=True)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def mean_across_ranks(self, total: torch.Tensor, count: torch.Tensor) -> float:
        if self.world > 1:
            both = torch.stack([total.float(), count.float()])
            dist.all_reduce(both)
            total, count = both[0], both[1]
        return float(total / count.clamp(min=1))


def start_runtime(precision: str) -> Runtime:
    """Joins the process group when WORLD_SIZE > 1 (gloo on CPU, nccl on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"--precision must be auto, bf16 or fp32, got {precision!r}")
    bf16 = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return Runtime(rank, world, local_rank, device, bf16)


def stop_runtime(rt: Runtime) -> None:
    if rt.world > 1 and dist.is_initialized():
        dist.destroy_process_group()


def seed_epoch(seed: int, epoch: int, rank: int) -> None:
    """Reseeds every RNG from (seed, epoch, rank), so a resumed epoch draws what it would have."""
    s = (seed * 1_000_003 + epoch * 1_009 + rank) % (2**31)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


def progress(
    batches: list, rt: Runtime, mode: str, epoch: int, log_every: int, loss_of: Callable[[], float]
) -> Iterator:
    """A tqdm bar on a terminal; otherwise a plain log line every `log_every` steps."""
    use_bar = mode == "bar" or (mode == "auto" and sys.stderr.isatty())
    if use_bar and rt.is_writer:
        from tqdm import tqdm

        bar = tqdm(batches, desc=f"epoch {epoch}", unit="batch", leave=False)
        for i, b in enumerate(bar):
            yield b
            if (i + 1) % max(1, log_every) == 0:
                bar.set_postfix(loss=f"{loss_of():.4f}")
        return
    yield from _with_lines(batches, rt, epoch, log_every, loss_of)


def _with_lines(
    batches: Sequence, rt: Runtime, epoch: int, log_every: int, loss_of: Callable[[], float]
) -> Iterator:
    n = len(batches)
    for i, b in enumerate(batches):
        yield b
        if rt.is_writer and log_every > 0 and (i + 1) % log_every == 0 and i + 1 < n:
            rt.log(f"epoch={epoch} step={i + 1}/{n} train_loss={loss_of():.4f}")
