"""Training jobs: recorded in the registry, then started on SageMaker; read, listed, stopped.
Their end arrives as an event (handlers.events)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from handlers.shared import aws, registry_table
from handlers.shared.errors import (
    aws_error_code,
    aws_error_message,
    bad_request,
    conflict,
    from_control_plane,
    not_found,
)
from handlers.training_jobs.job_request import create_request
from handlers.training_jobs.schemas import TrainingJobCreate, TrainingJobOut, TrainingJobPage
from maas_contract import names
from maas_contract.events import TRAINING_JOB_TERMINAL
from maas_contract.settings import HandlerSettings


def out(item: dict[str, Any]) -> TrainingJobOut:
    return TrainingJobOut.model_validate(
        {k: v for k, v in item.items() if k in TrainingJobOut.model_fields}
    )


def _require(job_id: str) -> dict[str, Any]:
    job = registry_table.get_job(job_id)
    if job is None:
        raise not_found(f"training job {job_id} does not exist")
    return job


def _check_threshold_metric(spec: TrainingJobCreate, sm: HandlerSettings) -> None:
    if spec.metric_threshold is None:
        return
    known = {d["Name"] for d in sm.metric_definitions}
    if spec.metric_threshold.metric not in known:
        raise bad_request(f"metric {spec.metric_threshold.metric} is not one of {sorted(known)}")


def start(spec: TrainingJobCreate) -> TrainingJobOut:
    """Records the job, then starts it; a refused start is recorded with SageMaker's reason."""
    sm = HandlerSettings.from_env()
    _check_threshold_metric(spec, sm)
    instance_type = spec.instance_type or sm.training_instance_type
    try:
        name = names.new_training_job_name(sm.resource_prefix, spec.model, datetime.now(UTC))
    except ValueError as exc:
        raise bad_request(str(exc)) from exc
    request = create_request(name, spec, instance_type, sm)
    now = registry_table.now_iso()
    job = {
        "id": name,
        "model": spec.model,
        "recipe": spec.recipe,
        "status": "InProgress",
        "instance_type": instance_type,
        "instance_count": spec.instance_count,
        "spot": spec.spot,
        "auto_deploy": spec.auto_deploy,
        "created_at": now,
        "updated_at": now,
        **spec.model_dump(
            mode="json", include={"metric_threshold", "input_schema", "hyperparameters"}
        ),
        # Only what the caller set: a default (the instance type) is the deployment's to pick
        # for the version's recipe when it starts, as for a deployment asked for directly.
        "deployment": (
            None
            if spec.deployment is None
            else spec.deployment.model_dump(mode="json", exclude_unset=True)
        ),
    }
    registry_table.put_job(job)
    try:
        aws.sagemaker().create_training_job(**request)
    except ClientError as exc:
        error = from_control_plane(exc)
        registry_table.update(
            registry_table.job_key(name), {"status": "Failed", "failure_reason": error.message}
        )
        raise error from exc
    return out(job)


def get(job_id: str) -> TrainingJobOut:
    """The job as recorded; while it runs, with SageMaker's secondary status and metrics."""
    job = _require(job_id)
    if job["status"] not in TRAINING_JOB_TERMINAL:
        try:
            live = aws.sagemaker().describe_training_job(TrainingJobName=job_id)
        except ClientError as exc:
            raise from_control_plane(exc) from exc
        job["secondary_status"] = live.get("SecondaryStatus")
        job["metrics"] = {
            m["MetricName"]: m["Value"] for m in live.get("FinalMetricDataList") or []
        } or job.get("metrics", {})
    return out(job)


def list_jobs(limit: int, token: str | None) -> TrainingJobPage:
    items, next_token = registry_table.list_jobs(limit, token)
    return TrainingJobPage(items=[out(item) for item in items], next_token=next_token)


def stop(job_id: str) -> TrainingJobOut:
    job = _require(job_id)
    if job["status"] in TRAINING_JOB_TERMINAL:
        raise conflict(f"training job {job_id} has already ended ({job['status']})")
    try:
        aws.sagemaker().stop_training_job(TrainingJobName=job_id)
    except ClientError as exc:
        if aws_error_code(exc) == "ValidationException":
            # The job has ended and its end is not recorded yet: SageMaker no longer stops it.
            # That is the job's state, not the request's fault.
            ended = f"training job {job_id} has already ended: {aws_error_message(exc)}"
            raise conflict(ended) from exc
        raise from_control_plane(exc) from exc
    stopped = registry_table.update(
        registry_table.job_key(job_id),
        {"secondary_status": "Stopping", "updated_at": registry_table.now_iso()},
    )
    return out(stopped)
