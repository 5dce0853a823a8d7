"""One call to sagemaker-runtime:InvokeEndpoint, and what its failures mean over HTTP."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from handlers import aws, store
from handlers.errors import ApiError, aws_error_code, aws_error_message, not_found, unavailable
from handlers.web import model_metrics, tracer

_VARIANT = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class Answer:
    body: bytes
    content_type: str
    version: int | None
    custom_attributes: str | None


def _model_error(exc: ClientError) -> ApiError:
    """A 424 from SageMaker: the model container itself answered with an error."""
    original = exc.response.get("OriginalStatusCode")
    message = str(exc.response.get("OriginalMessage") or aws_error_message(exc))
    if isinstance(original, int) and 400 <= original < 500:
        return ApiError(400, "ModelRejectedInput", message)
    return ApiError(502, "ModelError", message)


def _runtime_error(exc: ClientError, model: str, version: int | None) -> ApiError:
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
        if version is not None and "variant" in lowered:
            return not_found(f"version {version} of {model} is not deployed")
        return ApiError(400, "ValidationError", message)
    return ApiError(502, "UpstreamError", message)


def endpoint_for(model: str, version: int | None) -> str:
    item = store.get_model_cached(model)
    if item is None:
        raise not_found(f"model {model} is not registered")
    if version is not None and version > int(item.get("latest_version", 0)):
        raise not_found(f"version {version} of model {model} is not registered")
    return str(item["endpoint_name"])


def _call(params: dict[str, Any], model: str, version: int | None) -> dict[str, Any]:
    try:
        return dict(aws.runtime().invoke_endpoint(**params))
    except ClientError as exc:
        raise _runtime_error(exc, model, version) from exc
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
    if version is not None:
        params["TargetVariant"] = f"v{version}"
    if custom_attributes:
        params["CustomAttributes"] = custom_attributes
    try:
        reply = _call(params, model, version)
    except ApiError as exc:
        model_metrics(model, model_error=exc.code in ("ModelError", "ModelRejectedInput"))
        raise
    model_metrics(model, model_error=False)
    variant = _VARIANT.match(str(reply.get("InvokedProductionVariant") or ""))
    return Answer(
        body=reply["Body"].read(),
        content_type=str(reply.get("ContentType") or ""),
        version=int(variant.group(1)) if variant else None,
        custom_attributes=reply.get("CustomAttributes"),
    )
