"""Prediction routes: maas's own predict, and the Open Inference Protocol v2 (KServe,
Triton, MLServer) so that existing OIP clients work unchanged."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.request import Request
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field

from handlers import aws, invoke, versions
from handlers.config import MODEL_NAME_PATTERN
from handlers.errors import ApiError, aws_error_code, from_control_plane, unavailable
from handlers.web import INVOKE, entry, header, media_type, request_id, tracer

router = Router()
TAGS = ["predict"]
PREDICT_TYPES = ("application/json", "application/x-npy", "text/plain")
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
# Endpoint statuses in which a fleet still serves: an update, maintenance and a rollback keep
# the old fleet answering, and after a failed rollback the endpoint is "in service with a mix
# of the old and new endpoint configurations".
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html
SERVING = ("InService", "Updating", "SystemUpdating", "RollingBack", "UpdateRollbackFailed")
ModelName = Annotated[str, Path(pattern=MODEL_NAME_PATTERN, description="model name")]
PINNED = (
    "Every version runs under one SageMaker variant, so a pinned version is served only while"
    " it is the live version and no deployment (canary) is in progress; otherwise 409"
    " VersionNotLive, whose message names the live version. Also 409 when the model server"
    " that answered reports another version (a deployment raced the call)."
)
VersionNumber = Annotated[int, Path(ge=1, le=99_999_999, description=f"model version. {PINNED}")]


class _Model(BaseModel):
    # Validators are built on first use, so a cold start builds only those its first route
    # needs rather than all seven.
    model_config = ConfigDict(defer_build=True)


class PredictResponse(_Model):
    model: str
    version: int | None = Field(
        description="the version that answered, as its model server reports it"
        " (`maas-version=N` in the response's CustomAttributes)"
    )
    outputs: Any
    content_type: str
    request_id: str
    custom_attributes: str | None = Field(
        default=None,
        description="the model server's CustomAttributes, whole (they include maas-version)",
    )


class InferTensor(_Model):
    name: str = Field(min_length=1, max_length=128)
    shape: list[Annotated[int, Field(ge=0)]]
    datatype: str = Field(pattern=r"^(BOOL|U?INT(8|16|32|64)|FP(16|32|64)|BYTES)$")
    parameters: dict[str, Any] | None = None
    data: list[Any]


class RequestedOutput(_Model):
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(_Model):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(default=None, max_length=256)
    parameters: dict[str, Any] | None = None
    inputs: list[InferTensor] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = None


class InferenceResponse(_Model):
    model_name: str
    model_version: str | None = None
    id: str
    parameters: dict[str, Any] | None = None
    outputs: list[dict[str, Any]]


class MetadataTensor(_Model):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(_Model):
    name: str
    versions: list[str]
    platform: Literal["pytorch"] = "pytorch"
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


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


def _decode(answer: invoke.Answer) -> Any:
    if "json" in answer.content_type:
        try:
            return json.loads(answer.body)
        except ValueError:
            pass
    try:
        return answer.body.decode()
    except UnicodeDecodeError:
        return base64.b64encode(answer.body).decode()


@router.post(
    "/v1/models/<model>/predict",
    tags=TAGS,
    security=INVOKE,
    summary="Predict: the body goes to the model as-is (JSON, .npy or text)",
)
def predict(
    model: ModelName,
    request: Request,
    version: Annotated[
        int | None, Query(ge=1, le=99_999_999, description=f"pin a version. {PINNED}")
    ] = None,
) -> PredictResponse:
    event = request.resolved_event.raw_event
    content_type = media_type(event)
    if content_type not in PREDICT_TYPES:
        raise ApiError(415, "UnsupportedMediaType", f"content type must be one of {PREDICT_TYPES}")
    body = _raw_body(event)
    if content_type == "application/json":
        _refuse_json_too_deep(body)
    answer = invoke.invoke(
        model,
        body,
        content_type,
        version=version,
        custom_attributes=header(event, CUSTOM_ATTRIBUTES),
    )
    return PredictResponse(
        model=model,
        version=answer.version,
        outputs=_decode(answer),
        content_type=answer.content_type,
        request_id=request_id(event),
        custom_attributes=answer.custom_attributes,
    )


@router.get("/v2/health/live", tags=TAGS, security=INVOKE, summary="OIP server liveness")
def live() -> dict[str, bool]:
    return {"live": True}


@router.get("/v2/health/ready", tags=TAGS, security=INVOKE, summary="OIP server readiness")
def ready() -> dict[str, bool]:
    return {"ready": True}


@router.get("/v2/models/<model>", tags=TAGS, security=INVOKE, summary="OIP model metadata")
def metadata(model: ModelName) -> ModelMetadata:
    item = versions.require_model(model)
    live_version = item.get("live_version")
    shown = versions.require_version(model, int(live_version or item["latest_version"]))
    schema = shown.get("input_schema") or {}
    return ModelMetadata(
        name=model,
        versions=[str(live_version)] if live_version else [],
        inputs=schema.get("inputs", []),
        outputs=schema.get("outputs", []),
    )


@router.get("/v2/models/<model>/ready", tags=TAGS, security=INVOKE, summary="OIP model readiness")
def model_ready(model: ModelName) -> dict[str, Any]:
    item = versions.require_model(model)
    try:
        status = aws.sagemaker().describe_endpoint(EndpointName=item["endpoint_name"])
    except ClientError as exc:
        if aws_error_code(exc) != "ValidationException":
            raise from_control_plane(exc) from exc
        status = {"EndpointStatus": "NotCreated"}
    if status.get("EndpointStatus") not in SERVING:
        raise unavailable(f"model {model} is not ready", "ModelNotReady", retry_after=30)
    return {"name": model, "ready": True}


@tracer.capture_method(capture_response=False)
def _infer(model: str, body: InferenceRequest, request: Request, version: int | None) -> Any:
    event = request.resolved_event.raw_event
    answer = invoke.invoke(model, _raw_body(event), "application/json", version=version)
    reply = _decode(answer)
    if not isinstance(reply, dict) or not isinstance(reply.get("outputs"), list):
        raise ApiError(502, "ModelError", "the model did not answer with OIP outputs")
    return InferenceResponse(
        model_name=model,
        model_version=str(answer.version) if answer.version else None,
        id=body.id or request_id(event),
        parameters=reply.get("parameters"),
        outputs=reply["outputs"],
    )


@router.post("/v2/models/<model>/infer", tags=TAGS, security=INVOKE, summary="OIP inference")
def infer(model: ModelName, body: InferenceRequest, request: Request) -> InferenceResponse:
    return _infer(model, body, request, None)


@router.post(
    "/v2/models/<model>/versions/<version>/infer",
    tags=TAGS,
    security=INVOKE,
    summary="OIP inference on one version",
)
def infer_version(
    model: ModelName, version: VersionNumber, body: InferenceRequest, request: Request
) -> InferenceResponse:
    return _infer(model, body, request, version)


app, handler = entry(router)
