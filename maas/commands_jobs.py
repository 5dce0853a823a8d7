"""`maas jobs list|show|follow|stop|logs`: the training jobs, through the API.

`follow` re-attaches to a job started earlier (by `maas train` or anyone) and prints its
progress until it ends; Ctrl-C leaves the job running and says how to come back.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from maas import commands_logs
from maas.client import Client
from maas.output import emit, table

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
    show = actions.add_parser("show", parents=[api], help="one job: status, metrics, reason")
    show.add_argument("id", help="the job's id, as `maas train` printed it")
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
        emit(args, api.training_job(args.id), None)
        return 0
    if args.action == "stop":
        emit(args, api.stop_training(args.id), None)
        return 0
    return follow(api, args.id)


def follow(api: Client, job_id: str) -> int:
    """Prints the job's progress until it ends; 0 only when it completed."""
    started = time.monotonic()
    job = api.training_job(job_id)
    try:
        for job in api.watch_training(job_id):  # noqa: B020 - keep the last
            print(progress_line(job, started), flush=True)
    except KeyboardInterrupt:
        print(
            f"\nstill running; `maas jobs follow {job_id}` picks it up again",
            file=sys.stderr,
        )
        return 130
    print(final_words(job), flush=True)
    return 0 if job.get("status") == "Completed" else 1


def progress_line(job: dict[str, Any], started: float) -> str:
    """`[  12.3s] InProgress/Training  epoch 2  validation:accuracy=0.95 ...`"""
    metrics = job.get("metrics") or {}
    status = job.get("status", "?")
    if job.get("secondary_status"):
        status += f"/{job['secondary_status']}"
    epoch = metrics.get("epoch")
    where = f"epoch {int(epoch)}" if epoch is not None else ""
    shown = " ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()) if k != "epoch")
    line = f"[{time.monotonic() - started:6.1f}s] {status:<24} {where:<12} {shown}"
    return line.rstrip()


def final_words(job: dict[str, Any]) -> str:
    """The job's end in plain words."""
    status = job.get("status", "?")
    words = f"job {job.get('id')} {FINAL_WORDS.get(status, status)}"
    if job.get("failure_reason"):
        words += f": {job['failure_reason']}"
    if job.get("registered_version"):
        words += f"; registered as version {job['registered_version']} of {job.get('model')}"
    elif job.get("outcome"):
        words += f"; {job['outcome']}"
    return words
