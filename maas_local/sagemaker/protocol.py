"""The AWS wire protocols the emulator speaks, checked against botocore's own service models.

The control plane is AWS JSON 1.1 (`POST /` with `X-Amz-Target: SageMaker.<Operation>`); the
runtime is REST-JSON. Requests are validated with botocore's `ParamValidator` against the
operation's input shape, and every response is checked against its output shape, so a field
the real service would not send (or a missing required one) is a bug we see at once.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
from typing import Any

import botocore.session
from botocore.model import OperationModel, Shape
from botocore.validate import ParamValidator

TARGET_PREFIX = "SageMaker."


class AwsError(Exception):
    """An error answered in the service's own error shape."""

    def __init__(self, code: str, message: str, status: int = 400, **fields: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields


def validation(message: str) -> AwsError:
    return AwsError("ValidationException", message)


@functools.cache
def service_model(name: str) -> Any:
    return botocore.session.get_session().get_service_model(name)


def operation(service: str, name: str) -> OperationModel:
    try:
        return service_model(service).operation_model(name)
    except Exception as exc:  # botocore raises OperationNotFoundError
        raise AwsError("UnknownOperationException", f"Unknown operation {name}") from exc


def _typed(value: Any, shape: Shape) -> Any:
    """Turns decoded JSON into botocore's Python types, keeping unknown keys for the validator."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        members = shape.members
        return {k: _typed(v, members[k]) if k in members else v for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_typed(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _typed(v, shape.value) for k, v in value.items()}
    if kind == "timestamp" and isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    return value


def parse_request(op: OperationModel, body: bytes) -> dict[str, Any]:
    """Decodes and validates a JSON 1.1 request body against the operation's input shape."""
    try:
        raw = json.loads(body or b"{}")
    except ValueError as exc:
        raise AwsError("SerializationException", f"Request body is not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise AwsError("SerializationException", "Request body must be a JSON object")
    if op.input_shape is None:
        return {}
    params = _typed(raw, op.input_shape)
    check(params, op.input_shape, ranges=False)
    return params


# botocore's words for a value below a shape's minimum; `rules.constraint_errors` words every
# range (minimum and maximum) as the service does, so the control plane leaves these to it.
_RANGE_ERRORS = {"invalid range", "invalid length"}


def check(params: dict[str, Any], shape: Shape, *, ranges: bool = True) -> None:
    """Types, required and unknown members (and, unless `ranges` is False, minimums)."""
    report = ParamValidator().validate(params, shape)
    if not ranges:
        report._errors = [e for e in report._errors if e[0] not in _RANGE_ERRORS]
    if report.has_errors():
        raise validation(report.generate_report())


def check_response(op: OperationModel, response: dict[str, Any]) -> None:
    """Raises if a response would not be a valid output of the real service."""
    if op.output_shape is None:
        if response:
            raise AssertionError(f"{op.name} answers no body, got {sorted(response)}")
        return
    report = ParamValidator().validate(response, op.output_shape)
    if report.has_errors():
        raise AssertionError(f"{op.name} response invalid: {report.generate_report()}")


def project(operation_name: str, values: dict[str, Any]) -> dict[str, Any]:
    """Keeps the members of `values` that the operation's output shape has."""
    shape = service_model("sagemaker").operation_model(operation_name).output_shape
    return {k: v for k, v in values.items() if k in shape.members}


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot encode {type(value).__name__}")


def to_json(payload: dict[str, Any]) -> bytes:
    """JSON 1.1 body: timestamps as epoch seconds, as botocore parses them."""
    return json.dumps(payload, default=_encode).encode()


def json_error(err: AwsError) -> bytes:
    body = {"__type": err.code, "message": err.message}
    body.update(err.fields)
    return json.dumps(body).encode()


def rest_error(err: AwsError) -> bytes:
    """REST-JSON error body for the runtime (`Message` plus the error's own members)."""
    body = {"message": err.message, "Message": err.message}
    body.update(err.fields)
    return json.dumps(body).encode()


def now() -> dt.datetime:
    return dt.datetime.now(tz=dt.UTC)
