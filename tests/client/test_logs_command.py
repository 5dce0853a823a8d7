"""`maas jobs logs` and `maas endpoints logs`: the local stack's files, as the emulator writes
them, and CloudWatch Logs, under the names SageMaker uses; `-f` follows and stops."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from maas import commands_logs
from maas.cli import main
from maas_contract import names
from maas_contract.errors import error_body
from tests.client.stub_api import Reply, Request, stub_api

REPO = Path(__file__).resolve().parents[2]
JOB = names.training_job_name("maas-local", "digits", datetime(2025, 1, 2, 3, 4, 5), "ab12")
ENDPOINT = names.endpoint_name("maas-local", "digits")


@pytest.fixture(autouse=True)
def no_client_env(monkeypatch):
    for name in ("MAAS_API_URL", "MAAS_API_KEY", "MAAS_TOKEN", "MAAS_HOME"):
        monkeypatch.delenv(name, raising=False)


def _api(job: dict) -> Callable[[Request], Reply]:
    """The two routes the commands read: one job (its status as `job` says now) and one model."""

    def answer(request: Request) -> Reply:
        if request.path == f"/v1/training-jobs/{JOB}":
            return Reply(200, {"id": JOB, "model": "digits", "instance_count": 1, **job})
        if request.path == "/v1/models/digits":
            return Reply(200, {"name": "digits", "endpoint_name": ENDPOINT, "latest_version": 1})
        what = "training job" if "training-jobs" in request.path else "model"
        return Reply(404, error_body("NotFound", f"no {what} {request.path.split('/')[-1]}", "r1"))

    return answer


def _local_stack(home: Path, api_url: str):
    """A stack home whose state names `api_url` as the API, with the issuer the CLI mints from."""
    from maas_local.config import StackPaths, write_private_json
    from maas_local.tokens import create_issuer

    paths = StackPaths(home).ensure()
    create_issuer(paths.keys, api_url)
    write_private_json(paths.state_file, {"api_url": api_url, "api_key": "k"})
    return paths


def _emulator_job_log(paths, job_name: str) -> Path:
    """Where the emulator writes a training job's output: its own function says."""
    from maas_local.sagemaker.training_jobs import TrainingJobs

    jobs = TrainingJobs(SimpleNamespace(root=paths.sagemaker_root), source_dir=REPO)
    path = jobs.log_path(job_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _emulator_variant_logs(paths, endpoint: str, variants: list[str]) -> dict[str, Path]:
    """Where the emulator writes each variant's model-server log: the fleet it builds says."""
    from maas_local.sagemaker.endpoints import Endpoint, Endpoints

    emulator = Endpoints(
        SimpleNamespace(root=paths.sagemaker_root), {}, lambda name: {"ModelName": name}
    )
    config = {
        "EndpointConfigName": f"{endpoint}-c1",
        "ProductionVariants": [{"VariantName": v, "ModelName": "m"} for v in variants],
    }
    fleet = emulator.build_fleet(Endpoint(endpoint, {}, []), config)
    logs = {name: variant.log_path for name, variant in fleet.variants.items()}
    for path in logs.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    return logs


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- the local stack: the emulator's own files ----------------------------------------------


def test_the_stack_paths_name_the_files_the_emulator_writes(tmp_path):
    from maas_local.config import StackPaths

    paths = StackPaths(tmp_path)

    assert _emulator_job_log(paths, JOB) == paths.training_job_log(JOB)
    variant_log = _emulator_variant_logs(paths, ENDPOINT, ["AllTraffic"])["AllTraffic"]
    assert variant_log == paths.endpoint_logs(ENDPOINT) / "AllTraffic.log"


def test_job_logs_print_what_the_emulator_wrote_for_that_job(tmp_path, capsys):
    with stub_api(_api({"status": "Completed"})) as api:
        paths = _local_stack(tmp_path, api.url)
        _emulator_job_log(paths, JOB).write_text("[sagemaker-local] started\nepoch 1 loss 0.3\n")
        _emulator_job_log(paths, JOB + "x").write_text("another job's line\n")

        code, out, _ = _run(capsys, "--home", str(tmp_path), "jobs", "logs", JOB)

    assert code == 0
    assert out.splitlines() == ["[sagemaker-local] started", "epoch 1 loss 0.3"]
    assert api.requests[0].path == f"/v1/training-jobs/{JOB}"


def test_endpoint_logs_name_each_variant_of_the_models_endpoint(tmp_path, capsys):
    with stub_api(_api({})) as api:
        paths = _local_stack(tmp_path, api.url)
        logs = _emulator_variant_logs(paths, ENDPOINT, ["AllTraffic", "Canary"])
        logs["AllTraffic"].write_text("model server ready on port 8080\n")
        logs["Canary"].write_text("invocation failed: shape (1, 3)\n")

        code, out, _ = _run(capsys, "--home", str(tmp_path), "endpoints", "logs", "digits")

    assert code == 0
    assert out.splitlines() == [
        "[AllTraffic] model server ready on port 8080",
        "[Canary] invocation failed: shape (1, 3)",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["jobs", "logs", "maas-local-ghost-20250101000000-0000"], "no training job maas-local"),
        (["endpoints", "logs", "ghost"], "no model ghost"),
    ],
)
def test_an_unknown_job_or_model_exits_1_with_the_apis_message(tmp_path, capsys, argv, message):
    with stub_api(_api({})) as api:
        _local_stack(tmp_path, api.url)
        code, out, err = _run(capsys, "--home", str(tmp_path), *argv)

    assert code == 1 and out == ""
    assert "maas: HTTP 404 NotFound: " + message in err


