"""Predictions: one call to sagemaker-runtime:InvokeEndpoint, and what its failures mean over
HTTP (the Open Inference Protocol's metadata and readiness are in `metadata`).

Every version of a model runs under the one variant name, so no TargetVariant can pick a
version. The model server says which version answered (`maas-version=N` in the response's
CustomAttributes). A pinned version is served only while it is the live one and no canary
is splitting traffic; anything else is a 409 that names the live version.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from pydantic import ValidationError

from handlers.predict.schemas import (
    Answer,
    InferenceRequest,
    InferenceResponse,
    InferTensor,
    PredictResponse,
)
from handlers.registry import service as registry
from handlers.registry.schemas import InputSchema
from handlers.shared import aws, registry_table
from handlers.shared.errors import (
    ApiError,
    aws_error_code,
    aws_error_message,
    bad_request,
    conflict,
    not_found,
    unavailable,
)
from handlers.shared.observability import model_metrics, tracer
from maas_contract.sagemaker import parse_version_attribute

NOT_LIVE = "VersionNotLive"
# The model does not take these values: its own 4xx, or tensors its registered signature does
# not name. A schema-valid request can meet it: each model, not the API, says what it takes.
REJECTED = "ModelRejectedInput"
# InvokeEndpoint's CustomAttributes: at most 1024 characters, pattern \p{ASCII}*.
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html
CUSTOM_ATTRIBUTES_MAX = 1024
# Endpoint statuses in which a fleet still serves: an update, maintenance and a rollback keep
# the old fleet answering, and after a failed rollback the endpoint is "in service with a mix
# of the old and new endpoint configurations".
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html
SERVING = ("InService", "Updating", "SystemUpdating", "RollingBack", "UpdateRollbackFailed")
_MODEL_CACHE_TTL_S = 30.0
_model_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def cached_model(name: str) -> dict[str, Any] | None:
    """The model item, from a short per-process cache: predict reads it on every call."""
    cached = _model_cache.get(name)
    if cached and time.monotonic() - cached[0] < _MODEL_CACHE_TTL_S:
        return cached[1]
    model = registry_table.get_model(name, consistent=False)
    if model is not None:
        _model_cache[name] = (time.monotonic(), model)
    return model


def clear_cache() -> None:
    _model_cache.clear()


def _model_error(exc: ClientError) -> ApiError:
    """A 424 from SageMaker: the model container itself answered with an error."""
    original = exc.response.get("OriginalStatusCode")
    message = str(exc.response.get("OriginalMessage") or aws_error_message(exc))
    if isinstance(original, int) and 400 <= original < 500:
        return ApiError(400, REJECTED, message)
    return ApiError(502, "ModelError", message)


def _runtime_error(exc: ClientError, model: str) -> ApiError:
    code = aws_error_code(exc)
    message = aws_error_message(exc)
    if code == "ModelError":
        return _model_error(exc)
    if code == "ModelNotReadyException":
        return unavailable(message, "ModelNotReady", retry_after=10)
    if code in ("ThrottlingException", "Throttling"):
        return unavailable(message, "Throttled", retry_after=1)
    if code == "ServiceUnavailable":
        return unavailable(message, "ServiceUnavailable", retry_after=2)
    if code in ("ValidationError", "ValidationException"):
        lowered = message.lower()
        if "endpoint" in lowered and "not found" in lowered:
            return not_found(f"model {model} has no endpoint in service")
        return ApiError(400, "ValidationError", message)
    return ApiError(502, "UpstreamError", message)


def _live_clause(item: dict[str, Any]) -> str:
    live = item.get("live_version")
    return f"the live version is {live}" if live is not None else "no version is live"


def _pinnable(item: dict[str, Any], version: int) -> ApiError | None:
    """Why `version` cannot be served on its own now, or None when it can."""
    model = item["name"]
    if item.get("live_version") is None or int(item["live_version"]) != version:
        return conflict(f"version {version} of {model} is not live; {_live_clause(item)}", NOT_LIVE)
    if item.get("active_deployment"):
        return conflict(
            f"version {version} of {model} cannot be pinned while deployment"
            f" {item['active_deployment']} is in progress; {_live_clause(item)}",
            NOT_LIVE,
        )
    return None


def endpoint_for(model: str, version: int | None) -> str:
    item = cached_model(model)
    if item is None:
        raise not_found(f"model {model} is not registered")
    if version is None:
        return str(item["endpoint_name"])
    if version > int(item.get("latest_version", 0)):
        raise not_found(f"version {version} of model {model} is not registered")
    if _pinnable(item, version) is not None:
        # The cached item may predate a deployment that just ended: ask the table itself.
        item = registry_table.get_model(model) or item
        refusal = _pinnable(item, version)
        if refusal is not None:
            raise refusal
    return str(item["endpoint_name"])


def _call(params: dict[str, Any], model: str) -> dict[str, Any]:
    try:
        return dict(aws.runtime().invoke_endpoint(**params))
    except ClientError as exc:
        raise _runtime_error(exc, model) from exc
    except (ReadTimeoutError, ConnectTimeoutError) as exc:
        raise ApiError(504, "Timeout", f"model {model} did not answer in time") from exc
    except EndpointConnectionError as exc:
        raise ApiError(502, "UpstreamError", "could not reach the model endpoint") from exc


@tracer.capture_method(capture_response=False)
def invoke(
    model: str,
    body: bytes,
    content_type: str,
    *,
    version: int | None = None,
    custom_attributes: str | None = None,
    accept: str = "application/json",
) -> Answer:
    params: dict[str, Any] = {
        "EndpointName": endpoint_for(model, version),
        "Body": body,
        "ContentType": content_type,
        "Accept": accept,
    }
    if custom_attributes:
        if len(custom_attributes) > CUSTOM_ATTRIBUTES_MAX or not custom_attributes.isascii():
            raise bad_request(
                f"X-Amzn-SageMaker-Custom-Attributes takes at most {CUSTOM_ATTRIBUTES_MAX} "
                "ASCII characters"
            )
        params["CustomAttributes"] = custom_attributes
    try:
        reply = _call(params, model)
    except ApiError as exc:
        model_metrics(model, model_error=exc.code in ("ModelError", REJECTED))
        raise
    model_metrics(model, model_error=False)
    answered = parse_version_attribute(reply.get("CustomAttributes"))
    if version is not None and answered is not None and answered != version:
        # A deployment started between the registry read and the call.
        raise conflict(
            f"version {version} of {model} is not live; version {answered} answered", NOT_LIVE
        )
    return Answer(
        body=reply["Body"].read(),
        content_type=str(reply.get("ContentType") or ""),
        version=answered if answered is not None else version,
        custom_attributes=reply.get("CustomAttributes"),
    )


def decoded(answer: Answer) -> Any:
    """The model's answer as JSON where it is JSON, else text, else base64."""
    if "json" in answer.content_type:
        try:
            return json.loads(answer.body)
        except ValueError:
            pass
    try:
        return answer.body.decode()
    except UnicodeDecodeError:
        return base64.b64encode(answer.body).decode()


