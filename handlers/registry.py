"""Registry routes: list and read models and versions, register a version."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.request import Request

from handlers import idempotent, store, versions
from handlers.config import MODEL_NAME_PATTERN, SageMakerSettings, Settings
from handlers.errors import bad_request
from handlers.schemas import ModelOut, ModelPage, VersionCreate, VersionOut, VersionPage
from handlers.web import ADMIN, INVOKE, entry, header

router = Router()
TAGS = ["registry"]
ModelName = Annotated[str, Path(pattern=MODEL_NAME_PATTERN, description="model name")]
Limit = Annotated[int, Query(ge=1, le=100, description="page size")]
Token = Annotated[str | None, Query(max_length=2048, description="next_token of the last page")]


@router.get("/v1/models", tags=TAGS, security=INVOKE, summary="List models")
def list_models(limit: Limit = 50, next_token: Token = None) -> ModelPage:
    items, token = store.query_page(
        key_condition="gsi1pk = :g",
        values={":g": "MODEL"},
        index="gsi1",
        limit=limit,
        token=next_token,
        expected={"gsi1pk": "MODEL"},
    )
    return ModelPage(items=[ModelOut(**item) for item in items], next_token=token)


@router.get("/v1/models/<model>", tags=TAGS, security=INVOKE, summary="Read a model")
def get_model(model: ModelName) -> ModelOut:
    return ModelOut(**versions.require_model(model))


@router.get(
    "/v1/models/<model>/versions",
    tags=TAGS,
    security=INVOKE,
    summary="List a model's versions, newest first",
)
def list_versions(model: ModelName, limit: Limit = 50, next_token: Token = None) -> VersionPage:
    versions.require_model(model)
    items, token = store.query_page(
        key_condition="pk = :pk AND begins_with(sk, :v)",
        values={":pk": f"MODEL#{model}", ":v": "VERSION#"},
        limit=limit,
        token=next_token,
        expected={"pk": f"MODEL#{model}"},
        newest_first=True,
    )
    return VersionPage(items=[VersionOut(**item) for item in items], next_token=token)


@idempotent.operation("register-version")
def _register(payload: dict[str, Any]) -> dict[str, Any]:
    model, spec = payload["model"], dict(payload["spec"])
    bucket = SageMakerSettings.from_env().artifact_bucket
    if not spec["artifact_uri"].startswith(f"s3://{bucket}/"):
        raise bad_request(f"artifact_uri must be in s3://{bucket}/")
    number = spec.pop("version", None)
    item = versions.register(model, Settings.from_env().endpoint_name(model), spec, number)
    return {"status": 201, "body": VersionOut(**item).model_dump(mode="json")}


@router.post(
    "/v1/models/<model>/versions",
    tags=TAGS,
    security=ADMIN,
    status_code=201,
    summary="Register a version (needs an Idempotency-Key header)",
)
def register_version(model: ModelName, body: VersionCreate, request: Request) -> VersionOut:
    key = header(request.resolved_event.raw_event, idempotent.HEADER)
    payload = {"model": model, "spec": body.model_dump(mode="json", exclude_none=True)}
    result = idempotent.run("register-version", key, payload, router.lambda_context)
    return VersionOut(**result["body"])


app, handler = entry(router)
