"""bench/results.png: every ratio of a run, its run-to-run spread and its goal, on one chart.

Each row with a ratio is one line of the chart: a dot at the median ratio, a bar from the
lowest to the highest repeat's ratio where the benchmark repeats, and a tick at its goal.
Green: goal met; red: not met; grey: no goal (the row informs). The x axis is logarithmic
and centred on 1x (parity with the baseline).
"""

from __future__ import annotations

from pathlib import Path

from bench.common import Row

COLOURS = {True: "#2a9d4b", False: "#d1495b", None: "#7f7f7f"}


def draw(rows: list[Row], out: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a build machine
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    shown = [r for r in rows if r.ratio is not None]
    fig, ax = plt.subplots(figsize=(11, 0.42 * len(shown) + 2.0), dpi=110)
    for y, row in enumerate(reversed(shown)):
        colour = COLOURS[row.met]
        if row.ratios:
            ax.plot([min(row.ratios), max(row.ratios)], [y, y], color=colour, lw=5, alpha=0.35,
                    solid_capstyle="butt")  # fmt: skip
        ax.plot([row.ratio], [y], "o", color=colour, ms=7)
        goal = row.goal_ratio
        if goal is not None:
            ax.plot([goal[1]], [y], marker="|", color="black", ms=16, mew=2)
            ax.annotate(goal[0], (goal[1], y), textcoords="offset points", xytext=(0, 9),
                        ha="center", fontsize=7)  # fmt: skip
        ax.annotate(f"{row.ratio:.2f}x", (row.ratio, y), textcoords="offset points",
                    xytext=(8, -3), fontsize=8, color=colour)  # fmt: skip
    ax.set_yticks(range(len(shown)))
    ax.set_yticklabels([_label(r.bench) for r in reversed(shown)], fontsize=8)
    ax.set_xscale("log")
    xs = [v for r in shown for v in (r.ratio, *r.ratios, *(r.goal_ratio or (0, r.ratio))[1:])]
    low, high = min(0.5, min(xs) / 1.3), max(2.0, max(xs) * 1.6)
    ax.set_xlim(low, high)
    ax.set_xticks([t for t in (0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 20, 50) if low <= t <= high])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    ax.axvline(1.0, color="#bbbbbb", lw=1, zorder=0)
    ax.set_xlabel("ratio against the baseline of the same run (log scale; 1x = parity)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", which="both", color="#eeeeee", zorder=0)
    ax.plot([], [], "o", color=COLOURS[True], label="goal met")
    ax.plot([], [], "o", color=COLOURS[False], label="goal not met")
    ax.plot([], [], "o", color=COLOURS[None], label="no goal (informs)")
    ax.plot([], [], "|", color="black", ms=12, mew=2, label="goal")
    ax.plot([], [], color="#999999", lw=5, alpha=0.35, label="spread: lowest-highest repeat")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.5 / max(1, len(shown)) - 0.12),
              ncol=5, fontsize=7, frameon=False)  # fmt: skip
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def _label(bench: str) -> str:
    return bench if len(bench) <= 70 else bench[:67] + "..."
