"""Training jobs run the job's script as SageMaker would, driven by a plain boto3 client."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from botocore.exceptions import ClientError

from tests.maas_local.sagemaker.emulator_helpers import (
    BUCKET,
    IMAGE,
    METRICS,
    ROLE,
    STUB_CODE,
    blobs,
    put_npz,
    put_sourcedir,
    unique,
    wait_for,
)

pytestmark = pytest.mark.slow


def start_job(
    sm, s3, name: str, *, checkpoint: str | None = None, role: str = ROLE, **hyperparameters: str
):
    x, y = blobs()
    train = put_npz(s3, f"data/{name}/train/part-0.npz", x, y)
    request = dict(
        TrainingJobName=name,
        AlgorithmSpecification={
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": METRICS,
        },
        RoleArn=role,
        HyperParameters={**put_sourcedir(s3), **hyperparameters},
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": train}},
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
        Tags=[{"Key": "maas:model", "Value": "stub"}],
    )
    if checkpoint:
        request["CheckpointConfig"] = {"S3Uri": checkpoint}
    return sm.create_training_job(**request)


def wait_job(sm, name: str, timeout: float = 60.0) -> dict:
    def finished():
        job = sm.describe_training_job(TrainingJobName=name)
        return job if job["TrainingJobStatus"] in ("Completed", "Failed", "Stopped") else None

    return wait_for(finished, timeout, every=0.2)


def test_training_job_completes_with_metrics_and_uploads_model(sm, s3, sink, emulator):
    name = unique("train-ok")
    arn = start_job(sm, s3, name, epochs="3")["TrainingJobArn"]
    assert arn.endswith(f":training-job/{name}")

    job = wait_job(sm, name)

    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["SecondaryStatus"] == "Completed"
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert artifact == f"s3://{BUCKET}/output/{name}/output/model.tar.gz"
    metrics = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert metrics["validation:accuracy"] == pytest.approx(1.0)
    assert metrics["train:loss"] == pytest.approx(1 / 3, abs=1e-3)  # the last epoch's value
    steps = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert steps == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    archive = s3.get_object(Bucket=BUCKET, Key=f"output/{name}/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert {"centroids.npy", "labels.npy", "code/inference.py"} <= set(tar.getnames())
    s3.head_object(Bucket=BUCKET, Key=f"output/{name}/output/output.tar.gz")
    log = emulator.control.training.log_path(name).read_text()
    assert "epoch=3 train_loss=" in log and '"epochs": 3' in log


def test_training_job_state_changes_arrive_as_eventbridge_events(sm, s3, sink):
    name = unique("train-events")
    start_job(sm, s3, name, epochs="1")
    wait_job(sm, name)

    events = wait_for(
        lambda: [e for e in sink.of(name) if e["detail"]["TrainingJobStatus"] == "Completed"]
    )
    final = events[-1]
    assert final["detail-type"] == "SageMaker Training Job State Change"
    assert final["source"] == "aws.sagemaker"
    assert final["account"] == "123456789012" and final["region"] == "us-east-1"
    detail = final["detail"]
    assert detail["TrainingJobName"] == name
    # AWS's sample carries neither: DescribeTrainingJob has them (test_event_shapes.py).
    assert "ModelArtifacts" not in detail and "FinalMetricDataList" not in detail
    assert detail["CreationTime"].isdigit()  # epoch milliseconds as a string, as the sample
    assert detail["Tags"] == {"maas:model": "stub"}
    statuses = [e["detail"]["TrainingJobStatus"] for e in sink.of(name)]
    assert statuses[0] == "InProgress" and statuses.count("Completed") == 1


def test_failing_script_ends_failed_with_its_last_error_line(sm, s3, sink):
    name = unique("train-fail")
    start_job(sm, s3, name, epochs="2", **{"fail-with": "labels out of range: 11"})

    job = wait_job(sm, name)

    assert job["TrainingJobStatus"] == "Failed"
    assert "ValueError: labels out of range: 11" in job["FailureReason"]
    event = wait_for(
        lambda: [e for e in sink.of(name) if e["detail"]["TrainingJobStatus"] == "Failed"]
    )[0]
    assert "labels out of range: 11" in event["detail"]["FailureReason"]


def test_stop_training_job_kills_the_script_and_ends_stopped(sm, s3):
    name = unique("train-stop")
    start_job(sm, s3, name, epochs="100", sleep="0.5")
    describe = sm.describe_training_job
    wait_for(lambda: describe(TrainingJobName=name)["SecondaryStatus"] == "Training")

    sm.stop_training_job(TrainingJobName=name)
    job = wait_job(sm, name, timeout=30)

    assert job["TrainingJobStatus"] == "Stopped"
    assert job["SecondaryStatus"] == "Stopped"
    assert "Stopping" in [t["Status"] for t in job["SecondaryStatusTransitions"]]


def test_retried_job_resumes_from_checkpoints_synced_to_s3(sm, s3, emulator):
    checkpoint = f"s3://{BUCKET}/checkpoints/{unique('ckpt')}"
    first, second = unique("train-ckpt-a"), unique("train-ckpt-b")
    start_job(sm, s3, first, checkpoint=checkpoint, epochs="2")
    assert wait_job(sm, first)["TrainingJobStatus"] == "Completed"

    start_job(sm, s3, second, checkpoint=checkpoint, epochs="3")
    assert wait_job(sm, second)["TrainingJobStatus"] == "Completed"

    log = emulator.control.training.log_path(second).read_text()
    assert "resumed from epoch 2" in log
    assert "epoch=3 " in log and "epoch=1 " not in log


def test_job_runs_the_submitted_sourcedir_archive(sm, s3, emulator):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(STUB_CODE / "train.py", arcname="entry.py")
        tar.add(STUB_CODE / "serve", arcname="serve")
    key = f"code/{unique('src')}/sourcedir.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=buffer.getvalue())
    name = unique("train-src")
    start_job(
        sm,
        s3,
        name,
        sagemaker_program='"entry.py"',
        sagemaker_submit_directory=json.dumps(f"s3://{BUCKET}/{key}"),
        epochs="1",
    )

    assert wait_job(sm, name)["TrainingJobStatus"] == "Completed"
    log = emulator.control.training.log_path(name).read_text()
    assert f"code from s3://{BUCKET}/{key}" in log
    assert "sagemaker_" not in log.split("hyperparameters", 1)[1].splitlines()[0]


def test_list_training_jobs_filters_by_status_and_name(sm, s3):
    name = unique("train-list")
    start_job(sm, s3, name, epochs="1")
    wait_job(sm, name)

    listed = sm.list_training_jobs(NameContains=name, StatusEquals="Completed")
    assert [s["TrainingJobName"] for s in listed["TrainingJobSummaries"]] == [name]
    assert (
        sm.list_training_jobs(NameContains=name, StatusEquals="Failed")["TrainingJobSummaries"]
        == []
    )


def test_duplicate_job_name_and_unknown_job_answer_aws_errors(sm, s3):
    name = unique("train-dup")
    start_job(sm, s3, name, epochs="1")
    with pytest.raises(ClientError) as exc:
        start_job(sm, s3, name, epochs="1")
    assert exc.value.response["Error"]["Code"] == "ResourceInUse"
    with pytest.raises(ClientError) as missing:  # ValidationException, as SageMaker answers
        sm.describe_training_job(TrainingJobName=unique("missing"))
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    assert missing.value.response["Error"]["Message"] == "Requested resource not found."
    wait_job(sm, name)


def test_checkpoint_sync_skips_files_renamed_away_mid_sync(s3, tmp_path, monkeypatch):
    """The script's atomic save renames its temp file while a sync is listing the directory."""
    from maas_local.sagemaker import s3io

    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    (ckpt / "a.pt").write_bytes(b"a")
    (ckpt / "b.tmp").write_bytes(b"b")  # listed, then gone before its stat
    (ckpt / "c.tmp").write_bytes(b"c")  # listed and stat'ed, then gone before its upload
    real_upload = s3io.upload_file

    def racing_upload(path, uri, **kwargs):
        if path.name == "a.pt":
            (ckpt / "b.tmp").unlink()
        if path.name == "c.tmp":
            path.unlink()
        real_upload(path, uri, **kwargs)

    monkeypatch.setattr(s3io, "upload_file", racing_upload)
    seen: dict = {}
    uri = f"s3://{BUCKET}/race/checkpoints"
    assert s3io.upload_dir(ckpt, uri, seen, role=ROLE) == 1
    assert set(seen) == {"a.pt"}
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="race/").get("Contents", [])]
    assert keys == ["race/checkpoints/a.pt"]
