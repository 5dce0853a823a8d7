"""Prediction routes: maas's own predict, and the Open Inference Protocol v2 (KServe,
Triton, MLServer) so that existing OIP clients work unchanged."""

from __future__ import annotations

import base64
import json
from importlib import metadata as package_metadata
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.request import Request

from handlers.predict import binary_tensors, describe, service
from handlers.predict.schemas import (
    PINNED,
    InferenceRequest,
    InferenceResponse,
    Liveness,
    ModelMetadata,
    ModelReadiness,
    PredictResponse,
    Readiness,
    ServerMetadata,
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
JSON = "application/json"
NPY = "application/x-npy"
OCTET_STREAM = "application/octet-stream"
PREDICT_TYPES = (JSON, NPY, "text/plain")
INFER_TYPES = (JSON, OCTET_STREAM)
# What predict answers, by Accept: the model's npy array as-is, or the JSON answer (also for
# */*, application/* and no Accept, as the SageMaker inference toolkit reads them).
ANSWERS = {NPY: NPY, JSON: JSON, "application/*": JSON, "*/*": JSON}
SERVER_NAME = "maas"
EXTENSIONS = [binary_tensors.EXTENSION]
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
VersionNumber = Annotated[int, Path(ge=1, le=VERSION_MAX, description=f"model version. {PINNED}")]
# What a schema-valid body can still meet: the document cannot say what each model takes.
MODEL_DECIDES = (
    "The model decides which values it takes: inputs or outputs its registered signature does "
    "not name, and values its own code refuses, are a 400 ModelRejectedInput."
)
PinnedVersion = Annotated[
    int | None, Query(ge=1, le=VERSION_MAX, description=f"pin a version. {PINNED}")
]


def _raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()


def _server_version() -> str:
    try:
        return package_metadata.version(SERVER_NAME)
    except package_metadata.PackageNotFoundError:  # a Lambda bundle carries no dist-info
        return "unknown"


def unsupported(accepted: tuple[str, ...]) -> ApiError:
    return ApiError(
        415, "UnsupportedMediaType", f"content type must be one of {', '.join(accepted)}"
    )


def answer_type(event: dict[str, Any]) -> str:
    """The first of the Accept header's types that predict can answer in (q=0 excluded);
    406 when there is none."""
    accept = header(event, "accept")
    if not accept or not accept.strip():
        return JSON
    for part in accept.split(","):
        kind, *params = (p.strip().lower() for p in part.split(";"))
        if kind in ANSWERS and not any(p.replace(" ", "") in ("q=0", "q=0.0") for p in params):
            return ANSWERS[kind]
    raise ApiError(406, "NotAcceptable", f"accept must allow one of {', '.join((JSON, NPY))}")


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
    summary="Predict: the body goes to the model as-is (JSON, .npy or text); the answer is"
    " JSON, or the model's .npy array for Accept: application/x-npy",
    description=MODEL_DECIDES,
    responses={
        200: {
            "description": "the model's answer",
            "content": {
                JSON: {"model": PredictResponse},
                NPY: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
def predict(model: ModelNamePath, request: Request, version: PinnedVersion = None):  # type: ignore[no-untyped-def]
    event = request.resolved_event.raw_event
    content_type = media_type(event)
    if content_type not in PREDICT_TYPES:
        raise unsupported(PREDICT_TYPES)
    accept = answer_type(event)
    body = _raw_body(event)
    if content_type == JSON:
        _refuse_json_too_deep(body)
    if accept == NPY:
        return _npy_answer(model, body, content_type, version, event)
    return service.predict(
        model,
        body,
        content_type,
        version=version,
        custom_attributes=header(event, CUSTOM_ATTRIBUTES),
        request_id=request_id(event),
    )


def _npy_answer(
    model: str, body: bytes, content_type: str, version: int | None, event: dict[str, Any]
) -> Response:
    answer = service.invoke(
        model,
        body,
        content_type,
        version=version,
        custom_attributes=header(event, CUSTOM_ATTRIBUTES),
        accept=NPY,
    )
    headers = {CUSTOM_ATTRIBUTES: answer.custom_attributes} if answer.custom_attributes else {}
    return Response(200, NPY, answer.body, headers=headers)


@router.get("/v2/health/live", tags=TAGS, security=INVOKE, summary="OIP server liveness")
def live() -> Liveness:
    return Liveness(live=True)


@router.get("/v2/health/ready", tags=TAGS, security=INVOKE, summary="OIP server readiness")
def ready() -> Readiness:
    return Readiness(ready=True)


@router.get("/v2", tags=TAGS, security=INVOKE, summary="OIP server metadata")
def server_metadata() -> ServerMetadata:
    return ServerMetadata(name=SERVER_NAME, version=_server_version(), extensions=EXTENSIONS)


@router.get("/v2/models/<model>", tags=TAGS, security=INVOKE, summary="OIP model metadata")
def metadata(model: ModelNamePath) -> ModelMetadata:
    return describe.metadata(model)


@router.get(
    "/v2/models/<model>/versions/<version>",
    tags=TAGS,
    security=INVOKE,
    summary="OIP model metadata of one version",
)
def version_metadata(model: ModelNamePath, version: VersionNumber) -> ModelMetadata:
    return describe.metadata(model, version)


@router.get("/v2/models/<model>/ready", tags=TAGS, security=INVOKE, summary="OIP model readiness")
def model_ready(model: ModelNamePath) -> ModelReadiness:
    return describe.readiness(model)


@router.get(
    "/v2/models/<model>/versions/<version>/ready",
    tags=TAGS,
    security=INVOKE,
    summary="OIP readiness of one version: ready while it alone is live",
)
def version_ready(model: ModelNamePath, version: VersionNumber) -> ModelReadiness:
    return describe.readiness(model, version)


def _binary_or_json(request: InferenceRequest, response: InferenceResponse) -> Response:
    binary = {t.name for t in response.outputs if binary_tensors.wants_binary(request, t.name)}
    if not binary:
        return Response(200, JSON, response.model_dump_json(exclude_none=True))
    body, json_length = binary_tensors.write_response(response, binary)
    return Response(200, OCTET_STREAM, body, headers={binary_tensors.HEADER: str(json_length)})


def _infer(model: str, request: Request, version: int | None) -> Response:
    event = request.resolved_event.raw_event
    # API Gateway reads a request without a Content-Type as JSON, and so does this route:
    # Triton's client sends none, with JSON or with binary tensors after it.
    # https://docs.aws.amazon.com/apigateway/latest/developerguide/integration-passthrough-behaviors.html
    if media_type(event) not in ("", *INFER_TYPES):
        raise unsupported(INFER_TYPES)
    body = binary_tensors.read_request(_raw_body(event), header(event, binary_tensors.HEADER))
    response = service.infer(model, body, version, request_id(event))
    return _binary_or_json(body, response)


# These routes read their bodies themselves (JSON may be followed by binary tensors) and
# answer JSON or bytes, so they carry no return annotation for the resolver to validate
# against; `responses` documents the answer instead.
INFERRED: dict[int, OpenAPIResponse] = {
    200: {
        "description": f"the outputs, as JSON; with binary outputs, the JSON then their bytes,"
        f" and {binary_tensors.HEADER} gives the JSON's length",
        "content": {
            JSON: {"model": InferenceResponse},
            OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.post(
    "/v2/models/<model>/infer",
    tags=TAGS,
    security=INVOKE,
    summary="OIP inference (JSON, or Triton's binary tensor data extension)",
    description=MODEL_DECIDES,
    responses=INFERRED,
)
def infer(model: ModelNamePath, request: Request):  # type: ignore[no-untyped-def]
    return _infer(model, request, None)


@router.post(
    "/v2/models/<model>/versions/<version>/infer",
    tags=TAGS,
    security=INVOKE,
    summary="OIP inference on one version",
    description=MODEL_DECIDES,
    responses=INFERRED,
)
def infer_version(model: ModelNamePath, version: VersionNumber, request: Request):  # type: ignore[no-untyped-def]
    return _infer(model, request, version)


app = resolver(router)
warm = warm_before_snapshot(["sagemaker-runtime", "dynamodb", "sagemaker"], app)


@api_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
