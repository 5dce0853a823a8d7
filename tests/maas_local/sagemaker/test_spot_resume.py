"""A managed spot training job that was running when the emulator stopped is started again
when it comes back, as SageMaker restarts a spot job after an interruption; any other running
job ends Failed with the reason (maas_local.sagemaker.saved_state).

- The restarted job keeps its name and TrainingStartTime and stays InProgress, through the
  SecondaryStatus `Interrupted` ("the job stopped because the managed spot training instances
  were interrupted", DescribeTrainingJob,
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html) and
  then Starting, Downloading, Training, the lifecycle of a spot job interrupted once:
  https://docs.aws.amazon.com/sagemaker/latest/dg/model-managed-spot-training-status.html
- "When the job is restarted, SageMaker copies the data from Amazon S3 back into the local
  path": https://docs.aws.amazon.com/sagemaker/latest/dg/model-managed-spot-training.html
- MaxWaitTimeInSeconds is the time spent waiting plus the time run, over all attempts
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StoppingCondition.html): it
  goes on counting from the job's creation, and a job past it ends Stopped /
  MaxWaitTimeExceeded.
"""

from __future__ import annotations

from maas_local.sagemaker.protocol import service_model
from maas_local.sagemaker.saved_state import RESTARTED
from tests.maas_local.sagemaker.emulator_helpers import BUCKET, IMAGE, ROLE, unique, wait_for
from tests.maas_local.sagemaker.test_entry_script import code_channel
from tests.maas_local.sagemaker.test_saved_state import running

# Lists the checkpoints it finds, adds one of its own, then trains "forever".
RESUMABLE = b"""import pathlib, sys, time
checkpoints = pathlib.Path(sys.argv[1])
found = sorted(p.name for p in checkpoints.iterdir())
print("checkpoints at start:", ",".join(found), flush=True)
attempt = sum(name.startswith("attempt-") for name in found) + 1
(checkpoints / f"attempt-{attempt}").write_text("state")
time.sleep(120)
"""


def _start_job(sm, s3, *, spot: bool, wait_s: int = 600) -> str:
    name = unique("spot" if spot else "on-demand")
    prefix = f"checkpoints/{name}"
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/step-1.pt", Body=b"weights")
    spot_settings = {"EnableManagedSpotTraining": True} if spot else {}
    stopping = {"MaxRuntimeInSeconds": wait_s}
    if spot:
        stopping["MaxWaitTimeInSeconds"] = wait_s
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["python3", "/opt/ml/input/data/code/entry.py"],
            "ContainerArguments": ["/opt/ml/checkpoints"],
        },
        RoleArn=ROLE,
        InputDataConfig=[code_channel(s3, {"entry.py": RESUMABLE})],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition=stopping,
        CheckpointConfig={"S3Uri": f"s3://{BUCKET}/{prefix}"},
        **spot_settings,
    )
    return name


def _checkpoints(root, name: str) -> set[str]:
    folder = root / "jobs" / name / "checkpoints"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def _once(sm, name: str, secondary: str) -> dict | None:
    """The job's description, once its SecondaryStatus is `secondary`."""
    described = sm.describe_training_job(TrainingJobName=name)
    return described if described["SecondaryStatus"] == secondary else None


def test_interrupted_is_a_secondary_status_sagemaker_documents():
    statuses = service_model("sagemaker").shape_for("SecondaryStatus").enum
    assert {"Interrupted", "MaxWaitTimeExceeded"} <= set(statuses)


def test_a_spot_job_resumes_from_its_checkpoints_and_an_on_demand_job_fails(s3, sink, tmp_path):
    # given a spot job and an on-demand job training, the spot one past its first checkpoint
    root = tmp_path / "sagemaker"
    root.mkdir()
    with running(root, sink) as (sm, _):
        spot = _start_job(sm, s3, spot=True)
        on_demand = _start_job(sm, s3, spot=False)
        before = wait_for(lambda: _once(sm, spot, "Training"), 60)
        wait_for(lambda: _once(sm, on_demand, "Training"), 60)
        wait_for(lambda: "attempt-1" in _checkpoints(root, spot), 30)

    # when the emulator starts again over the same root
    with running(root, sink) as (sm, _):
        restored = sm.describe_training_job(TrainingJobName=spot)
        resumed = wait_for(lambda: _once(sm, spot, "Training"), 60)
        wait_for(lambda: "attempt-2" in _checkpoints(root, spot), 30)
        failed = sm.describe_training_job(TrainingJobName=on_demand)
        sm.stop_training_job(TrainingJobName=spot)

    # then the spot job runs again under its name, from the checkpoints it had synced to S3
    assert restored["TrainingJobStatus"] == "InProgress"
    assert restored["SecondaryStatus"] in ("Interrupted", "Starting", "Downloading", "Training")
    assert resumed["TrainingStartTime"] == before["TrainingStartTime"]
    assert resumed["TrainingJobArn"] == before["TrainingJobArn"]
    steps = ["Starting", "Downloading", "Training", "Interrupted"]
    steps += ["Starting", "Downloading", "Training"]
    assert [t["Status"] for t in resumed["SecondaryStatusTransitions"]] == steps
    log = (root / "logs" / "training-jobs" / f"{spot}.log").read_text()
    assert "checkpoints at start: step-1.pt\n" in log
    assert "checkpoints at start: attempt-1,step-1.pt\n" in log
    # and the job that was not on spot ends Failed, with the reason
    assert failed["TrainingJobStatus"] == "Failed"
    assert RESTARTED in failed["FailureReason"]
    # and what was announced never ended either job twice, nor the spot job at all
    announced = [
        (e["detail"]["TrainingJobStatus"], e["detail"]["SecondaryStatus"]) for e in sink.of(spot)
    ]
    assert announced[: len(steps)] == [("InProgress", step) for step in steps]
    assert [e["detail"]["TrainingJobStatus"] for e in sink.of(on_demand)][-2:] == [
        "InProgress",
        "Failed",
    ]


def test_a_resumed_spot_job_stops_when_its_wait_time_since_creation_runs_out(s3, sink, tmp_path):
    # given a spot job allowed 6 seconds in all, training
    root = tmp_path / "sagemaker"
    root.mkdir()
    with running(root, sink) as (sm, _):
        name = _start_job(sm, s3, spot=True, wait_s=6)
        wait_for(lambda: _once(sm, name, "Training"), 30)

    # when the emulator starts again, and the job with it
    with running(root, sink) as (sm, _):
        ended = wait_for(lambda: _once(sm, name, "MaxWaitTimeExceeded"), 30)

    # then it stops at 6 seconds from its creation, not 6 seconds from its restart
    assert ended["TrainingJobStatus"] == "Stopped"
    assert "Interrupted" in [t["Status"] for t in ended["SecondaryStatusTransitions"]]
    assert (ended["TrainingEndTime"] - ended["CreationTime"]).total_seconds() < 6 + 3
