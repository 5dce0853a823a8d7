"""`maas jobs list|show|follow|stop|logs`: the training jobs, through the API.

`follow` re-attaches to a job started earlier (by `maas train` or anyone) and prints its
progress until it ends; Ctrl-C leaves the job running and says how to come back. The progress,
and the curves `show` draws, come from the job's log (what `maas jobs logs` reads): its script
prints a line per tenth of an epoch and one with the metrics as each epoch ends
(maas.history). Where the log cannot be read (in the cloud without AWS credentials that may
read CloudWatch Logs), `follow` shows SageMaker's latest metrics instead, and `show` no curves.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from maas import commands_logs, plot
from maas.client import Client
from maas.history import history
from maas.output import emit, pairs, table
from maas.progress import EpochProgress
from maas.watch import training_milestone, watch_with_lines
from maas_contract.events import TRAINING_JOB_TERMINAL

ACTIONS = ("list", "show", "follow", "stop")
FINAL_WORDS = {
    "Completed": "completed",
    "Failed": "failed",
    "Stopped": "was stopped",
}


def add_parsers(subcommands: Any, api: argparse.ArgumentParser) -> None:
    jobs = subcommands.add_parser("jobs", help="training jobs: list, show, follow, stop, logs")
    actions = jobs.add_subparsers(dest="action", required=True)
    actions.add_parser("list", parents=[api], help="every job, newest first")
    show = actions.add_parser(
        "show",
        parents=[api],
        help="one job: status, metrics, reason, and its metrics per epoch (`history`); "
        "-o table draws them as curves",
    )
    show.add_argument("id", help="the job's id, as `maas train` printed it")
    show.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="also draw the curves into a PNG (needs matplotlib: pip install 'maas[plot]')",
    )
    follow = actions.add_parser("follow", parents=[api], help="print its progress until it ends")
    follow.add_argument("id", help="the job's id")
    stop = actions.add_parser("stop", parents=[api], help="ask SageMaker to stop a running job")
    stop.add_argument("id", help="the job's id")
    commands_logs.add_parsers(subcommands, api, actions)


def run(api: Client, args: argparse.Namespace) -> int:
    if args.action == "list":
        jobs = api.training_jobs()
        rows = [
            [j["id"], j["model"], j["status"], j.get("registered_version") or "-"] for j in jobs
        ]
        emit(args, jobs, lambda: table(["id", "model", "status", "version"], rows))
        return 0
    if args.action == "show":
        return show(api, args)
    if args.action == "stop":
        emit(args, api.stop_training(args.id), None)
        return 0
    job = follow(api, args.id, stack_home(args))
    if job is None:
        return 130
    return 0 if job.get("status") == "Completed" else 1


def stack_home(args: argparse.Namespace) -> Path | None:
    """The local stack's state folder given with --home, as maas.cli reads it."""
    return args.home.resolve() if getattr(args, "home", None) else None


def show(api: Client, args: argparse.Namespace) -> int:
    """The job, with its metrics per epoch: as pairs and curves (the default), or as JSON
    (`-o json`, with `history`)."""
    if args.plot:
        plot.require_matplotlib()  # before anything is read: the mistake is the user's
    job = api.training_job(args.id)
    log = JobLog(api, job, stack_home(args))
    epochs = history(log.read(True))
    if args.output != "json":
        glyphs = plot.UNICODE if plot.can_draw(sys.stdout.encoding) else plot.ASCII
        print(pairs(job))
        if epochs or log.readable:  # an unreadable log is said on stderr
            print()
            print(plot.text_charts(epochs, glyphs) or "no epoch has ended in the job's log yet")
    else:
        emit(args, {**job, "history": epochs})
    if not args.plot:
        return 0
    if not epochs:
        print("maas: no epoch has ended in the job's log yet: nothing to plot", file=sys.stderr)
        return 1
    plot.write_png(epochs, args.plot, f"{job['id']} ({job.get('model')}, {job.get('recipe')})")
    print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def _epochs_of(job: dict[str, Any]) -> int | None:
    from maas.commands import total_epochs

    return total_epochs(job.get("hyperparameters") or {}, job.get("recipe"))


