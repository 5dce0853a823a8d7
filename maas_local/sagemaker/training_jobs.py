"""Training jobs as the control plane sees them: records, status transitions, events."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maas_contract.events import TRAINING_JOB_TERMINAL
from maas_local.sagemaker import s3io
from maas_local.sagemaker.protocol import AwsError, now, service_model, validation
from maas_local.sagemaker.training_runner import TrainingRun


@dataclass
class Job:
    record: dict[str, Any]
    tags: list[dict[str, str]]
    run: TrainingRun | None = None
    thread: threading.Thread | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class TrainingJobs:
    def __init__(self, ctx: Any, source_dir: Path) -> None:
        self.ctx = ctx  # account, region, root, emit(event)
        self.source_dir = source_dir
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._closing = False
        shape = service_model("sagemaker").operation_model("DescribeTrainingJob").output_shape
        self._describe_fields = set(shape.members)

    def arn(self, name: str) -> str:
        return f"arn:aws:sagemaker:{self.ctx.region}:{self.ctx.account}:training-job/{name.lower()}"

    def log_path(self, name: str) -> Path:
        return self.ctx.root / "logs" / "training-jobs" / f"{name}.log"

    # -- operations ------------------------------------------------------------------------
    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["TrainingJobName"]
        for definition in params["AlgorithmSpecification"].get("MetricDefinitions", []):
            try:
                re.compile(definition["Regex"])
            except re.error as exc:
                raise validation(f"MetricDefinitions {definition['Name']}: {exc}") from exc
        s3io.split(params["OutputDataConfig"]["S3OutputPath"])
        created = now()
        record = {k: v for k, v in params.items() if k in self._describe_fields}
        record.update(
            TrainingJobArn=self.arn(name),
            TrainingJobStatus="InProgress",
            SecondaryStatus="Starting",
            CreationTime=created,
            LastModifiedTime=created,
            SecondaryStatusTransitions=[],
            ModelArtifacts={
                "S3ModelArtifacts": s3io.join(
                    params["OutputDataConfig"]["S3OutputPath"], name, "output", "model.tar.gz"
                )
            },
        )
        job = Job(record=record, tags=list(params.get("Tags", [])))
        with self._lock:
            if name in self.jobs:
                raise AwsError("ResourceInUse", f"Training job names must be unique: {name}")
            self.jobs[name] = job
        self._start(job, params, "Preparing the instances for training")
        return {"TrainingJobArn": record["TrainingJobArn"]}

    def resume(self, job: Job) -> None:
        """Starts an interrupted managed spot job again, under its name and record, as
        SageMaker does after a spot interruption: Starting, Downloading, Training again, with
        the checkpoints in CheckpointConfig.S3Uri copied back into its checkpoint folder first
        (TrainingRun._run). Its record holds every request member the run reads."""
        self._start(job, dict(job.record), "Restarting the training job after its interruption")

    def describe(self, name: str) -> dict[str, Any]:
        job = self._get(name)
        with job.lock:
            record = dict(job.record)
            if job.run and job.run.metrics:
                record["FinalMetricDataList"] = [
                    {"MetricName": metric, "Value": value, "Timestamp": stamp}
                    for metric, (value, stamp) in sorted(job.run.metrics.items())
                ]
        return record

    def summaries(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """ListTrainingJobs rows that pass the request's filters, in no particular order."""
        rows = []
        for name in list(self.jobs):
            record = self.describe(name)
            if params.get("NameContains", "") not in name:
                continue
            if params.get("StatusEquals") not in (None, record["TrainingJobStatus"]):
                continue
            keys = ("TrainingJobName", "TrainingJobArn", "CreationTime", "TrainingEndTime")
            summary = {k: record[k] for k in keys if k in record}
            summary.update(
                LastModifiedTime=record["LastModifiedTime"],
                TrainingJobStatus=record["TrainingJobStatus"],
                SecondaryStatus=record["SecondaryStatus"],
            )
            rows.append(summary)
        return rows

    def stop(self, name: str) -> None:
        job = self._get(name)
        if job.record["TrainingJobStatus"] != "InProgress":
            raise validation(f"The training job {name} is not in progress; it cannot be stopped")
        self._transition(job, "Stopping", "Stopping", "Stopping the training job")
        assert job.run is not None
        job.run.stop()

    def shutdown(self) -> None:
        """The emulator is going away and its jobs' processes with it. Their records stay as
        they were saved, InProgress, for the next start to reconcile (saved_state): a spot job
        is interrupted, not ended, and no job ends twice."""
        self._closing = True
        for job in list(self.jobs.values()):
            if job.run is not None:
                job.run.kill_now()
        for job in list(self.jobs.values()):
            if job.thread is not None:
                job.thread.join(timeout=15)

    # -- lifecycle -------------------------------------------------------------------------
    def _start(self, job: Job, request: dict[str, Any], message: str) -> None:
        name = request["TrainingJobName"]
        job.run = TrainingRun(
            name=name,
            request=request,
            job_dir=self.ctx.root / "jobs" / name,
            log_path=self.log_path(name),
            source_dir=self.source_dir,
            on_status=lambda secondary, message: self._transition(job, None, secondary, message),
            deadline=spot_deadline(job.record),
        )
        self._transition(job, "InProgress", "Starting", message)
        job.thread = threading.Thread(target=self._execute, args=(job,), name=f"train-{name}")
        job.thread.start()

    def _execute(self, job: Job) -> None:
        assert job.run is not None
        with job.lock:  # a resumed job keeps the start of its first attempt
            started = job.record.setdefault("TrainingStartTime", now())
        outcome = job.run.run()
        if self._closing:
            return
        ended = now()
        with job.lock:
            seconds = max(1, int((ended - started).total_seconds()))
            job.record.update(
                TrainingEndTime=ended, TrainingTimeInSeconds=seconds, BillableTimeInSeconds=seconds
            )
            if outcome.failure_reason:
                job.record["FailureReason"] = outcome.failure_reason
        self._transition(job, outcome.status, outcome.secondary, _MESSAGES[outcome.secondary])

    def _transition(self, job: Job, status: str | None, secondary: str, message: str) -> None:
        """Moves the job on, closing the previous secondary status, and emits the event."""
        stamp = now()
        with job.lock:
            if job.record["TrainingJobStatus"] in TRAINING_JOB_TERMINAL:
                return
            if status == "InProgress" and job.record["TrainingJobStatus"] == "Stopping":
                return
            transitions = job.record["SecondaryStatusTransitions"]
            if transitions and transitions[-1]["Status"] == secondary:
                return
            if job.record["TrainingJobStatus"] == "Stopping" and secondary not in _FINAL_SECONDARY:
                return
            if transitions:
                transitions[-1]["EndTime"] = stamp
            transitions.append({"Status": secondary, "StartTime": stamp, "StatusMessage": message})
            if status:
                job.record["TrainingJobStatus"] = status
            job.record.update(SecondaryStatus=secondary, LastModifiedTime=stamp)
            if job.record["TrainingJobStatus"] in TRAINING_JOB_TERMINAL:
                transitions[-1]["EndTime"] = stamp
        if job.run is not None:
            job.run.note(f"status {job.record['TrainingJobStatus']} / {secondary}: {message}")
        self.ctx.emit_training(self.describe(job.record["TrainingJobName"]), job.tags)

    def _get(self, name: str) -> Job:
        job = self.jobs.get(name)
        if job is None:
            # SageMaker answers ValidationException here, not the ResourceNotFound its model
            # declares (https://github.com/aws/aws-sdk/issues/165).
            raise validation("Requested resource not found.")
        return job


def spot_deadline(record: dict[str, Any]) -> float | None:
    """When a managed spot job must end (epoch seconds), over all its attempts.

    MaxWaitTimeInSeconds is "the amount of time spent waiting for Spot capacity plus the amount
    of time the job can run" (API_StoppingCondition.html), so it counts from the job's creation
    and goes on counting while the job is interrupted."""
    wait = (record.get("StoppingCondition") or {}).get("MaxWaitTimeInSeconds")
    if not record.get("EnableManagedSpotTraining") or not wait:
        return None
    return float(record["CreationTime"].timestamp() + wait)


_MESSAGES = {
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job stopped: MaxRuntimeInSeconds exceeded",
    "MaxWaitTimeExceeded": "Training job stopped: MaxWaitTimeInSeconds exceeded",
}
_FINAL_SECONDARY = set(_MESSAGES) | {"Stopping"}
