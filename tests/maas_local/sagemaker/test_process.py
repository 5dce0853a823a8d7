"""The emulator as its own process: ready line, health, clean shutdown, no orphans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import boto3
import psutil
import pytest
from botocore.config import Config

from maas_local.sagemaker.server import POLICIES_ENV
from maas_local.sagemaker.sigv4 import ACCESS_KEY_ENV, SECRET_KEY_ENV
from tests.maas_local.sagemaker.emulator_helpers import (
    BUCKET,
    IMAGE,
    ROLE,
    ROLE_STATEMENTS,
    STUB_CODE,
    VERIFIER,
    blobs,
    create_config,
    create_model,
    emulator_client,
    put_npz,
    put_sourcedir,
    role_policies,
    unique,
    wait_endpoint,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def emulator_process(moto_url, tmp_path):
    # The credentials it accepts and the roles' policies come through the environment, as
    # the local stack passes them: nothing secret on the command line.
    env = {
        **os.environ,
        ACCESS_KEY_ENV: VERIFIER.access_key,
        SECRET_KEY_ENV: VERIFIER.secret_key,
        POLICIES_ENV: str(role_policies(tmp_path / "policies.json", {ROLE: ROLE_STATEMENTS})),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "maas_local.sagemaker", "--port", "0", "--root", str(tmp_path),
         "--source-dir", str(STUB_CODE), "--log-level", "WARNING"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert "sagemaker emulator ready on" in line, line
        yield proc, line.strip().rsplit(" ", 1)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def start_work(url: str, s3) -> tuple[boto3.client, str]:
    """An endpoint with a model server, and a training job that runs for a while."""
    sm = emulator_client("sagemaker", url, Config(retries={"mode": "standard"}))
    name = unique("proc")
    config = create_config(sm, unique("cfg"), {"v1": (create_model(sm, s3, unique("m")), 1.0)})
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    assert wait_endpoint(sm, name)["EndpointStatus"] == "InService"
    x, y = blobs()
    job = unique("proc-job")
    sm.create_training_job(
        TrainingJobName=job,
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        HyperParameters={**put_sourcedir(s3), "epochs": "200", "sleep": "0.5"},
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": put_npz(s3, f"data/{job}/train/d.npz", x, y),
                    }
                },
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    wait_for(lambda: sm.describe_training_job(TrainingJobName=job)["SecondaryStatus"] == "Training")
    return sm, name


def at_least(count: int, processes: list) -> list | None:
    return processes if len(processes) >= count else None


def descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def test_sigterm_stops_the_emulator_and_every_process_it_started(emulator_process, s3):
    proc, url = emulator_process
    with urllib.request.urlopen(url + "/_emulator/health", timeout=10) as response:
        assert json.loads(response.read())["status"] == "ok"
    start_work(url, s3)
    # a model server, the training guard and its script
    children = wait_for(lambda: at_least(3, descendants(proc.pid)))

    proc.send_signal(signal.SIGTERM)

    assert proc.wait(timeout=30) == 0
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == []


def test_children_exit_on_their_own_when_the_emulator_is_killed(emulator_process, s3):
    proc, url = emulator_process
    start_work(url, s3)
    children = wait_for(lambda: at_least(3, descendants(proc.pid)))

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    gone, alive = psutil.wait_procs(children, timeout=15)
    assert alive == []


def test_port_is_free_after_shutdown(emulator_process):
    proc, url = emulator_process
    port = int(url.rsplit(":", 1)[1])
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    listening = [c for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port]
    assert [c for c in listening if c.status == psutil.CONN_LISTEN] == []
