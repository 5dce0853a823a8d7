"""`maas jobs logs ID [-f]` and `maas endpoints logs MODEL [-f]`: what a training job, or the
model servers behind a model's endpoint, printed.

The API names what to read: a job's id is its SageMaker training job's name, and
`GET /v1/models/{model}` gives the model's `endpoint_name`. Like every API command, these call
the running local stack unless given --api-url (or MAAS_API_URL). Locally the lines come from
the SageMaker emulator's files in the stack's state folder (`sagemaker/logs/`). Against a
deployed stage they come from CloudWatch Logs, read with your own AWS credentials (boto3's usual
chain: environment, profile, SSO; you need `logs:FilterLogEvents`), from where SageMaker writes
them (https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html):

    /aws/sagemaker/TrainingJobs               <job name>/algo-<n>-<epoch seconds>
    /aws/sagemaker/Endpoints/<endpoint name>  <variant name>/<instance id>

-f keeps printing new lines: for a job until it ends, for an endpoint until Ctrl-C.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas.client import Client
from maas.credentials import Credentials
from maas_contract.events import TRAINING_JOB_TERMINAL

if TYPE_CHECKING:
    from maas_local.config import StackPaths

TRAINING_JOB_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ENDPOINT_LOG_GROUP_PREFIX = "/aws/sagemaker/Endpoints/"
LOCAL_POLL_S = 1.0
CLOUD_POLL_S = 2.0  # FilterLogEvents has a low per-account request quota
CLOUD_SETTLE_S = 5.0  # after a job ends, CloudWatch may still be ingesting its last lines
CLOUD_OVERLAP_MS = 5_000  # each poll looks back this far, for events ingested late
_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EXECUTE_API = re.compile(r"^https://[^./]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com")

Line = tuple[str, str]  # (where it came from: a variant or an instance, or ""; the text)


def parse_duration(text: str) -> float:
    """'90s', '10m', '2h', '1d' -> seconds."""
    found = _DURATION.match(text.strip())
    if not found:
        raise argparse.ArgumentTypeError("expected a number and s, m, h or d, e.g. 30m")
    return int(found.group(1)) * _UNIT_S[found.group(2)]


def add_parsers(subcommands: Any, api: argparse.ArgumentParser, job_actions: Any) -> None:
    """`jobs logs` goes under `job_actions` (maas.commands_jobs makes `jobs`)."""
    described = {"description": __doc__, "formatter_class": argparse.RawDescriptionHelpFormatter}
    job_logs = job_actions.add_parser(
        "logs", parents=[api], help="what the job printed", **described
    )
    job_logs.add_argument("id", help="the job's id, as `maas train` printed it")
    job_logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new lines until the job ends"
    )
    endpoints = subcommands.add_parser("endpoints", help="the logs of a model's endpoint")
    endpoint_logs = endpoints.add_subparsers(dest="action", required=True).add_parser(
        "logs", parents=[api], help="what the model servers printed", **described
    )
    endpoint_logs.add_argument("model", help="the model's name, e.g. digits")
    endpoint_logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C"
    )
    endpoint_logs.add_argument(
        "--since",
        type=parse_duration,
        default="1h",
        help="in the cloud, start this far back (e.g. 30m, 2d; default 1h); "
        "a local endpoint's log is shown whole",
    )


def run(args: argparse.Namespace, home: Path | None) -> int:
    """Prints the logs `args` ask for; `home` is the local stack's state folder."""
    api = Client(
        Credentials.resolve(home, args.api_url, args.api_key, args.token, profile=args.profile)
    )
    ended: Callable[[], bool] | None = None
    if args.command == "jobs":
        source = job_source(api, api.training_job(args.id), home)  # unknown: the API's 404
        ended = partial(_job_ended, api, args.id)
    else:
        source = _endpoint_source(api, api.model(args.model)["endpoint_name"], args.since, home)
    if api.credentials.local:
        return _show(source, args.follow, ended)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return _show(source, args.follow, ended)
    except (BotoCoreError, ClientError) as error:  # no credentials, no region, access denied
        print(f"maas: reading {source.where}: {error}", file=sys.stderr)
        return 1


def _job_ended(api: Client, job_id: str) -> bool:
    return api.training_job(job_id).get("status") in TRAINING_JOB_TERMINAL


def job_source(api: Client, job: dict[str, Any], home: Path | None) -> LogFiles | LogEvents:
    """Where the job's lines are: the emulator's file locally, CloudWatch Logs in the cloud
    (whose client raises what `read_errors` names when boto3 finds no region)."""
    name = job["id"]
    if api.credentials.local:
        path = _stack_paths(home).training_job_log(name)
        return LogFiles(path.parent, path.name, label=lambda stem: "")
    prefix = f"{name}/"  # the slash: job `x-1` must not read job `x-10`'s streams
    several = int(job.get("instance_count") or 1) > 1  # then say which instance printed what
    return LogEvents(
        _logs_client(api.credentials.api_url),
        TRAINING_JOB_LOG_GROUP,
        prefix,
        start_ms=0,
        label=lambda stream: stream.removeprefix(prefix) if several else "",
    )


