"""Faults injected into the running stack; each ends in a known state with nothing lost."""

from __future__ import annotations

import re
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from tests.reliability.reliability_helpers import (
    DIGITS,
    deploy,
    predict,
    register_stub,
    tally,
    wait_deployment,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROWS = [[1.0, 2.0, 3.0]]


def deployed_stub(stack, model: str, **settings) -> int:
    version = register_stub(stack, model, **settings)
    done = wait_deployment(stack, model, deploy(stack, model, version)["id"])
    assert done["status"] == "Succeeded", done
    return version


def test_model_server_dying_mid_request_is_a_502_and_the_next_request_succeeds(stack):
    deployed_stub(stack, "fragile", crash_on=[9.0, 9.0, 9.0])
    endpoint = stack.call("GET", "/v1/models/fragile").json()["endpoint_name"]

    died = predict(stack, "fragile", [[9.0, 9.0, 9.0]])
    after = predict(stack, "fragile", ROWS)

    assert died.status_code == 502, died.text
    assert died.json()["code"] == "ModelError"
    assert "worker died" in died.json()["error"].lower()
    assert after.status_code == 200, after.text
    assert after.json()["outputs"]["predictions"] == [6.0]
    stats = stack.emulator_internals()
    assert [v["restarts"] for v in stats[endpoint]["variants"]] == [1]
    tally("faults injected and recovered")


def test_endpoint_still_loading_answers_503_with_retry_after_then_serves(stack):
    version = register_stub(stack, "sleepy", load_delay_s=8)
    started = deploy(stack, "sleepy", version)

    loading = predict(stack, "sleepy", ROWS)

    assert loading.status_code == 503, loading.text
    assert loading.json()["code"] == "ModelNotReady"
    assert int(loading.headers["Retry-After"]) > 0
    assert wait_deployment(stack, "sleepy", started["id"])["status"] == "Succeeded"
    assert predict(stack, "sleepy", ROWS).status_code == 200
    tally("faults injected and recovered")


def test_failing_training_script_ends_failed_with_its_reason_and_registers_nothing(
    stack, digits_data
):
    spec = {
        "model": "doomed",
        "recipe": "image-cnn",
        "datasets": digits_data[0],
        "hyperparameters": {"epochs": "many"},  # train.py's argparse refuses it: exit 2
    }
    job_id = stack.call("POST", "/v1/training-jobs", json=spec).json()["id"]

    job = wait_for(
        lambda: (
            (j := stack.call("GET", f"/v1/training-jobs/{job_id}").json())["status"]
            in ("Failed", "Completed", "Stopped")
            and j
        ),
        timeout=120,
    )

    assert job["status"] == "Failed", job
    assert "epochs" in job["failure_reason"] and "ExitCode 2" in job["failure_reason"]
    assert job.get("registered_version") is None
    assert stack.call("GET", "/v1/models/doomed").status_code == 404
    tally("faults injected and recovered")


def test_concurrent_deployments_of_one_model_let_one_proceed_and_refuse_the_other(stack):
    version = register_stub(stack, "contested")
    gate = threading.Barrier(2)

    def start(_: int):
        gate.wait()
        body = {"version": version, "rollback_alarms": ["a"], "capture_percent": 0}
        return stack.call("POST", "/v1/models/contested/deployments", json=body)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(start, range(2)))

    assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]
    (winner,) = [a.json() for a in answers if a.status_code == 202]
    assert wait_deployment(stack, "contested", winner["id"])["status"] == "Succeeded"
    assert stack.call("GET", "/v1/models/contested").json()["live_version"] == version
    tally("faults injected and recovered")


def test_canary_that_breaches_its_alarm_rolls_traffic_back_and_records_it(stack):
    good = deployed_stub(stack, "canary")
    bad = register_stub(stack, "canary", fail_predict="weights drifted")
    rollout = deploy(stack, "canary", bad, canary_percent=50, canary_wait_seconds=900)

    answered = []
    for _ in range(200):  # until the canary takes a request and fails it
        response = predict(stack, "canary", ROWS)
        answered.append(response.status_code)
        if response.status_code == 502:
            break
    done = wait_deployment(stack, "canary", rollout["id"])
    after = [predict(stack, "canary", ROWS) for _ in range(20)]

    assert answered[-1] == 502 and set(answered[:-1]) <= {200}, answered
    assert done["status"] == "RolledBack", done
    assert "in alarm" in done["failure_reason"].lower()
    assert stack.call("GET", "/v1/models/canary").json()["live_version"] == good
    assert {(r.status_code, r.json()["version"]) for r in after} == {(200, good)}
    tally("faults injected and recovered")


