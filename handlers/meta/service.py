"""The API's OpenAPI document, generated from every route group's routes, plus what the
generator cannot say: raw predict bodies, the Idempotency-Key header, and the one error body
on every error status. `python -m handlers.api > openapi.json` writes the committed copy."""

from __future__ import annotations

import importlib
import json
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from handlers.meta.schemas import error_response, error_statuses
from handlers.shared.idempotency import HEADER as IDEMPOTENCY_HEADER
from handlers.shared.resolver import security_schemes
from maas_contract.errors import ERROR_SCHEMA
from maas_contract.routes import ROUTE_GROUPS, handler_module

IDEMPOTENT_OPERATIONS = {
    ("/v1/training-jobs", "post"),
    ("/v1/models/{model}/versions", "post"),
    ("/v1/models/{model}/deployments", "post"),
    ("/v1/models/{model}/rollback", "post"),
}
RAW_PREDICT = "/v1/models/{model}/predict"
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"


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
            "name": CUSTOM_ATTRIBUTES,
            "in": "header",
            "required": False,
            "schema": {"type": "string", "maxLength": 1024},
            "description": "passed to the model as CustomAttributes",
        }
    )


def _idempotency_header(operation: dict[str, Any]) -> None:
    operation.setdefault("parameters", []).append(
        {
            "name": IDEMPOTENCY_HEADER,
            "in": "header",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        }
    )


def _finish(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    # The generator's own 422 schemas: every error here answers in the one body instead, and
    # leaving one that points at a removed one would break the document's references.
    for generated in ("HTTPValidationError", "ResponseValidationError", "ValidationError"):
        schemas.pop(generated, None)
    schemas["Error"] = ERROR_SCHEMA
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            if path == RAW_PREDICT:
                _raw_predict_body(operation)
            if (path, method) in IDEMPOTENT_OPERATIONS:
                _idempotency_header(operation)
            responses = operation["responses"]
            responses.pop("422", None)
            for status in error_statuses(method, operation):
                responses[status] = error_response(status)
    return document


@cache
def openapi_document() -> dict[str, Any]:
    """Every group's routes in one resolver, described (each Lambda serves only its own)."""
    app = APIGatewayRestResolver(enable_validation=True)
    for group in ROUTE_GROUPS:
        app.include_router(importlib.import_module(handler_module(group)).router)
    generated = app.get_openapi_json_schema(
        title="maas",
        version="1.0.0",
        summary="Model-as-a-Service: predict, registry, deployments and training jobs",
        security_schemes=security_schemes(),
    )
    return _finish(json.loads(generated))


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"
