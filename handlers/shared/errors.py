"""The one exception every route raises for an answer other than success, and how AWS's
failures map to it. The body is maas_contract.errors' one shape, rendered by the resolver."""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import ClientError

from maas_contract.errors import error_json


class ApiError(Exception):
    """An answer other than success. Raised anywhere; rendered once by the resolver."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self, request_id: str) -> str:
        return error_json(self.code, self.message, request_id)


def bad_request(message: str, code: str = "ValidationError") -> ApiError:
    return ApiError(400, code, message)


def forbidden(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "NotFound", message)


def conflict(message: str, code: str = "Conflict", retry_after: int | None = None) -> ApiError:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return ApiError(409, code, message, headers)


def unavailable(message: str, code: str, retry_after: int) -> ApiError:
    return ApiError(503, code, message, {"Retry-After": str(retry_after)})


def proxy_error(error: ApiError, request_id: str) -> dict[str, Any]:
    """An API Gateway proxy result, for errors raised before routing (size limits)."""
    return {
        "statusCode": error.status,
        "headers": {"Content-Type": "application/json", **error.headers},
        "body": error.body(request_id),
        "isBase64Encoded": False,
    }


def aws_error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def aws_error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")) or str(exc)


_CONTROL_PLANE = {
    "ValidationException": (400, "ValidationError"),
    "ResourceNotFound": (404, "NotFound"),
    "ResourceInUse": (409, "Conflict"),
    "ResourceLimitExceeded": (409, "ResourceLimitExceeded"),
    "ConflictException": (409, "Conflict"),
}
_THROTTLING = {"ThrottlingException", "Throttling", "ProvisionedThroughputExceededException"}


def from_control_plane(exc: ClientError) -> ApiError:
    """Maps a SageMaker control-plane failure (after botocore's retries) to HTTP."""
    code = aws_error_code(exc)
    message = aws_error_message(exc)
    if code in _THROTTLING:
        return unavailable(message, "Throttled", retry_after=2)
    status, api_code = _CONTROL_PLANE.get(code, (502, "UpstreamError"))
    return ApiError(status, api_code, message)


# A file-system path of two or more parts, not inside a URI (s3://bucket/key keeps its key).
_HOST_PATH = re.compile(r"(?<![\w:/.~-])(?:/[\w.@+~-]+){2,}/?")


def public_reason(reason: str | None) -> str | None:
    """A failure reason as callers may read it: every file-system path cut to its last part.

    SageMaker's (and the emulator's) failure reasons can quote the paths of the machine that
    failed (a traceback's files, a model server's folders); a caller with the invoke scope
    reads deployment reasons, and learns nothing of that machine's layout from them."""
    if not reason:
        return reason
    return _HOST_PATH.sub(lambda m: ".../" + m.group(0).rstrip("/").rsplit("/", 1)[-1], reason)