def read_errors(local: bool) -> tuple[type[Exception], ...]:
    """What opening or reading a log may raise that means only "not readable from here": a
    file's OSError locally; in the cloud botocore's (no credentials or region, access denied)."""
    if local:
        return (OSError,)
    from botocore.exceptions import BotoCoreError, ClientError

    return (OSError, BotoCoreError, ClientError)


def _endpoint_source(
    api: Client, endpoint: str, since_s: float, home: Path | None
) -> LogFiles | LogEvents:
    if api.credentials.local:
        return LogFiles(_stack_paths(home).endpoint_logs(endpoint), "*.log", label=str)
    return LogEvents(
        _logs_client(api.credentials.api_url),
        ENDPOINT_LOG_GROUP_PREFIX + endpoint,
        "",
        start_ms=int((time.time() - since_s) * 1000),
        label=str,
    )


def _stack_paths(home: Path | None) -> StackPaths:
    from maas_local.config import StackPaths, default_home

    return StackPaths(home or default_home())


def _show(source: LogFiles | LogEvents, follow: bool, ended: Callable[[], bool] | None) -> int:
    """Prints what the source holds; with `follow`, what it gets next, until `ended()` says
    so (then what came in meanwhile) or Ctrl-C."""
    lines = source.read(partial=not follow)
    if not lines:
        waiting = "; waiting for some" if follow else ""
        print(f"maas: no log lines yet in {source.where}{waiting}", file=sys.stderr, flush=True)
    _print(lines)
    if not follow:
        return 0
    try:
        while True:
            if ended is not None and ended():
                time.sleep(source.settle_s)
                _print(source.read(partial=True))
                return 0
            time.sleep(source.poll_s)
            _print(source.read(partial=False))
    except KeyboardInterrupt:  # how a follow ends, as `maas local logs -f`
        return 0


def _print(lines: list[Line]) -> None:
    for label, text in lines:
        print(f"[{label}] {text}" if label else text, flush=True)


class LogFiles:
    """The files `pattern` names in `folder`, each read on from where the last read stopped.
    A file's label is `label(its stem)`."""

    def __init__(self, folder: Path, pattern: str, label: Callable[[str], str]) -> None:
        self.poll_s = LOCAL_POLL_S
        self.settle_s = 0.0  # a line is in the file once the job has printed it
        self.folder = folder
        self.pattern = pattern
        self.label = label
        self.where = str(folder / pattern)
        self.offsets: dict[Path, int] = {}

    def read(self, partial: bool) -> list[Line]:
        """New whole lines; with `partial`, a last line not yet ended too."""
        lines: list[Line] = []
        for path in sorted(self.folder.glob(self.pattern)):
            offset = self.offsets.get(path, 0)
            if path.stat().st_size < offset:  # the file was started again: read it anew
                offset = 0
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            if not partial:
                chunk = chunk[: chunk.rfind(b"\n") + 1]
            self.offsets[path] = offset + len(chunk)
            label = self.label(path.stem)
            text = chunk.decode("utf-8", errors="replace")
            lines += [(label, line) for line in text.splitlines()]
        return lines


class LogEvents:
    """A CloudWatch Logs group's events, from streams whose names start with `prefix`, each
    printed once. A stream's label is `label(its name)`."""

    def __init__(
        self, logs: Any, group: str, prefix: str, start_ms: int, label: Callable[[str], str]
    ) -> None:
        self.poll_s = CLOUD_POLL_S
        self.settle_s = CLOUD_SETTLE_S
        self.logs = logs
        self.group = group
        self.prefix = prefix
        self.start_ms = start_ms
        self.label = label
        self.where = f"CloudWatch Logs {group}" + (f" (streams {prefix}*)" if prefix else "")
        self.seen: dict[str, int] = {}  # event id -> timestamp, for the events in the overlap

    def read(self, partial: bool = False) -> list[Line]:
        """The events not yet read (`partial` is for files; an event is always whole)."""
        from botocore.exceptions import ClientError

        query: dict[str, Any] = {"logGroupName": self.group, "startTime": self.start_ms}
        if self.prefix:
            query["logStreamNamePrefix"] = self.prefix
        lines: list[Line] = []
        try:
            for page in self.logs.get_paginator("filter_log_events").paginate(**query):
                for event in page.get("events", []):
                    if event["eventId"] in self.seen:
                        continue
                    self.seen[event["eventId"]] = event["timestamp"]
                    text = event["message"].rstrip("\n")
                    lines.append((self.label(event["logStreamName"]), text))
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            return []  # SageMaker makes the group with the first line it writes
        if self.seen:
            self.start_ms = max(self.start_ms, max(self.seen.values()) - CLOUD_OVERLAP_MS)
            self.seen = {key: at for key, at in self.seen.items() if at >= self.start_ms}
        return lines


def region_of(api_url: str) -> str | None:
    """The region of an `execute-api` URL (the stage's, so its SageMaker's), else None."""
    found = _EXECUTE_API.match(api_url)
    return found.group(1) if found else None


def _logs_client(api_url: str) -> Any:
    import boto3  # the cloud's path only: the client extra does not need boto3

    # The stage's region when its URL says it; else boto3's own (AWS_REGION, the profile).
    return boto3.client("logs", region_name=region_of(api_url))
