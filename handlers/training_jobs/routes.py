"""Training-job routes (all admin): start, list, read, stop."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.request import Request

from handlers.shared import idempotency
from handlers.shared.resolver import ADMIN, api_entry, header, resolver, warm_before_snapshot
from handlers.training_jobs import service
from handlers.training_jobs.schemas import TrainingJobCreate, TrainingJobOut, TrainingJobPage
from maas_contract.names import SAGEMAKER_NAME_PATTERN

router = Router()
TAGS = ["training_jobs"]
JobId = Annotated[str, Path(pattern=SAGEMAKER_NAME_PATTERN, description="job id")]


@router.post(
    "/v1/training-jobs",
    tags=TAGS,
    security=ADMIN,
    status_code=201,
    summary="Start a training job on a GPU instance (needs an Idempotency-Key header)",
)
def create_training_job(body: TrainingJobCreate, request: Request) -> TrainingJobOut:
    return idempotency.run(
        "start-training-job",
        header(request.resolved_event.raw_event, idempotency.HEADER),
        {"spec": body.model_dump(mode="json")},
        lambda: service.start(body),
        TrainingJobOut,
        router.lambda_context,
    )


@router.get("/v1/training-jobs", tags=TAGS, security=ADMIN, summary="List jobs, newest first")
def list_training_jobs(
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    next_token: Annotated[str | None, Query(max_length=2048)] = None,
) -> TrainingJobPage:
    return service.list_jobs(limit, next_token)


@router.get(
    "/v1/training-jobs/<job_id>",
    tags=TAGS,
    security=ADMIN,
    summary="Read a job: status, metrics and SageMaker's failure reason",
)
def get_training_job(job_id: JobId) -> TrainingJobOut:
    return service.get(job_id)


@router.delete(
    "/v1/training-jobs/<job_id>",
    tags=TAGS,
    security=ADMIN,
    status_code=202,
    summary="Stop a running job",
    description="Stops the job (SageMaker's StopTrainingJob). The job keeps its record: GET"
    " reads it, Stopping and then Stopped. A job that has already ended is refused (409).",
)
def stop_training_job(job_id: JobId) -> TrainingJobOut:
    return service.stop(job_id)


app = resolver(router)
warm = warm_before_snapshot(["dynamodb", "sagemaker"], app)


@api_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
