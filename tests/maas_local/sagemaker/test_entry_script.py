"""A training job runs the user's own entry point, as the AWS PyTorch training container does.

- `AlgorithmSpecification.ContainerEntrypoint` / `ContainerArguments` replace the image's entry
  point: that command runs.
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_AlgorithmSpecification.html
- Otherwise the training toolkit unpacks `sagemaker_submit_directory` (an S3 URI, or a path in
  an input channel) and runs `sagemaker_program` from it.
  https://github.com/aws/sagemaker-training-toolkit (environment: module_dir, user_entry_point)
- With neither, the container has nothing to run and the job fails with an AlgorithmError; the
  emulator never runs code of its own in its place. CreateTrainingJob itself accepts the job:
  hyperparameters are opaque strings to the service.
"""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from tests.maas_local.sagemaker.emulator_helpers import (
    BUCKET,
    IMAGE,
    ROLE,
    blobs,
    put_npz,
    unique,
    wait_for,
)

pytestmark = pytest.mark.slow

# Writes into --model-dir (the entrypoint test passes it) or SM_MODEL_DIR (the toolkit sets it).
ENTRY = b"""import os, pathlib, sys
args = sys.argv
given = args[args.index("--model-dir") + 1] if "--model-dir" in args else None
out = pathlib.Path(given or os.environ["SM_MODEL_DIR"])
(out / "marker.txt").write_text(" ".join(sys.argv[1:]))
print("user entry script ran", sys.argv[1:])
"""


def code_channel(s3, files: dict[str, bytes]) -> dict:
    """An input channel named `code` holding `files`."""
    prefix = f"channels/{unique('code')}"
    for name, body in files.items():
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{name}", Body=body)
    return {
        "ChannelName": "code",
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{prefix}"}
        },
    }


def sourcedir(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def run_job(sm, s3, *, algorithm: dict | None = None, hyperparameters=None, channels=()):
    name = unique("entry")
    x, y = blobs()
    train = {
        "ChannelName": "train",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": put_npz(s3, f"data/{name}/train/d.npz", x, y),
            }
        },
    }
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            **(algorithm or {}),
        },
        RoleArn=ROLE,
        HyperParameters=hyperparameters or {},
        InputDataConfig=[train, *channels],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )

    def finished():
        job = sm.describe_training_job(TrainingJobName=name)
        return job if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped") else None

    return wait_for(finished, 60, every=0.2)


def model_files(s3, job: dict) -> dict[str, bytes]:
    key = job["ModelArtifacts"]["S3ModelArtifacts"].removeprefix(f"s3://{BUCKET}/")
    archive = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_container_entrypoint_runs_that_command(sm, s3, emulator):
    job = run_job(
        sm,
        s3,
        algorithm={
            "ContainerEntrypoint": ["python3", "/opt/ml/input/data/code/entry.py"],
            "ContainerArguments": ["--model-dir", "/opt/ml/model", "--flag", "x"],
        },
        channels=[code_channel(s3, {"entry.py": ENTRY})],
    )

    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert model_files(s3, job)["marker.txt"].decode().endswith("--flag x")
    log = emulator.control.training.log_path(job["TrainingJobName"]).read_text()
    assert "user entry script ran" in log
    assert "hyperparameters {" not in log  # the emulator's stub train.py did not run


def test_sagemaker_program_runs_from_the_submit_directory_in_an_input_channel(sm, s3, emulator):
    """handlers/training_jobs/job_request.py's way: the sourcedir ships as the `code` channel."""
    archive = sourcedir({"entry.py": ENTRY})
    job = run_job(
        sm,
        s3,
        hyperparameters={
            "sagemaker_program": json.dumps("entry.py"),
            "sagemaker_submit_directory": json.dumps("/opt/ml/input/data/code/sourcedir.tar.gz"),
            "flag": json.dumps("y"),
        },
        channels=[code_channel(s3, {"sourcedir.tar.gz": archive})],
    )

    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert model_files(s3, job)["marker.txt"] == b"--flag y"
    log = emulator.control.training.log_path(job["TrainingJobName"]).read_text()
    assert "code from /opt/ml/input/data/code/sourcedir.tar.gz" in log


def test_job_without_an_entry_point_fails_and_runs_nothing(sm, s3, emulator):
    job = run_job(sm, s3, hyperparameters={"epochs": "1"})

    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("AlgorithmError: No entry point")
    assert "ContainerEntrypoint" in job["FailureReason"]
    log = emulator.control.training.log_path(job["TrainingJobName"]).read_text()
    assert "hyperparameters {" not in log and "running" not in log


def test_sagemaker_program_without_its_code_fails(sm, s3, emulator):
    job = run_job(sm, s3, hyperparameters={"sagemaker_program": json.dumps("train.py")})

    assert job["TrainingJobStatus"] == "Failed"
    assert "sagemaker_program 'train.py' not found" in job["FailureReason"]
    log = emulator.control.training.log_path(job["TrainingJobName"]).read_text()
    assert "hyperparameters {" not in log