def test_fifty_concurrent_registrations_get_unique_monotonic_versions_and_none_is_lost(stack):
    first = register_stub(stack, "crowd")
    gate = threading.Barrier(50)

    def register(_: int) -> int:
        gate.wait()
        return register_stub(stack, "crowd")

    with ThreadPoolExecutor(50) as pool:
        numbers = list(pool.map(register, range(50)))

    assert sorted(numbers) == list(range(first + 1, first + 51))
    listed = stack.call("GET", "/v1/models/crowd/versions", params={"limit": 100}).json()
    versions = [v["version"] for v in listed["items"]]
    assert versions == list(range(first + 50, first - 1, -1))  # newest first, no gaps
    stamps = {v["version"]: v["created_at"] for v in listed["items"]}
    assert [stamps[n] for n in sorted(stamps)] == sorted(stamps.values())
    assert stack.call("GET", "/v1/models/crowd").json()["latest_version"] == first + 50
    tally("faults injected and recovered")


# -- spot interruption -------------------------------------------------------------------------
SPOT_EPOCHS = 4
EPOCH_LINE = re.compile(r"^epoch=(\d+) train_loss=", re.MULTILINE)


def _train_process(stack, job: str) -> psutil.Process | None:
    emulator = psutil.Process(stack.state["parts"]["sagemaker"]["pid"])
    for proc in emulator.children(recursive=True):
        try:
            argv = proc.cmdline()
        except psutil.Error:
            continue
        if any(a.endswith("train.py") for a in argv) and "_guard.py" not in " ".join(argv):
            if job in proc.cwd():
                return proc
    return None


def _retry_request(sm, name: str, retry: str) -> dict:
    """What managed spot does after an interruption: the same job again, same checkpoints."""
    described = sm.describe_training_job(TrainingJobName=name)
    wanted = sm.meta.service_model.operation_model("CreateTrainingJob").input_shape.members
    request = {k: v for k, v in described.items() if k in wanted}
    request["TrainingJobName"] = retry
    return request


def test_spot_interruption_mid_epoch_resumes_from_the_checkpoint_and_ends_with_a_model(
    stack, digits_data
):
    channels, _ = digits_data
    spec = {
        "model": "spot",
        "recipe": "image-cnn",
        "datasets": channels,
        "hyperparameters": {"epochs": SPOT_EPOCHS, "log-interval": 1, "seed": 5},
    }
    job = stack.call("POST", "/v1/training-jobs", json=spec).json()["id"]
    log = stack.paths.sagemaker_root / "logs" / "training-jobs" / f"{job}.log"
    wait_for(lambda: log.exists() and "epoch=3 step=" in log.read_text(), timeout=300, every=0.05)
    trainer = wait_for(lambda: _train_process(stack, job), timeout=10)
    trainer.send_signal(signal.SIGKILL)  # the instance is reclaimed mid-epoch
    interrupted = wait_for(
        lambda: (
            (j := stack.call("GET", f"/v1/training-jobs/{job}").json())["status"] != "InProgress"
            and j
        ),
        timeout=60,
    )
    finished_before = [int(n) for n in EPOCH_LINE.findall(log.read_text())]

    sm = stack.aws("sagemaker")
    retry = f"{job}-r1"
    sm.create_training_job(**_retry_request(sm, job, retry))
    described = wait_for(
        lambda: (
            (d := sm.describe_training_job(TrainingJobName=retry))["TrainingJobStatus"]
            in ("Completed", "Failed", "Stopped")
            and d
        ),
        timeout=300,
    )
    retry_log = (log.parent / f"{retry}.log").read_text()
    finished_after = [int(n) for n in EPOCH_LINE.findall(retry_log)]

    assert interrupted["status"] == "Failed" and "ExitCode" in interrupted["failure_reason"]
    assert interrupted.get("registered_version") is None
    assert finished_before == [1, 2]  # killed during epoch 3
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert f"after epoch {finished_before[-1]}" in retry_log
    assert finished_after == [3, 4]  # epochs 1 and 2 were not repeated
    artifact = described["ModelArtifacts"]["S3ModelArtifacts"]
    bucket, key = artifact.removeprefix("s3://").split("/", 1)
    assert stack.aws("s3").head_object(Bucket=bucket, Key=key)["ContentLength"] > 0
    assert "restored" in retry_log and retry_log.index("restored") < retry_log.index("epoch=3")
    tally("faults injected and recovered")


def test_registered_and_deployed_digits_model_still_answers_after_the_faults(stack, digits_model):
    version, held = digits_model
    rows = held.x[:10].reshape(10, 64).tolist()

    answer = predict(stack, DIGITS, rows)

    assert answer.status_code == 200, answer.text
    labels = [int(p["label"]) for p in answer.json()["outputs"]["predictions"]]
    assert sum(a == b for a, b in zip(labels, held.y[:10], strict=True)) >= 8
    assert answer.json()["version"] == version
