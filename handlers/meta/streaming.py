"""The OpenAPI description of the streaming route groups (maas_contract.routes'
STREAMING_GROUPS): ASGI apps, not Powertools resolvers, so the generator cannot see them.
Their route tables (`handlers.<group>.app.ROUTES`) and pydantic types say the same here.

Their own errors are OpenAI's error object (ErrorResponse). The statuses API Gateway itself
may answer before the function runs (401, 403, 413, 429, 502, 504) carry the API's one
gateway body (Error) instead, so those declare either.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from handlers.openai import app as openai_app
from handlers.openai.serving import MAX_TOKENS_LIMIT
from handlers.shared.resolver import INVOKE

REF = "#/components/schemas/"
GATEWAY_STATUSES = {"401", "403", "413", "429", "502", "504"}
# status: (description, the parameter its example names, its example's code)
STATUSES: dict[str, tuple[str, str | None, str | None]] = {
    "400": ("Invalid request, naming the parameter at fault", "max_tokens", "invalid_value"),
    "401": ("No caller identity (API Gateway: no valid bearer token)", None, None),
    "403": ("Missing scope, or missing API key (API Gateway)", None, "insufficient_scope"),
    "404": ("No text-generation model in service by that name", "model", "model_not_found"),
    "409": ("The pinned name:version is not the live version", "model", "version_not_live"),
    "413": ("Body over 6,291,456 bytes", None, None),
    "429": ("The client's token quota is spent (see Retry-After)", None, "rate_limit_exceeded"),
    "500": ("Internal error", None, None),
    "502": ("The model failed, before or during the answer", None, "model_error"),
    "503": ("The model is not ready or is throttled (see Retry-After)", None, "model_not_ready"),
    "504": ("The model did not answer in time", None, "timeout"),
}
_ID = "chatcmpl-5f0e8c3a6b1d4e8a9a520f3b7c1d2e4f"
_CHUNK = {
    "id": _ID,
    "object": "chat.completion.chunk",
    "created": 1748770272,
    "model": "tiny-gpt",
    "choices": [{"index": 0, "delta": {"content": " world"}, "finish_reason": None}],
}
EXAMPLES: dict[str, Any] = {
    "ChatCompletionRequest": {
        "model": "tiny-gpt",
        "messages": [{"role": "user", "content": "Say hello"}],
        "max_tokens": 16,
        "stream": True,
        "stream_options": {"include_usage": True},
    },
    "CompletionRequest": {"model": "tiny-gpt:3", "prompt": "Once upon a time", "max_tokens": 16},
    "ChatCompletion": {
        "id": _ID,
        "object": "chat.completion",
        "created": 1748770272,
        "model": "tiny-gpt",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello world"},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    },
    "Completion": {
        "id": "cmpl-5f0e8c3a6b1d4e8a9a520f3b7c1d2e4f",
        "object": "text_completion",
        "created": 1748770272,
        "model": "tiny-gpt:3",
        "choices": [
            {"index": 0, "text": ", there was", "finish_reason": "length", "logprobs": None}
        ],
        "usage": {"prompt_tokens": 4, "completion_tokens": 16, "total_tokens": 20},
    },
    "ModelList": {
        "object": "list",
        "data": [{"id": "tiny-gpt", "object": "model", "created": 1748770272, "owned_by": "maas"}],
    },
}
SSE_EXAMPLE = f"data: {json.dumps(_CHUNK)}\n\ndata: [DONE]\n\n"
SSE_DESCRIPTION = (
    "With stream: true, server-sent events: `data: <chunk JSON>` per event, then "
    "`data: [DONE]`; with stream_options.include_usage, a last chunk with empty choices and "
    "the usage. `: keep-alive` comments keep an idle stream open; a failure mid-stream sends "
    '`data: {"error": {...}}`.'
)


def _schema(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, str]:
    generated = model.model_json_schema(ref_template=REF + "{model}")
    for name, schema in {**generated.pop("$defs", {}), model.__name__: generated}.items():
        if schemas.setdefault(name, schema) != schema:
            raise ValueError(f"two schemas named {name}: rename one of the models")
    return {"$ref": REF + model.__name__}


def _error(status: str, schemas: dict[str, Any]) -> dict[str, Any]:
    from handlers.meta.examples import error_example
    from handlers.openai.protocol import ErrorResponse

    description, param, code = STATUSES[status]
    own = _schema(ErrorResponse, schemas)
    schema = {"oneOf": [own, {"$ref": REF + "Error"}]} if status in GATEWAY_STATUSES else own
    kind = "invalid_request_error" if int(status) < 500 else "server_error"
    example = {"error": {"message": description, "type": kind, "param": param, "code": code}}
    media: dict[str, Any] = {"schema": schema, "example": example}
    if status in GATEWAY_STATUSES:
        media = {"schema": schema, "examples": _both(example, error_example(status))}
    return {"description": description, "content": {"application/json": media}}


def _both(own: dict[str, Any], gateway: dict[str, Any]) -> dict[str, Any]:
    return {"function": {"value": own}, "gateway": {"value": gateway}}


def _operation(route: Any, operation_id: str, schemas: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "application/json": {
            "schema": _schema(route.response, schemas),
            "example": EXAMPLES[route.response.__name__],
        }
    }
    if route.chunk is not None:
        answer["text/event-stream"] = {
            "schema": {"type": "string", "description": SSE_DESCRIPTION},
            "example": SSE_EXAMPLE,
        }
    operation: dict[str, Any] = {
        "tags": ["openai"],
        "summary": route.summary,
        "operationId": operation_id,
        "security": INVOKE,
        "responses": {"200": {"description": "the answer", "content": answer}},
    }
    statuses = ["400", "401", "403", "404", "429", "500", "502", "503", "504"]
    if route.request is not None:
        name = route.request.__name__
        operation["requestBody"] = {
            "required": True,
            "description": f"max_tokens (or max_completion_tokens) at most {MAX_TOKENS_LIMIT}; "
            "n must be 1; roles system, user, assistant.",
            "content": {
                "application/json": {
                    "schema": _schema(route.request, schemas),
                    "example": EXAMPLES[name],
                }
            },
        }
        statuses += ["409", "413"]
    for status in sorted(statuses):
        operation["responses"][status] = _error(status, schemas)
    return operation


def add(document: dict[str, Any], operation_ids: dict[tuple[str, str], str]) -> None:
    """Writes the streaming groups' operations into the document, in place."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for route in openai_app.ROUTES:
        method = route.method.lower()
        operation_id = operation_ids[(route.path, method)]
        document["paths"].setdefault(route.path, {})[method] = _operation(
            route, operation_id, schemas
        )
