"""Prediction routes: maas's own predict, and the Open Inference Protocol v2 (KServe,
Triton, MLServer) so that existing OIP clients work unchanged."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.request import Request

from handlers.predict import service
from handlers.predict.schemas import (
    PINNED,
    InferenceRequest,
    InferenceResponse,
    Liveness,
    ModelMetadata,
    ModelReadiness,
    PredictResponse,
    Readiness,
)
from handlers.shared.errors import ApiError
from handlers.shared.resolver import (
    INVOKE,
    api_entry,
    header,
    media_type,
    request_id,
    resolver,
    warm_before_snapshot,
)
from handlers.shared.schemas import ModelNamePath
from maas_contract.names import VERSION_MAX

router = Router()
TAGS = ["predict"]
PREDICT_TYPES = ("application/json", "application/x-npy", "text/plain")
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
VersionNumber = Annotated[int, Path(ge=1, le=VERSION_MAX, description=f"model version. {PINNED}")]
PinnedVersion = Annotated[
    int | None, Query(ge=1, le=VERSION_MAX, description=f"pin a version. {PINNED}")
]


def _raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()


def _refuse_json_too_deep(body: bytes) -> None:
    """The model parses the body itself, and JSON nested past the parser's recursion limit
    would crash it (a 5xx for the caller's mistake). Anything else wrong with it, the model
    explains better."""
    try:
        json.loads(body)
    except RecursionError:
        raise ApiError(400, "ValidationError", "the JSON body is nested too deeply") from None
    except ValueError:
        return


@router.post(
    "/v1/models/<model>/predict",
    tags=TAGS,
    security=INVOKE,
    summary="Predict: the body goes to the model as-is (JSON, .npy or text)",
)
def predict(
    model: ModelNamePath, request: Request, version: PinnedVersion = None
) -> PredictResponse:
    event = request.resolved_event.raw_event
    content_type = media_type(event)
    if content_type not in PREDICT_TYPES:
        raise ApiError(415, "UnsupportedMediaType", f"content type must be one of {PREDICT_TYPES}")
    body = _raw_body(event)
    if content_type == "application/json":
        _refuse_json_too_deep(body)
    return service.predict(
        model,
        body,
        content_type,
        version=version,
        custom_attributes=header(event, CUSTOM_ATTRIBUTES),
        request_id=request_id(event),
    )


@router.get("/v2/health/live", tags=TAGS, security=INVOKE, summary="OIP server liveness")
def live() -> Liveness:
    return Liveness(live=True)


@router.get("/v2/health/ready", tags=TAGS, security=INVOKE, summary="OIP server readiness")
def ready() -> Readiness:
    return Readiness(ready=True)


@router.get("/v2/models/<model>", tags=TAGS, security=INVOKE, summary="OIP model metadata")
def metadata(model: ModelNamePath) -> ModelMetadata:
    return service.metadata(model)


@router.get("/v2/models/<model>/ready", tags=TAGS, security=INVOKE, summary="OIP model readiness")
def model_ready(model: ModelNamePath) -> ModelReadiness:
    return service.readiness(model)


def _infer(
    model: str, body: InferenceRequest, request: Request, version: int | None
) -> InferenceResponse:
    event = request.resolved_event.raw_event
    # The model reads the request as the caller sent it; `body` is its validated reading.
    return service.infer(model, body, _raw_body(event), version, request_id(event))


@router.post("/v2/models/<model>/infer", tags=TAGS, security=INVOKE, summary="OIP inference")
def infer(model: ModelNamePath, body: InferenceRequest, request: Request) -> InferenceResponse:
    return _infer(model, body, request, None)


@router.post(
    "/v2/models/<model>/versions/<version>/infer",
    tags=TAGS,
    security=INVOKE,
    summary="OIP inference on one version",
)
def infer_version(
    model: ModelNamePath, version: VersionNumber, body: InferenceRequest, request: Request
) -> InferenceResponse:
    return _infer(model, body, request, version)


app = resolver(router)
warm = warm_before_snapshot(["sagemaker-runtime", "dynamodb", "sagemaker"], app)


@api_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
