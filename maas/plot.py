"""A job's history (maas.history) drawn as curves, one chart per family of metrics (the losses;
accuracy and the others): as text for the terminal, or as a PNG with matplotlib (the `plot`
extra, `pip install 'maas[plot]'`).

The text chart is drawn here: the client's install is `requests` alone, and a chart a few lines
high needs no library.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maas.errors import UsageError

History = list[dict[str, Any]]
HEIGHT = 6  # rows of a text chart
MAX_COLUMNS = 60  # epochs shown across; a longer history is sampled evenly
INSTALL_HINT = "--plot needs matplotlib: pip install 'maas[plot]'"


@dataclass(frozen=True)
class Glyphs:
    markers: str  # one per curve, in turn
    both: str  # where two curves meet
    axis: str
    tick: str
    corner: str
    rule: str


UNICODE = Glyphs(markers="●○◆◇▲△", both="*", axis="│", tick="┤", corner="└", rule="─")
ASCII = Glyphs(markers="ox+#@%", both="*", axis="|", tick="+", corner="+", rule="-")


def families(history: History) -> list[tuple[str, list[str]]]:
    """[("losses", [...]), ("accuracy and other metrics", [...])], each name in the order the
    log first printed it; a family without a metric is left out."""
    names = list(dict.fromkeys(name for epoch in history for name in epoch if name != "epoch"))
    grouped = [
        ("losses", [name for name in names if "loss" in name]),
        ("accuracy and other metrics", [name for name in names if "loss" not in name]),
    ]
    return [(title, members) for title, members in grouped if members]


def text_charts(history: History, glyphs: Glyphs = UNICODE) -> str:
    """Every family's chart, a blank line between them; "" for no epochs."""
    return "\n\n".join(
        text_chart(title, history, names, glyphs) for title, names in families(history)
    )


def text_chart(title: str, history: History, names: list[str], glyphs: Glyphs = UNICODE) -> str:
    """`names`' curves over the epochs, HEIGHT rows high, the lowest and highest value marked
    on the left and the last values in the legend."""
    shown = _columns(len(history))
    gap = max(1, min(3, MAX_COLUMNS // len(shown)))
    values = [history[i][name] for i in shown for name in names if history[i].get(name) is not None]
    logarithmic = log_scale(values)
    row_of = _rows(values, logarithmic)
    grid = [[" "] * ((len(shown) - 1) * gap + 1) for _ in range(HEIGHT)]
    for k, name in enumerate(names):
        marker = glyphs.markers[k % len(glyphs.markers)]
        for column, i in enumerate(shown):
            if history[i].get(name) is None:
                continue
            row = grid[row_of(history[i][name])]
            row[column * gap] = marker if row[column * gap] in (" ", marker) else glyphs.both
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    top = f"{high:.4g}" if high > low else ""  # one value: one label, by its row
    labels = [top, *[""] * (HEIGHT - 2), f"{low:.4g}"]
    width = max(len(label) for label in labels)
    lines = [title + (" (log scale)" if logarithmic else "")]
    for label, row in zip(labels, grid, strict=True):
        axis = glyphs.tick if label else glyphs.axis
        lines.append(f"{label:>{width}} {axis}{''.join(row)}".rstrip())
    lines.append(" " * width + " " + glyphs.corner + glyphs.rule * len(grid[0]))
    first, last = str(history[shown[0]]["epoch"]), str(history[shown[-1]]["epoch"])
    across = first if len(shown) == 1 else first + last.rjust(len(grid[0]) - len(first))
    lines.append(" " * (width + 2) + across + "  epoch")
    lines.append(" " * (width + 2) + "  ".join(_legend(history, names, glyphs)))
    return "\n".join(lines)


def log_scale(values: list[float]) -> bool:
    """Whether the values span more than a factor of 10 (a first epoch's loss often does), so
    that a linear scale would flatten all the later epochs into one line."""
    return bool(values) and min(values) > 0 and max(values) > 10 * min(values)


def can_draw(encoding: str | None, glyphs: Glyphs = UNICODE) -> bool:
    """Whether a stream in `encoding` can print the glyphs (a Windows pipe may not)."""
    try:
        (glyphs.markers + glyphs.axis + glyphs.tick + glyphs.corner + glyphs.rule).encode(
            encoding or "ascii"
        )
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def require_matplotlib() -> None:
    """Raises UsageError (exit 2, one line) when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise UsageError(INSTALL_HINT) from error


def write_png(history: History, path: Path, title: str) -> None:
    """The charts as a PNG at `path`, one above the other, drawn by matplotlib's Agg backend."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as error:
        raise UsageError(INSTALL_HINT) from error
    groups = families(history)
    figure = Figure(figsize=(7.0, 2.8 * len(groups)), layout="constrained")
    FigureCanvasAgg(figure)  # Agg, whatever the default backend: no display needed
    for row, (family, names) in enumerate(groups, start=1):
        axes = figure.add_subplot(len(groups), 1, row)
        for name in names:
            kept = [epoch for epoch in history if epoch.get(name) is not None]
            axes.plot([e["epoch"] for e in kept], [e[name] for e in kept], marker="o", label=name)
        shown = [epoch[name] for epoch in history for name in names if epoch.get(name) is not None]
        if log_scale(shown):
            axes.set_yscale("log")
        axes.set_title(family)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(title)
    try:
        figure.savefig(path, format="png", dpi=100)
    except OSError as error:
        raise UsageError(f"--plot {path}: {error.strerror or error}") from error


def _columns(count: int) -> list[int]:
    """The indexes of the epochs shown: all of them, or MAX_COLUMNS spread evenly."""
    if count <= MAX_COLUMNS:
        return list(range(count))
    return sorted({round(i * (count - 1) / (MAX_COLUMNS - 1)) for i in range(MAX_COLUMNS)})


def _rows(values: list[float], logarithmic: bool) -> Callable[[float], int]:
    """A value's row in the grid: the highest on row 0, the lowest on row HEIGHT - 1."""
    scale: Callable[[float], float] = math.log10 if logarithmic else float
    low, high = (scale(min(values)), scale(max(values))) if values else (0.0, 0.0)
    if high <= low:
        return lambda value: HEIGHT - 1
    return lambda value: HEIGHT - 1 - round((scale(value) - low) / (high - low) * (HEIGHT - 1))


def _legend(history: History, names: list[str], glyphs: Glyphs) -> list[str]:
    """`● train_loss 0.1023` per curve: its marker, its name, its last value."""
    entries = []
    for k, name in enumerate(names):
        last = next((e[name] for e in reversed(history) if e.get(name) is not None), None)
        shown = f"{last:.4g}" if last is not None else "-"
        entries.append(f"{glyphs.markers[k % len(glyphs.markers)]} {name} {shown}")
    return entries
