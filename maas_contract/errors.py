"""The one error body every route answers with, from a handler or from the gateway itself:

    {"error": "<what went wrong, for a person>", "code": "<machine-readable>", "request_id": "..."}

`error` is a string because the Open Inference Protocol v2 makes it one, and Triton's HTTP client
does `str(...)` on it; OpenAI's client reads a JSON body's `error` too and copes with a string.
`code` and `request_id` sit beside it. API Gateway's own responses (401, 403, 429, 413, 504)
are configured once per API, not per route, so they must carry the same shape on every route:
`GATEWAY_RESPONSE_TEMPLATE` is that body as an API Gateway mapping template, and their `code`
is API Gateway's gateway response type (`UNAUTHORIZED`, `THROTTLED`, ...). Handler codes are
PascalCase (`ValidationError`, `NotFound`). The one exception: OpenAI-compatible routes' own
handler errors use OpenAI's error object, because OpenAI's clients parse it field by field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

ERROR_FIELDS = ("error", "code", "request_id")


def error_body(code: str, message: str, request_id: str) -> dict[str, str]:
    return {"error": message, "code": code, "request_id": request_id}


def error_json(code: str, message: str, request_id: str) -> str:
    return json.dumps(error_body(code, message, request_id))


def is_error_body(body: Any) -> bool:
    """Whether a decoded JSON body has exactly the documented shape."""
    return (
        isinstance(body, dict)
        and set(body) == set(ERROR_FIELDS)
        and all(isinstance(body[name], str) for name in ERROR_FIELDS)
    )


# `$context.error.messageString` is the message already quoted as a JSON string; the response
# type and request id are plain identifiers. Source:
# https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-template-reference.html
GATEWAY_RESPONSE_TEMPLATE = (
    '{"error": $context.error.messageString, "code": "$context.error.responseType", '
    '"request_id": "$context.requestId"}'
)


@dataclass(frozen=True)
class GatewayResponse:
    """One of API Gateway's own refusals: its type, default status and message."""

    response_type: str
    status: int
    message: str

    def body(self, request_id: str) -> dict[str, str]:
        return error_body(self.response_type, self.message, request_id)


# The refusals a REST API with a Cognito authorizer, API keys, usage plans and request
# validation gives before any handler runs. Types and statuses from
# https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html
MISSING_AUTHENTICATION_TOKEN = GatewayResponse(
    "MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token"
)
UNAUTHORIZED = GatewayResponse("UNAUTHORIZED", 401, "Unauthorized")
ACCESS_DENIED = GatewayResponse(
    "ACCESS_DENIED", 403, "User is not authorized to access this resource"
)
INVALID_API_KEY = GatewayResponse("INVALID_API_KEY", 403, "Forbidden")
THROTTLED = GatewayResponse("THROTTLED", 429, "Too Many Requests")
QUOTA_EXCEEDED = GatewayResponse("QUOTA_EXCEEDED", 429, "Limit Exceeded")
REQUEST_TOO_LARGE = GatewayResponse("REQUEST_TOO_LARGE", 413, "Request Too Long")
INTEGRATION_TIMEOUT = GatewayResponse("INTEGRATION_TIMEOUT", 504, "Endpoint request timed out")
INTEGRATION_FAILURE = GatewayResponse("INTEGRATION_FAILURE", 504, "Internal server error")
# A Lambda that fails or answers a malformed proxy result: API Gateway answers 502 and no more
# specific gateway response type applies, so the DEFAULT_5XX template renders it.
LAMBDA_FAILURE = GatewayResponse("DEFAULT_5XX", 502, "Internal server error")
BAD_REQUEST_PARAMETERS = GatewayResponse(
    "BAD_REQUEST_PARAMETERS", 400, "Missing required request parameters"
)
BAD_REQUEST_BODY = GatewayResponse("BAD_REQUEST_BODY", 400, "Invalid request body")

# The schema of the body, for the API description (components/schemas/Error).
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Error",
    "description": (
        "Every error, from a handler or from the gateway. `code` is PascalCase from a handler, "
        "or API Gateway's gateway response type (UNAUTHORIZED, THROTTLED, ...) from the gateway."
    ),
    "required": list(ERROR_FIELDS),
    "properties": {
        "error": {"type": "string", "description": "What went wrong, for a person."},
        "code": {"type": "string", "description": "Machine-readable reason."},
        "request_id": {"type": "string", "description": "Quote it when reporting a problem."},
    },
    "additionalProperties": False,
    "example": {"error": "model 'digits' not found", "code": "NotFound", "request_id": "c0ffee"},
}
