"""Registry routes: list and read models and versions, register a version."""

from __future__ import annotations

import time
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.request import Request

from handlers.registry import service
from handlers.registry.schemas import (
    ArtifactUpload,
    ModelOut,
    ModelPage,
    VersionCreate,
    VersionOut,
    VersionPage,
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
from handlers.shared.schemas import Limit, ModelNamePath, Token
from maas_contract.names import VERSION_MAX

router = Router()
TAGS = ["registry"]
VersionPath = Annotated[int, Path(ge=1, le=VERSION_MAX, description="version number")]
# What a model's deletion leaves itself to answer in, of the function's 28 s.
ANSWER_RESERVE_S = 5.0


@router.get("/v1/models", tags=TAGS, security=INVOKE, summary="List models")
def list_models(limit: Limit = 50, next_token: Token = None) -> ModelPage:
    return service.list_models(limit, next_token)


@router.get("/v1/models/<model>", tags=TAGS, security=INVOKE, summary="Read a model")
def get_model(model: ModelNamePath) -> ModelOut:
    return service.get_model(model)


@router.get(
    "/v1/models/<model>/versions",
    tags=TAGS,
    security=INVOKE,
    summary="List a model's versions, newest first",
)
def list_versions(model: ModelNamePath, limit: Limit = 50, next_token: Token = None) -> VersionPage:
    return service.list_versions(model, limit, next_token)


@router.post(
    "/v1/models/<model>/versions",
    tags=TAGS,
    security=ADMIN,
    status_code=201,
    summary="Register a version (needs an Idempotency-Key header)",
)
def register_version(model: ModelNamePath, body: VersionCreate, request: Request) -> VersionOut:
    payload = {"model": model, "spec": body.model_dump(mode="json", exclude_none=True)}
    return idempotency.run(
        "register-version",
        header(request.resolved_event.raw_event, idempotency.HEADER),
        payload,
        lambda: service.register_version(model, body),
        VersionOut,
        router.lambda_context,
    )


@router.post(
    "/v1/models/<model>/uploads",
    tags=TAGS,
    security=ADMIN,
    status_code=201,
    summary="Get presigned URLs to upload a model's artifact and signature",
    description=(
        "PUT model.tar.gz to `upload_url` (and its signature.json to `signature_upload_url`)"
        " before the URLs expire, then register `artifact_uri`: no AWS credentials needed."
        " Uploads never registered expire after a week."
    ),
)
def create_upload(model: ModelNamePath) -> ArtifactUpload:
    return service.upload(model)


@router.delete(
    "/v1/models/<model>/versions/<version>",
    tags=TAGS,
    security=ADMIN,
    status_code=204,
    summary="Delete a version that is not live, kept for rollback or being deployed",
    description=(
        "204 whether this request or an earlier one deleted it (a repeat is not an error); 404"
        " only when the model is not registered; 409 while the version is live, is the one"
        " a rollback would redeploy, or is being deployed. Its number is never reused, and its"
        " pinned artifact stays (content-addressed: other versions may share it)."
    ),
)
def delete_version(model: ModelNamePath, version: VersionPath) -> None:
    service.delete_version(model, version)


@router.delete(
    "/v1/models/<model>",
    tags=TAGS,
    security=ADMIN,
    status_code=204,
    summary="Delete a model with nothing on SageMaker, and its versions",
    description=(
        "204 whether this request or an earlier one deleted it. 409 while a version is live or"
        " being deployed, or while SageMaker models and endpoint configs of its deployments"
        " remain: DELETE /v1/models/{model}/endpoint first. Pinned artifacts stay."
    ),
)
def delete_model(model: ModelNamePath) -> None:
    remaining_s = router.lambda_context.get_remaining_time_in_millis() / 1000
    service.delete_model(model, deadline=time.monotonic() + remaining_s - ANSWER_RESERVE_S)


app = resolver(router)
warm = warm_before_snapshot(["dynamodb"], app)


@api_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