def predict(
    model: str,
    body: bytes,
    content_type: str,
    *,
    version: int | None,
    custom_attributes: str | None,
    request_id: str,
) -> PredictResponse:
    answer = invoke(model, body, content_type, version=version, custom_attributes=custom_attributes)
    return PredictResponse(
        model=model,
        version=answer.version,
        outputs=decoded(answer),
        content_type=answer.content_type,
        request_id=request_id,
        custom_attributes=answer.custom_attributes,
    )


def _schema(model: str, version: int | None) -> InputSchema:
    """The registered tensors of the version that will answer: the pinned one, else the live
    one; none while no version is live (then no call can be served anyway)."""
    item = cached_model(model) or {}
    shown = version or item.get("live_version")
    if shown is None:
        return InputSchema()
    return registry.get_version(model, int(shown)).input_schema


def _refuse_unknown_tensors(model: str, request: InferenceRequest, schema: InputSchema) -> None:
    """Names the registered schema does not know are refused, before the model is called; a
    schema that names no inputs (or outputs) leaves the model to judge them."""
    for kind, names, known in (
        ("input", [t.name for t in request.inputs], [t.name for t in schema.inputs]),
        ("output", [t.name for t in request.outputs or []], [t.name for t in schema.outputs]),
    ):
        unknown = [name for name in names if known and name not in known]
        if unknown:
            raise ApiError(
                400,
                REJECTED,
                f"model {model} has no {kind} {unknown[0]}; its {kind}s are {', '.join(known)}",
            )


def _requested(model: str, request: InferenceRequest, outputs: list[InferTensor]) -> list:
    """The outputs the request names, in its order; all of them when it names none."""
    if not request.outputs:
        return outputs
    by_name = {tensor.name: tensor for tensor in outputs}
    missing = [o.name for o in request.outputs if o.name not in by_name]
    if missing:
        raise ApiError(400, REJECTED, f"model {model} has no output {missing[0]}")
    return [by_name[o.name] for o in request.outputs]


def infer(
    model: str, request: InferenceRequest, version: int | None, request_id: str
) -> InferenceResponse:
    """OIP inference: the request's tensors go to the model as JSON, and the outputs it asked
    for come back."""
    endpoint_for(model, version)  # a pin that cannot be served is refused first
    _refuse_unknown_tensors(model, request, _schema(model, version))
    body = request.model_dump_json(exclude_none=True).encode()
    answer = invoke(model, body, "application/json", version=version)
    reply = decoded(answer)
    if not isinstance(reply, dict) or not isinstance(reply.get("outputs"), list):
        raise ApiError(502, "ModelError", "the model did not answer with OIP outputs")
    try:
        outputs = [InferTensor.model_validate(tensor) for tensor in reply["outputs"]]
    except ValidationError as exc:
        raise ApiError(
            502, "ModelError", f"the model's outputs are not OIP tensors: {exc}"
        ) from exc
    return InferenceResponse(
        model_name=model,
        model_version=str(answer.version) if answer.version else None,
        id=request.id or request_id,
        outputs=_requested(model, request, outputs),
    )