def test_a_job_with_no_log_yet_says_where_it_looked(tmp_path, capsys):
    with stub_api(_api({"status": "Failed"})) as api:
        paths = _local_stack(tmp_path, api.url)
        code, out, err = _run(capsys, "--home", str(tmp_path), "jobs", "logs", JOB)

    assert code == 0 and out == ""
    assert f"no log lines yet in {paths.training_job_log(JOB)}" in err


@contextmanager
def _maas(home: Path, *argv: str) -> Iterator[tuple[subprocess.Popen, queue.Queue[str]]]:
    """`maas ARGV` in its own process; its stdout lines arrive on the queue as it prints them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAAS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "maas", "--home", str(home), *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(
        target=lambda: [lines.put(line.rstrip("\n")) for line in proc.stdout], daemon=True
    )
    reader.start()
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        reader.join(timeout=5)


def _drain(lines: queue.Queue[str]) -> list[str]:
    return [lines.get_nowait() for _ in range(lines.qsize())]


def test_follow_prints_lines_as_the_job_writes_them_and_stops_when_it_ends(tmp_path):
    job = {"status": "InProgress"}
    with stub_api(_api(job)) as api:
        paths = _local_stack(tmp_path, api.url)
        log = _emulator_job_log(paths, JOB)
        log.write_text("[sagemaker-local] started\n")
        started = time.monotonic()

        with _maas(tmp_path, "jobs", "logs", JOB, "-f") as (proc, lines):
            assert lines.get(timeout=15) == "[sagemaker-local] started"
            _append(log, "epoch 1 accuracy 0.91\n")
            assert lines.get(timeout=5) == "epoch 1 accuracy 0.91"
            _append(log, "[sagemaker-local] status Completed / Completed\n")
            job["status"] = "Completed"

            assert proc.wait(timeout=5) == 0
            stderr = proc.stderr.read()

    assert _drain(lines) == ["[sagemaker-local] status Completed / Completed"]
    assert stderr == ""
    assert time.monotonic() - started < 15


def test_follow_on_an_endpoint_ends_cleanly_on_ctrl_c(tmp_path):
    with stub_api(_api({})) as api:
        paths = _local_stack(tmp_path, api.url)
        log = _emulator_variant_logs(paths, ENDPOINT, ["AllTraffic"])["AllTraffic"]
        log.write_text("model server ready on port 8080\n")

        with _maas(tmp_path, "endpoints", "logs", "digits", "-f") as (proc, lines):
            assert lines.get(timeout=15) == "[AllTraffic] model server ready on port 8080"
            _append(log, "invocation failed: bad input\n")
            assert lines.get(timeout=5) == "[AllTraffic] invocation failed: bad input"
            proc.send_signal(signal.SIGINT)

            assert proc.wait(timeout=5) == 0
            assert "Traceback" not in proc.stderr.read()


# -- the cloud: CloudWatch Logs, with the caller's own credentials ----------------------------
#
# The names SageMaker writes under, from "CloudWatch Logs for Amazon SageMaker AI",
# https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html:
#   group /aws/sagemaker/TrainingJobs,
#     streams [training-job-name]/algo-[instance-number-in-cluster]-[epoch_timestamp];
#   group /aws/sagemaker/Endpoints/[EndpointName],
#     streams [production-variant-name]/[instance-id].
# FilterLogEvents and its logStreamNamePrefix, startTime and eventId:
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html
JOB_GROUP = "/aws/sagemaker/TrainingJobs"
ENDPOINT_GROUP = f"/aws/sagemaker/Endpoints/{ENDPOINT}"


@pytest.fixture
def cloudwatch(monkeypatch):
    """moto's CloudWatch Logs; every FilterLogEvents request the command sends is recorded."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setattr(commands_logs, "CLOUD_POLL_S", 0.05)
    monkeypatch.setattr(commands_logs, "CLOUD_SETTLE_S", 0.0)
    sent: list[dict] = []
    with mock_aws():
        logs = boto3.client("logs", region_name="us-east-1")
        logs.meta.events.register(
            "provide-client-params.logs.FilterLogEvents", lambda params, **_: sent.append(params)
        )
        monkeypatch.setattr(commands_logs, "_logs_client", lambda api_url: logs)
        yield SimpleNamespace(logs=logs, sent=sent)


