"""Registry routes: list and read models and versions, register a version."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.request import Request

from handlers.registry import service
from handlers.registry.schemas import ModelOut, ModelPage, VersionCreate, VersionOut, VersionPage
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

router = Router()
TAGS = ["registry"]


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


app = resolver(router)
warm = warm_before_snapshot(["dynamodb"], app)


@api_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
