"""One call to sagemaker-runtime:InvokeEndpoint, and what its failures mean over HTTP.

Every version of a model runs under the one variant name, so no TargetVariant can pick a
version. The model server says which version answered (`maas-version=N` in the response's
CustomAttributes). A pinned version is served only while it is the live one and no canary
is splitting traffic; anything else is a 409 that names the live version.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from handlers import aws, store
from handlers.errors import (
    ApiError,
    aws_error_code,
    aws_error_message,
    conflict,
    not_found,
    unavailable,
)
from handlers.web import model_metrics, tracer
from maas_contract.sagemaker import parse_version_attribute

NOT_LIVE = "VersionNotLive"


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
    item = store.get_model_cached(model)
    if item is None:
        raise not_found(f"model {model} is not registered")
    if version is None:
        return str(item["endpoint_name"])
    if version > int(item.get("latest_version", 0)):
        raise not_found(f"version {version} of model {model} is not registered")
    if _pinnable(item, version) is not None:
        # The cached item may predate a deployment that just ended: ask the table itself.
        item = store.get_model(model) or item
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
        params["CustomAttributes"] = custom_attributes
    try:
        reply = _call(params, model)
    except ApiError as exc:
        model_metrics(model, model_error=exc.code in ("ModelError", "ModelRejectedInput"))
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