def _put(logs, group: str, stream: str, *messages: str, at_ms: int | None = None) -> None:
    if group not in {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]}:
        logs.create_log_group(logGroupName=group)
    if not logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)["logStreams"]:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    stamp = at_ms if at_ms is not None else int(time.time() * 1000)
    events = [{"timestamp": stamp, "message": message} for message in messages]
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)


def _remote(api) -> tuple[str, ...]:
    return ("--api-url", api.url, "--api-key", "k", "--token", "t")


def test_cloud_job_logs_read_the_training_jobs_group_for_that_jobs_streams(cloudwatch, capsys):
    _put(cloudwatch.logs, JOB_GROUP, f"{JOB}/algo-1-1735787045", "epoch 1 loss 0.3", "done")

    with stub_api(_api({"status": "Completed"})) as api:
        code, out, _ = _run(capsys, "jobs", "logs", JOB, *_remote(api))

    assert code == 0
    assert out.splitlines() == ["epoch 1 loss 0.3", "done"]
    # moto 5 ignores logStreamNamePrefix in FilterLogEvents: the request is what is pinned.
    assert cloudwatch.sent[0]["logGroupName"] == JOB_GROUP
    assert cloudwatch.sent[0]["logStreamNamePrefix"] == f"{JOB}/"


def test_cloud_endpoint_logs_read_the_endpoints_group_from_the_last_hour(cloudwatch, capsys):
    stream = "AllTraffic/i-0123456789abcdef0"
    _put(cloudwatch.logs, ENDPOINT_GROUP, stream, "old ping", at_ms=0)
    _put(cloudwatch.logs, ENDPOINT_GROUP, stream, "model loaded")

    with stub_api(_api({})) as api:
        code, out, _ = _run(capsys, "endpoints", "logs", "digits", *_remote(api))

    assert code == 0
    assert out.splitlines() == [f"[{stream}] model loaded"]
    assert cloudwatch.sent[0]["logGroupName"] == ENDPOINT_GROUP
    assert time.time() * 1000 - cloudwatch.sent[0]["startTime"] == pytest.approx(3600e3, abs=60e3)


def test_cloud_follow_prints_each_event_once_and_stops_when_the_job_ends(cloudwatch, capsys):
    stream = f"{JOB}/algo-1-1735787045"
    first = int(time.time() * 1000)
    _put(cloudwatch.logs, JOB_GROUP, stream, "epoch 1", at_ms=first)
    polls = []

    def answer(request: Request) -> Reply:
        polls.append(request.path)
        if len(polls) == 2:  # while the command follows: a line with the same timestamp
            _put(cloudwatch.logs, JOB_GROUP, stream, "epoch 2", at_ms=first)
        if len(polls) == 4:
            _put(cloudwatch.logs, JOB_GROUP, stream, "saved the model", at_ms=first + 1)
        status = "Completed" if len(polls) >= 4 else "InProgress"
        return _api({"status": status})(request)

    with stub_api(answer) as api:
        code, out, _ = _run(capsys, "jobs", "logs", JOB, "-f", *_remote(api))

    assert code == 0
    assert out.splitlines() == ["epoch 1", "epoch 2", "saved the model"]


def test_a_multi_instance_job_says_which_instance_printed_each_line(cloudwatch, capsys):
    _put(cloudwatch.logs, JOB_GROUP, f"{JOB}/algo-2-1735787045", "rank 1 ready")

    def answer(request: Request) -> Reply:
        return Reply(200, {"id": JOB, "status": "Completed", "instance_count": 2})

    with stub_api(answer) as api:
        code, out, _ = _run(capsys, "jobs", "logs", JOB, *_remote(api))

    assert code == 0 and out.splitlines() == ["[algo-2-1735787045] rank 1 ready"]


def test_no_log_group_yet_is_no_lines_not_an_error(cloudwatch, capsys):
    with stub_api(_api({"status": "InProgress"})) as api:
        code, out, err = _run(capsys, "jobs", "logs", JOB, *_remote(api))

    assert code == 0 and out == ""
    assert f"no log lines yet in CloudWatch Logs {JOB_GROUP} (streams {JOB}/*)" in err


def test_the_logs_client_takes_the_stages_region_from_an_execute_api_url():
    url = "https://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com/prod/"

    assert commands_logs.region_of(url) == "eu-west-2"
    assert commands_logs.region_of("https://api.example.com/v1/") is None


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("10m", 600), ("2h", 7200)])
def test_since_takes_a_number_and_a_unit(text, seconds):
    assert commands_logs.parse_duration(text) == seconds


def test_since_refuses_a_bare_number():
    from maas.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["endpoints", "logs", "digits", "--since", "10"])
