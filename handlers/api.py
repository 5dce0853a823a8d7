"""The whole API in one resolver, for the OpenAPI document only (each Lambda serves its own
group). `python -m handlers.api > openapi.json` regenerates the committed copy."""

from __future__ import annotations

import json
import sys
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.models import (
    APIKey,
    APIKeyIn,
    OAuth2,
    OAuthFlowClientCredentials,
    OAuthFlows,
)

from handlers import deployments, meta, predict, registry, training_jobs
from handlers.idempotent import HEADER as IDEMPOTENCY_HEADER
from handlers.web import ADMIN_SCOPE, API_KEY_SCHEME, INVOKE_SCOPE, OAUTH_SCHEME

GROUPS = (predict, registry, deployments, training_jobs, meta)
IDEMPOTENT_OPERATIONS = {
    ("/v1/training-jobs", "post"),
    ("/v1/models/{model}/versions", "post"),
    ("/v1/models/{model}/deployments", "post"),
}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "request_id"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "request_id": {"type": "string"},
            },
        }
    },
}
# API Gateway answers some errors itself, before or instead of the handler, in its own shape.
GATEWAY_ERROR_SCHEMA = {
    "type": "object",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
}
ERRORS = {
    "400": "Invalid request (pydantic's message)",
    "401": "Missing, expired or untrusted bearer token (API Gateway)",
    "403": "Missing scope, or missing API key (API Gateway)",
    "404": "Unknown model, version, deployment or job",
    "409": "Conflict",
    "413": "Body over 6,291,456 bytes (API Gateway: over 10 MB)",
    "415": "Unsupported content type",
    "429": "Usage plan's rate or quota exceeded (API Gateway)",
    "500": "Internal error",
    "502": "The model or SageMaker failed, or the integration failed (API Gateway)",
    "503": "Throttled or model not ready (see Retry-After)",
    "504": "The model timed out, or the 29 s integration timeout passed (API Gateway)",
}
# Which shape each status may take: ours, API Gateway's, or either.
GATEWAY_ONLY = {"401", "429"}
EITHER = {"403", "413", "502", "504"}
SAGEMAKER_GROUPS = {"predict", "deployments", "training_jobs"}


def _security_schemes() -> dict[str, Any]:
    flow = OAuthFlowClientCredentials(
        tokenUrl="/oauth2/token",
        scopes={INVOKE_SCOPE: "call models", ADMIN_SCOPE: "manage models, deployments, jobs"},
    )
    return {
        OAUTH_SCHEME: OAuth2(flows=OAuthFlows(clientCredentials=flow)),
        API_KEY_SCHEME: APIKey.model_validate({"name": "x-api-key", "in": APIKeyIn.header}),
    }


def _error_codes(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    # Every route sits behind the authorizer, the usage plan and the Lambda integration.
    codes = ["400", "401", "403", "404", "429", "500", "502", "504"]
    if method in ("post", "delete"):
        codes.append("409")
    if "requestBody" in operation:
        codes += ["413", "415"]
    if operation["tags"][0] in SAGEMAKER_GROUPS:  # SageMaker throttling, a model not ready
        codes += ["503"]
    return sorted(codes)


def _error_content(code: str) -> dict[str, Any]:
    ours = {"$ref": "#/components/schemas/Error"}
    gateway = {"$ref": "#/components/schemas/GatewayError"}
    schema = gateway if code in GATEWAY_ONLY else {"oneOf": [ours, gateway]}
    return {"application/json": {"schema": schema if code in GATEWAY_ONLY | EITHER else ours}}


def _raw_predict_body(operation: dict[str, Any]) -> None:
    operation["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {"schema": {}},
            "application/x-npy": {"schema": {"type": "string", "format": "binary"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
    operation.setdefault("parameters", []).append(
        {
            "name": predict.CUSTOM_ATTRIBUTES,
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": 1024},
            "description": "passed to the model as CustomAttributes",
        }
    )


def _finish(document: dict[str, Any]) -> dict[str, Any]:
    """What the generator cannot say: raw bodies, headers, and our error shape."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    # The generator's own 422 schemas: every error here answers in our shape instead, and
    # leaving one that points at a removed one would break the document's references.
    for generated in ("HTTPValidationError", "ResponseValidationError", "ValidationError"):
        schemas.pop(generated, None)
    schemas["Error"] = ERROR_SCHEMA
    schemas["GatewayError"] = GATEWAY_ERROR_SCHEMA
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if path == "/v1/models/{model}/predict":
                _raw_predict_body(operation)
            if (path, method) in IDEMPOTENT_OPERATIONS:
                operation.setdefault("parameters", []).append(
                    {
                        "name": IDEMPOTENCY_HEADER,
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    }
                )
            responses = operation["responses"]
            responses.pop("422", None)
            for code in _error_codes(path, method, operation):
                responses[code] = {"description": ERRORS[code], "content": _error_content(code)}
    return document


@cache
def openapi_document() -> dict[str, Any]:
    app = APIGatewayRestResolver(enable_validation=True)
    for group in GROUPS:
        app.include_router(group.router)
    generated = app.get_openapi_json_schema(
        title="maas",
        version="1.0.0",
        summary="Model-as-a-Service: predict, registry, deployments and training jobs",
        security_schemes=_security_schemes(),
    )
    return _finish(json.loads(generated))


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
