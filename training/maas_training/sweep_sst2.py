"""The short learning-rate and schedule sweep behind text-transformer's defaults.

    python -m maas_training.sweep_sst2 --tsv ../shared/data/sst2/train.tsv --out runs/sweep

Each configuration fine-tunes the pretrained MiniLM for one epoch on the same seeded subset
(`--rows`) of the sentence-level split's training rows (see `prepare_sst2`) and is scored on
its held-out whole sentences; the table it prints (and writes to `sweep.md`) is the one in
training/README.md. One short epoch ranks learning rates and schedules; the full fine-tune
then runs the winner for as many epochs as the time budget allows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from maas_training.prepare_sst2 import HELD_OUT, MIN_WORDS, SEED, write_split

TRAIN_PY = Path(__file__).resolve().parents[1] / "train.py"
CONFIGS = [  # (lr, schedule)
    (5e-5, "cosine"),
    (1e-4, "cosine"),
    (2e-4, "cosine"),
    (1e-4, "linear"),
]


def run_one(data: Path, out: Path, lr: float, schedule: str, rows: int, threads: int) -> dict:
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    with (out / "train.log").open("w") as log:
        subprocess.run(
            [
                sys.executable,
                str(TRAIN_PY),
                "--recipe",
                "text-transformer",
                "--train",
                str(data / "train"),
                "--validation",
                str(data / "validation"),
                "--epochs",
                "1",
                "--max-train-samples",
                str(rows),
                "--lr",
                str(lr),
                "--lr-schedule",
                schedule,
                "--threads",
                str(threads),
                "--progress",
                "lines",
                "--model-dir",
                str(out / "model"),
                "--output-data-dir",
                str(out / "out"),
            ],
            check=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    metrics = json.loads((out / "out" / "metrics.json").read_text())
    return {
        "lr": lr,
        "schedule": schedule,
        "accuracy": metrics["validation:accuracy"],
        "seconds": round(time.perf_counter() - started),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--tsv", type=Path, required=True, help="SST-2's train.tsv")
    p.add_argument("--out", type=Path, required=True, help="work folder")
    p.add_argument("--rows", type=int, default=8000, help="training rows per configuration")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    args = p.parse_args(argv)
    summary = write_split(args.tsv, args.out / "data", HELD_OUT, MIN_WORDS, SEED)
    lines = [
        f"| lr | schedule | accuracy on {summary['validation_rows']} held-out sentences | wall |",
        "|---|---|---|---|",
    ]
    for lr, schedule in CONFIGS:
        r = run_one(args.out / "data", args.out / f"{schedule}-{lr:g}", lr, schedule,
                    args.rows, args.threads)  # fmt: skip
        lines.append(f"| {lr:g} | {schedule} | {r['accuracy']:.2%} | {r['seconds']} s |")
        print(lines[-1], flush=True)
    (args.out / "sweep.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
