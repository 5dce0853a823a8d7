"""A training job's progress as its log comes in (the lines maas.history reads): `epoch k/N`,
a bar of the epoch's steps, and the epoch's metrics under it once it ends.

On a terminal the bar is one line redrawn in place (`\\r`); elsewhere (a pipe, a CI log) each
step is a line of its own. The bar is drawn here rather than by tqdm: the client's install is
`requests` alone.
"""

from __future__ import annotations

from typing import TextIO

from maas.history import EpochEnd, Step, Values, parse

BAR_WIDTH = 20


def format_values(values: Values) -> str:
    """`train_loss=0.4123 val_accuracy=0.91`, in the order the script printed them."""
    return " ".join(
        f"{name}={value:.4g}" if value is not None else f"{name}=nan"
        for name, value in values.items()
    )


class EpochProgress:
    """Prints what each log line says about the epochs; `total` is the number of epochs the job
    runs, when known. With `redraw` (a terminal), the bar is redrawn in place."""

    def __init__(self, out: TextIO, total: int | None, redraw: bool) -> None:
        self.out = out
        self.total = total
        self.redraw = redraw
        self.epoch: int | None = None  # the epoch under way, whose heading is printed
        self.bar = ""  # the bar on screen (redraw only)

    def line(self, text: str) -> None:
        event = parse(text)
        if event is None:
            return
        if event.epoch != self.epoch:
            of = f"/{self.total}" if self.total else ""
            self._print(f"epoch {event.epoch}{of}")
            self.epoch = event.epoch
        if isinstance(event, Step):
            self._draw(_bar(event))
        elif isinstance(event, EpochEnd):
            self._print(f"  {format_values(event.metrics)}".rstrip())
            self.epoch = None  # an epoch run again (a restart) gets its heading again

    def note(self, text: str) -> None:
        """A line of its own (a change of the job's status), printed above the bar."""
        bar = self.bar
        self._print(text)
        if bar:
            self._draw(bar)

    def close(self) -> None:
        """Ends the bar's line, if one is on screen, so that what comes next starts afresh."""
        if self.bar:
            self.out.write("\n")
            self.out.flush()
            self.bar = ""

    def _draw(self, bar: str) -> None:
        if not self.redraw:
            self._print(bar)
            return
        self.out.write("\r" + bar.ljust(len(self.bar)))
        self.out.flush()
        self.bar = bar

    def _print(self, text: str) -> None:
        if self.bar:  # the line takes the bar's place on screen, its spaces covering the rest
            text = "\r" + text.ljust(len(self.bar))
            self.bar = ""
        self.out.write(text + "\n")
        self.out.flush()


def _bar(step: Step) -> str:
    """`  [######--------------]  30/100 train_loss=0.4123`"""
    filled = round(BAR_WIDTH * step.step / step.steps) if step.steps else BAR_WIDTH
    done = f"{step.step:>{len(str(step.steps))}}/{step.steps}"
    shown = f"  [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {done} {format_values(step.values)}"
    return shown.rstrip()
