"""Deployment routes: roll a version onto the model's endpoint, read one, roll back."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.request import Request

from handlers import deploy, idempotent, store, versions
from handlers.config import MODEL_NAME_PATTERN
from handlers.errors import conflict, not_found
from handlers.schemas import DeploymentCreate, DeploymentOut
from handlers.web import ADMIN, INVOKE, entry, header

router = Router()
TAGS = ["deployments"]
ModelName = Annotated[str, Path(pattern=MODEL_NAME_PATTERN, description="model name")]
DeploymentId = Annotated[str, Path(pattern=r"^[a-z0-9-]{1,40}$", description="deployment id")]


def _out(item: dict[str, Any]) -> DeploymentOut:
    return DeploymentOut(**{k: v for k, v in item.items() if k in DeploymentOut.model_fields})


@idempotent.operation("start-deployment")
def _start(payload: dict[str, Any]) -> dict[str, Any]:
    spec = dict(payload["spec"])
    version = spec.pop("version")
    item = deploy.start(payload["model"], version, spec)
    return {"status": 202, "body": _out(item).model_dump(mode="json")}


@router.post(
    "/v1/models/<model>/deployments",
    tags=TAGS,
    security=ADMIN,
    status_code=202,
    summary="Deploy a version: blue/green canary with alarm rollback (Idempotency-Key)",
)
def create_deployment(model: ModelName, body: DeploymentCreate, request: Request) -> DeploymentOut:
    key = header(request.resolved_event.raw_event, idempotent.HEADER)
    payload = {"model": model, "spec": body.model_dump(mode="json")}
    return DeploymentOut(
        **idempotent.run("start-deployment", key, payload, router.lambda_context)["body"]
    )


@router.get(
    "/v1/models/<model>/deployments/<deployment_id>",
    tags=TAGS,
    security=INVOKE,
    summary="Read a deployment",
)
def get_deployment(model: ModelName, deployment_id: DeploymentId) -> DeploymentOut:
    item = store.get_item(deploy.deployment_key(model, deployment_id))
    if item is None:
        raise not_found(f"deployment {deployment_id} of model {model} does not exist")
    return _out(item)


@router.post(
    "/v1/models/<model>/rollback",
    tags=TAGS,
    security=ADMIN,
    status_code=202,
    summary="Redeploy the version that was live before the current one",
)
def rollback(model: ModelName) -> DeploymentOut:
    current = versions.require_model(model)
    previous = current.get("previous_version")
    if previous is None:
        raise conflict(f"model {model} has no previous live version to roll back to")
    live_id = current.get("live_deployment")
    live = store.get_item(deploy.deployment_key(model, live_id)) if live_id else None
    if live is None:
        raise conflict(f"model {model} has no live deployment to take settings from")
    item = deploy.start(model, int(previous), dict(live["spec"]), kind="rollback")
    return _out(item)


app, handler = entry(router)
