"""Runs every maas benchmark, prints one table and writes bench/RESULTS.md.

    python -m bench.run_all            # or: make bench
    python -m bench.run_all --only 1,3 # a subset (RESULTS.md and results.png: full runs only)

Every figure is a ratio against a baseline measured in the same run on the same machine;
absolute numbers on a shared 2-core machine mean little.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench.common import Row, machine, not_measured

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
CHART = RESULTS.with_name("results.png")


def text_rows(log) -> list[Row]:
    from bench import text_throughput

    return text_throughput.run(log)


def batching_rows(log) -> list[Row]:
    from bench import adaptive_batching

    return adaptive_batching.run(log)


def handler_rows(log) -> list[Row]:
    # In a process of its own, as a Lambda's is: after benchmarks 1 and 2 this one holds
    # torch, transformers and onnxruntime, a heap that every garbage collection the handler
    # triggers would walk, and thread pools that may still be spinning.
    out = subprocess.run(
        [sys.executable, "-m", "bench.handler_overhead", "--json"],
        cwd=Path(__file__).resolve().parents[1],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = []
    for r in json.loads(out.strip().splitlines()[-1]):
        goal = r["goal"]
        unit = r["unit"]
        rows.append(
            Row(
                bench=f"3. front door: {r['bench']}",
                maas=f"{r['handler']:.0f} {unit} ({r['subject']})",
                baseline=f"{r['baseline']:.0f} {unit} ({r['baseline_name']})",
                ratio=r["ratio"],
                goal=f"<= {goal:g}x" if goal else "-",
                met=None if not goal else r["ratio"] <= goal,
                spread=r["spread"],
            )
        )
    return rows


def training_rows(log) -> list[Row]:
    from bench import training_throughput

    return training_throughput.run(log)


GPU_ROWS = [  # issue 15 section 4: what a GPU run measures, in priority order
    ("5a. GPU training: text-transformer, image-cnn, text-generation", "samples/s bf16 vs fp32,"
     " compile on vs off; MFU (model FLOPs per step x steps/s / peak)"),
    ("5b. GPU quality: full SST-2 fine-tune, sentence-level split", ">= 91% accuracy"),
    ("5c. GPU inference: text classification vs pipeline on the GPU", "throughput ratio"),
]  # fmt: skip


def gpu_rows(log) -> list[Row]:
    import torch

    if not torch.cuda.is_available():
        why = "not measured (no GPU lent to the run that wrote this file)"
    else:  # a GPU is here, but no GPU benchmark has been run and checked on one yet
        why = f"not measured ({torch.cuda.get_device_name()} present; no GPU benchmark written)"
    return [not_measured(name, goal, why) for name, goal in GPU_ROWS]


def gateway_rows(log) -> list[Row]:
    from bench import gateway_concurrency

    return gateway_concurrency.run(log)


def front_door_rows(log) -> list[Row]:
    from bench import front_door_batching

    return front_door_batching.run(log)


def generation_rows(log) -> list[Row]:
    from bench import generation

    return generation.run(log)


BENCHES: dict[str, tuple[str, Callable, str]] = {
    "1": ("1. text classification CPU", text_rows, ">= 3x, acc drop <= 0.5 pt"),
    "2": ("2. adaptive batching, concurrency 16", batching_rows, ">= 2x at equal or better p95"),
    "3": ("3. front door overhead", handler_rows, "<= 1.5x warm p50; cold import: information"),
    "4": ("4. training throughput CPU", training_rows, ">= 1.0x"),
    "5": ("5. GPU", gpu_rows, "-"),
    "6": ("6. local gateway, concurrency 16", gateway_rows, "- (information)"),
    "7": ("7. text generation", generation_rows, ">= 1.0x batch 1; >= 3x at concurrency 8"),
    "8": ("8. front door batching, concurrency 16", front_door_rows, ">= 2x, equal p95"),
}


def _cells(row: Row) -> list[str]:
    ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
    return [row.bench, row.baseline, row.maas, ratio, row.goal, row.verdict, row.spread]


HEADER = ["benchmark", "baseline", "maas", "ratio", "goal", "met?", "spread"]


def table_text(rows: list[Row]) -> str:
    cells = [HEADER] + [_cells(r) for r in rows]
    widths = [min(48, max(len(c[i]) for c in cells)) for i in range(len(HEADER))]
    lines = []
    for c in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
    return "\n".join(lines)


def table_markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in _cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def write_results(rows: list[Row], info: dict[str, str], seconds: float) -> None:
    notes = [f"- **{r.bench}**: {n}" for r in rows for n in r.notes]
    unmet = [r for r in rows if r.met is False]
    verdict = (
        "Every goal with a measurement was met."
        if not unmet
        else "Goals not met: "
        + "; ".join(f"{r.bench} ({r.ratio:.2f}x, goal {r.goal})" for r in unmet)
        + "."
    )
    body = [
        "# maas benchmark results",
        "",
        "Written by `make bench` (`python -m bench.run_all`). Each ratio compares maas with a",
        "baseline measured in the same run on the same machine; the machine is shared and noisy,",
        "so read the ratios, and the spread beside them, rather than the absolute figures.",
        "",
        "## Machine",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        f"- wall time of the whole run: {seconds / 60:.1f} min",
        "",
        "## Results",
        "",
        table_markdown(rows),
        "",
        verdict,
        "",
        f"![Each ratio with its spread and goal]({CHART.name})",
        "",
        "## Notes",
        "",
        *notes,
        "",
        "See `bench/README.md` for what each benchmark does and how to rerun one.",
        "",
    ]
    RESULTS.write_text("\n".join(body))
    from bench.chart import draw

    draw(rows, CHART, f"maas benchmarks, {info['date']} ({info['cores']} cores, {info['cpu']})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--only", default="", help="comma-separated benchmark numbers, e.g. 1,3")
    args = p.parse_args(argv)
    chosen = [k for k in BENCHES if not args.only or k in args.only.split(",")]
    info = machine()
    started = time.perf_counter()
    rows: list[Row] = []
    for key in chosen:
        name, fn, goal = BENCHES[key]
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            rows += fn(lambda line: print(line, flush=True))
        except Exception as exc:  # one failed benchmark must not hide the others' figures
            traceback.print_exc()
            rows.append(not_measured(name, goal, f"failed: {type(exc).__name__}: {exc}"[:200]))
        print(f"== {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    seconds = time.perf_counter() - started
    print()
    print(table_text(rows))
    for r in rows:
        for n in r.notes:
            print(f"  note ({r.bench}): {n}")
    print(f"\nwall time {seconds / 60:.1f} min")
    if len(chosen) == len(BENCHES):
        write_results(rows, info, seconds)
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
