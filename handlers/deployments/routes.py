"""Deployment routes: roll a version onto the model's endpoint, read one, roll back."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.request import Request

from handlers.deployments import service
from handlers.deployments.schemas import DeploymentCreate, DeploymentOut, DeploymentSpec
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
    spec = DeploymentSpec.model_validate(body.model_dump(exclude={"version"}))
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


app = resolver(router)
warm = warm_before_snapshot(["dynamodb", "sagemaker", "cloudwatch", "application-autoscaling"], app)


@api_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
