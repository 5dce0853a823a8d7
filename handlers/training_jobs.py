"""Training-job routes (all admin): start, list, read, stop."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.request import Request
from botocore.exceptions import ClientError

from handlers import aws, idempotent, store, training
from handlers.errors import conflict, from_control_plane, not_found
from handlers.schemas import TrainingJobCreate, TrainingJobOut, TrainingJobPage
from handlers.web import ADMIN, entry, header

router = Router()
TAGS = ["training_jobs"]
JobId = Annotated[str, Path(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", description="job id")]


def _out(item: dict[str, Any]) -> TrainingJobOut:
    return TrainingJobOut(**{k: v for k, v in item.items() if k in TrainingJobOut.model_fields})


def _require_job(job_id: str) -> dict[str, Any]:
    job = store.get_item(training.job_key(job_id))
    if job is None:
        raise not_found(f"training job {job_id} does not exist")
    return job


@idempotent.operation("start-training-job")
def _start(payload: dict[str, Any]) -> dict[str, Any]:
    return {"status": 201, "body": _out(training.start(payload["spec"])).model_dump(mode="json")}


@router.post(
    "/v1/training-jobs",
    tags=TAGS,
    security=ADMIN,
    status_code=201,
    summary="Start a training job on a GPU instance (needs an Idempotency-Key header)",
)
def create_training_job(body: TrainingJobCreate, request: Request) -> TrainingJobOut:
    key = header(request.resolved_event.raw_event, idempotent.HEADER)
    payload = {"spec": body.model_dump(mode="json")}
    return TrainingJobOut(
        **idempotent.run("start-training-job", key, payload, router.lambda_context)["body"]
    )


@router.get("/v1/training-jobs", tags=TAGS, security=ADMIN, summary="List jobs, newest first")
def list_training_jobs(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    next_token: Annotated[str | None, Query(max_length=2048)] = None,
) -> TrainingJobPage:
    items, token = store.query_page(
        key_condition="gsi1pk = :g",
        values={":g": "JOB"},
        index="gsi1",
        limit=limit,
        token=next_token,
        expected={"gsi1pk": "JOB"},
        newest_first=True,
    )
    return TrainingJobPage(items=[_out(item) for item in items], next_token=token)


@router.get(
    "/v1/training-jobs/<job_id>",
    tags=TAGS,
    security=ADMIN,
    summary="Read a job: status, metrics and SageMaker's failure reason",
)
def get_training_job(job_id: JobId) -> TrainingJobOut:
    job = _require_job(job_id)
    if job["status"] not in training.TERMINAL:
        try:
            live = aws.sagemaker().describe_training_job(TrainingJobName=job_id)
        except ClientError as exc:
            raise from_control_plane(exc) from exc
        job["secondary_status"] = live.get("SecondaryStatus")
        job["metrics"] = {
            m["MetricName"]: m["Value"] for m in live.get("FinalMetricDataList") or []
        } or job.get("metrics", {})
    return _out(job)


@router.delete(
    "/v1/training-jobs/<job_id>",
    tags=TAGS,
    security=ADMIN,
    status_code=202,
    summary="Stop a running job",
)
def stop_training_job(job_id: JobId) -> TrainingJobOut:
    job = _require_job(job_id)
    if job["status"] in training.TERMINAL:
        raise conflict(f"training job {job_id} has already ended ({job['status']})")
    try:
        aws.sagemaker().stop_training_job(TrainingJobName=job_id)
    except ClientError as exc:
        raise from_control_plane(exc) from exc
    job = store.update(
        training.job_key(job_id), {"secondary_status": "Stopping", "updated_at": store.now_iso()}
    )
    return _out(job)


app, handler = entry(router)