def follow(
    api: Client, job_id: str, home: Path | None, total_epochs: int | None = None
) -> dict[str, Any] | None:
    """Prints the job's progress until it ends, then how it ended in plain words; the job as it
    ended, or None after Ctrl-C (having said how to come back). `total_epochs`: how many the
    job runs (default: what the job's hyperparameters say, as the API answers them)."""
    started = time.monotonic()
    job = api.training_job(job_id)
    if total_epochs is None:
        total_epochs = _epochs_of(job)
    print(f"job {job_id} of {job.get('model')} ({job.get('recipe')})", flush=True)
    log = JobLog(api, job, home)
    shown = EpochProgress(sys.stdout, total_epochs, redraw=sys.stdout.isatty())
    said: object = None  # the status, or the milestone, last printed
    try:
        for job, lines in watch_with_lines(  # noqa: B020 - keep the last
            partial(api.training_job, job_id),
            log.read,
            TRAINING_JOB_TERMINAL,
            log.poll_s,
            log.settle_s,
        ):
            if log.readable:  # its status as it changes (its end: the final words); the epochs
                if status(job) != said and job.get("status") not in TRAINING_JOB_TERMINAL:
                    shown.note(f"[{time.monotonic() - started:6.1f}s] {status(job)}")
                    said = status(job)
                for line in lines:
                    shown.line(line)
            elif training_milestone(job) != said:  # SageMaker's metrics, which lag the log
                shown.note(progress_line(job, started))
                said = training_milestone(job)
    except KeyboardInterrupt:
        shown.close()
        print(f"\nthe job goes on; `maas jobs follow {job_id}` picks it up again", file=sys.stderr)
        return None
    shown.close()
    print(final_words(job), flush=True)
    return job


class JobLog:
    """The job's log lines (commands_logs' source for it), read on from the last read. Where it
    cannot be read, it says so once on stderr and gives no lines from then on."""

    def __init__(self, api: Client, job: dict[str, Any], home: Path | None) -> None:
        self.errors = commands_logs.read_errors(api.credentials.local)
        self.poll_s = commands_logs.LOCAL_POLL_S
        self.settle_s = 0.0
        self.source: commands_logs.LogFiles | commands_logs.LogEvents | None = None
        try:
            self.source = commands_logs.job_source(api, job, home)
        except self.errors as error:
            self._give_up(error)
            return
        self.poll_s, self.settle_s = self.source.poll_s, self.source.settle_s

    @property
    def readable(self) -> bool:
        return self.source is not None

    def read(self, partial: bool) -> list[str]:
        """The new lines; with `partial`, a last line not yet ended too."""
        if self.source is None:
            return []
        try:
            return [text for _, text in self.source.read(partial)]
        except self.errors as error:
            self._give_up(error)
            return []

    def _give_up(self, error: Exception) -> None:
        print(f"maas: cannot read the job's log, so no epochs from it: {error}", file=sys.stderr)
        self.source = None


def status(job: dict[str, Any]) -> str:
    """`InProgress/Training`: the status, and SageMaker's secondary status where there is one."""
    words = job.get("status", "?")
    if job.get("secondary_status"):
        words += f"/{job['secondary_status']}"
    return words


def progress_line(job: dict[str, Any], started: float) -> str:
    """`[  12.3s] InProgress/Training  epoch 2  validation:accuracy=0.95 ...`"""
    metrics = job.get("metrics") or {}
    epoch = metrics.get("epoch")
    where = f"epoch {int(epoch)}" if epoch is not None else ""
    shown = " ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()) if k != "epoch")
    line = f"[{time.monotonic() - started:6.1f}s] {status(job):<24} {where:<12} {shown}"
    return line.rstrip()


def final_words(job: dict[str, Any]) -> str:
    """The job's end in plain words."""
    state = job.get("status", "?")
    words = f"job {job.get('id')} {FINAL_WORDS.get(state, state)}"
    if job.get("failure_reason"):
        words += f": {job['failure_reason']}"
    if job.get("registered_version"):
        words += f"; registered as version {job['registered_version']} of {job.get('model')}"
    elif job.get("outcome"):
        words += f"; {job['outcome']}"
    return words
