"""Deployment routes: roll a version onto the model's endpoint, read one, roll back."""

from __future__ import annotations

import time
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.request import Request

from handlers.deployments import removal, service
from handlers.deployments.schemas import (
    DeploymentCreate,
    DeploymentOut,
    DeploymentSpec,
    EndpointRemovalOut,
)
from handlers.shared import idempotency
from handlers.shared.resolver import (
    ADMIN,
    INVOKE,
    api_entry,
    header,
    resolver,
    warm_before_snapshot,
)
from handlers.shared.schemas import ModelNamePath

router = Router()
TAGS = ["deployments"]
DeploymentId = Annotated[str, Path(pattern=r"^[a-z0-9-]{1,40}$", description="deployment id")]
# What an endpoint's deletion leaves itself to answer in, of the function's 20 s.
ANSWER_RESERVE_S = 5.0


@router.post(
    "/v1/models/<model>/deployments",
    tags=TAGS,
    security=ADMIN,
    status_code=202,
    summary="Deploy a version: blue/green canary with alarm rollback (Idempotency-Key)",
)
def create_deployment(
    model: ModelNamePath, body: DeploymentCreate, request: Request
) -> DeploymentOut:
    # Only what the caller set: a text-generation version fills an unnamed instance type.
    spec = DeploymentSpec.model_validate(body.model_dump(exclude={"version"}, exclude_unset=True))
    return idempotency.run(
        "start-deployment",
        header(request.resolved_event.raw_event, idempotency.HEADER),
        {"model": model, "spec": body.model_dump(mode="json")},
        lambda: service.start(model, body.version, spec),
        DeploymentOut,
        router.lambda_context,
    )


@router.get(
    "/v1/models/<model>/deployments/<deployment_id>",
    tags=TAGS,
    security=INVOKE,
    summary="Read a deployment",
)
def get_deployment(model: ModelNamePath, deployment_id: DeploymentId) -> DeploymentOut:
    return service.get(model, deployment_id)


@router.post(
    "/v1/models/<model>/rollback",
    tags=TAGS,
    security=ADMIN,
    status_code=202,
    summary="Redeploy the version that was live before the current one (Idempotency-Key)",
)
def rollback(model: ModelNamePath, request: Request) -> DeploymentOut:
    # A retried rollback must not flip the live version back: the key replays the first answer.
    return idempotency.run(
        "rollback",
        header(request.resolved_event.raw_event, idempotency.HEADER),
        {"model": model},
        lambda: service.rollback(model),
        DeploymentOut,
        router.lambda_context,
    )


@router.delete(
    "/v1/models/<model>/endpoint",
    tags=TAGS,
    security=ADMIN,
    status_code=202,
    summary="Delete the model's endpoint, and the SageMaker models and configs it ran",
    description=(
        "SageMaker deletes an endpoint asynchronously. 202 on every call, first or repeated:"
        " `status` is Deleting until SageMaker has no endpoint and every model and endpoint"
        " config of the model's deployments is gone, then Deleted. Clears the live and"
        " previous versions. 404 when the model is not registered; 409 while a deployment is"
        " in progress, while SageMaker is creating or updating the endpoint, or for an"
        " endpoint declared in the stage's config."
    ),
)
def delete_endpoint(model: ModelNamePath) -> EndpointRemovalOut:
    remaining_s = router.lambda_context.get_remaining_time_in_millis() / 1000
    return removal.undeploy(model, deadline=time.monotonic() + remaining_s - ANSWER_RESERVE_S)


app = resolver(router)
warm = warm_before_snapshot(["dynamodb", "sagemaker", "cloudwatch", "application-autoscaling"], app)


@api_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
