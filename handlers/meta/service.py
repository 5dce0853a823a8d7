"""The API's OpenAPI document, generated from every route group's routes, plus what the
generator cannot say: operation ids, examples, where the API lives, raw predict bodies, the
Idempotency-Key header, the rules the handlers enforce beyond their schemas, and the one error
body on every error status. `python -m handlers.api > openapi.json` writes the committed copy."""

from __future__ import annotations

import copy
import importlib
import json
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from handlers.meta import examples, links, rules, streaming
from handlers.meta.schemas import error_response, error_statuses
from handlers.shared.idempotency import HEADER as IDEMPOTENCY_HEADER
from handlers.shared.resolver import OAUTH_SCHEME, security_schemes
from maas_contract.errors import ERROR_SCHEMA
from maas_contract.routes import ROUTE_GROUPS, STREAMING_GROUPS, handler_module

# Every operation's id, by (path, method): what generated clients name their methods, and
# API Gateway its methods' OperationName. The Open Inference Protocol's routes take the names
# of its gRPC methods (KServe's grpc_predict_v2.proto: ServerLive, ModelInfer, ...), the way
# KServe and Triton name them. An operation missing here keeps the generator's id, and
# tests/handlers/test_openapi.py fails until it is added. An entry whose route has not landed
# yet is never emitted.
OPERATION_IDS: dict[tuple[str, str], str] = {
    ("/v1/models", "get"): "listModels",
    ("/v1/models/{model}", "get"): "getModel",
    ("/v1/models/{model}", "delete"): "deleteModel",
    ("/v1/models/{model}/endpoint", "delete"): "deleteEndpoint",
    ("/v1/models/{model}/predict", "post"): "predict",
    ("/v1/models/{model}/versions", "get"): "listModelVersions",
    ("/v1/models/{model}/versions", "post"): "registerModelVersion",
    ("/v1/models/{model}/versions/{version}", "delete"): "deleteModelVersion",
    ("/v1/models/{model}/uploads", "post"): "createArtifactUpload",
    ("/v1/models/{model}/deployments", "post"): "createDeployment",
    ("/v1/models/{model}/deployments/{deployment_id}", "get"): "getDeployment",
    ("/v1/models/{model}/rollback", "post"): "rollback",
    ("/v1/training-jobs", "get"): "listTrainingJobs",
    ("/v1/training-jobs", "post"): "createTrainingJob",
    ("/v1/training-jobs/{job_id}", "get"): "getTrainingJob",
    ("/v1/training-jobs/{job_id}", "delete"): "stopTrainingJob",
    ("/v1/openapi.json", "get"): "getOpenApiDocument",
    ("/v1/usage", "get"): "getTokenUsage",
    # The OpenAI-compatible routes take OpenAI's own operation names, except its listModels.
    ("/openai/v1/chat/completions", "post"): "createChatCompletion",
    ("/openai/v1/completions", "post"): "createCompletion",
    ("/openai/v1/models", "get"): "listGenerationModels",
    ("/v2", "get"): "serverMetadata",
    ("/v2/health/live", "get"): "serverLive",
    ("/v2/health/ready", "get"): "serverReady",
    ("/v2/models/{model}", "get"): "modelMetadata",
    ("/v2/models/{model}/ready", "get"): "modelReady",
    ("/v2/models/{model}/infer", "post"): "modelInfer",
    ("/v2/models/{model}/versions/{version}", "get"): "modelVersionMetadata",
    ("/v2/models/{model}/versions/{version}/ready", "get"): "modelVersionReady",
    ("/v2/models/{model}/versions/{version}/infer", "post"): "modelVersionInfer",
}
# A stage's invoke URL: https://{api-id}.execute-api.{region}.amazonaws.com/{stage}/
# https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-call-api.html
SERVERS = [
    {
        "url": "https://{restApiId}.execute-api.{region}.amazonaws.com/{stage}",
        "description": "A deployed stage: the stack's ApiUrl output",
        "variables": {
            "restApiId": {"default": "a1b2c3d4e5", "description": "the REST API's id"},
            "region": {"default": "eu-west-1", "description": "the stage's AWS Region"},
            "stage": {"default": "dev", "description": "the stage's name (cdk.json)"},
        },
    },
    {
        "url": "http://127.0.0.1:{port}",
        "description": "The local stack (`maas local up` prints its URL; /docs there serves "
        "this document with its own URL)",
        "variables": {"port": {"default": "8080", "description": "the local gateway's port"}},
    },
]
# OpenAPI's tokenUrl must be a URL and takes no server variables, so the committed document
# names the dev stage's token endpoint in AWS's example account; a stage's own is its user pool
# domain's /oauth2/token, the stack's TokenUrl output (infra/client_auth.py), and the local
# gateway's /docs serves its own. Prefix domains are <prefix>.auth.<region>.amazoncognito.com:
# https://docs.aws.amazon.com/cognito/latest/developerguide/cognito-user-pools-assign-domain-prefix.html
# https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html
TOKEN_URL = "https://maas-dev-111122223333.auth.eu-west-1.amazoncognito.com/oauth2/token"  # noqa: S105
OAUTH2_NOTE = (
    "The stage's Cognito token endpoint, `https://{resource_prefix}-{account}.auth.{region}"
    ".amazoncognito.com/oauth2/token`: the stack's TokenUrl output. This copy names the dev "
    "stage in AWS's example account 111122223333; the local stack's /docs uses its own."
)
IDEMPOTENT_OPERATIONS = {
    ("/v1/training-jobs", "post"),
    ("/v1/models/{model}/versions", "post"),
    ("/v1/models/{model}/deployments", "post"),
    ("/v1/models/{model}/rollback", "post"),
}
RAW_PREDICT = "/v1/models/{model}/predict"
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
_SCHEMA_REF = "#/components/schemas/"


def _raw_predict_body(operation: dict[str, Any]) -> None:
    bodies = examples.PREDICT_BODIES
    operation["requestBody"] = {
        "required": True,
        "description": rules.RAW_PREDICT_BODY,
        "content": {
            "application/json": {"schema": {}, "example": bodies["application/json"]},
            "application/x-npy": {
                "schema": {"type": "string", "format": "binary"},
                "examples": {"digit": {"summary": bodies["application/x-npy"]}},
            },
            "text/plain": {"schema": {"type": "string"}, "example": bodies["text/plain"]},
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


INFER_PATHS = ("/v2/models/{model}/infer", "/v2/models/{model}/versions/{version}/infer")


def _infer_body(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """The infer routes read their own body (JSON, or JSON then raw tensor bytes): declared
    here, with the InferenceRequest schema, and not as a JSON-only body, which would make API
    Gateway's validator refuse Triton's binary requests."""
    from handlers.predict.schemas import InferenceRequest

    generated = InferenceRequest.model_json_schema(ref_template=_SCHEMA_REF + "{model}")
    for name, schema in generated.pop("$defs", {}).items():
        schemas.setdefault(name, schema)
    schemas.setdefault("InferenceRequest", generated)
    request = {"$ref": _SCHEMA_REF + "InferenceRequest"}
    operation["requestBody"] = {
        "required": True,
        "description": (
            "An Open Inference Protocol v2 inference request. Without a Content-Type it is read "
            "as JSON. Under Triton's binary tensor data extension, the JSON header (its length in "
            "the Inference-Header-Content-Length header) is followed by the raw tensor bytes."
        ),
        "content": {
            "application/json": {"schema": request},
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "examples": {"bytes": {"summary": examples.BINARY["application/octet-stream"]}},
            },
        },
    }
    operation.setdefault("parameters", []).append(
        {
            "name": "Inference-Header-Content-Length",
            "in": "header",
            "required": False,
            "schema": {"type": "integer", "minimum": 0},
            "description": "binary tensor extension: the length of the JSON before the tensors",
        }
    )


def _idempotency_header(operation: dict[str, Any]) -> None:
    operation.setdefault("parameters", []).append(
        {
            "name": IDEMPOTENCY_HEADER,
            "in": "header",
            "required": True,
            "description": rules.IDEMPOTENCY,
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": 255,
                "pattern": rules.IDEMPOTENCY_KEY_PATTERN,
            },
            "example": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        }
    )


def _schema_name(media: dict[str, Any]) -> str | None:
    ref = media.get("schema", {}).get("$ref", "")
    return ref.removeprefix(_SCHEMA_REF) if ref.startswith(_SCHEMA_REF) else None


def _add_examples(path: str, operation: dict[str, Any]) -> None:
    """An example in every JSON body that has none yet, from examples.py by schema."""
    for media in operation.get("requestBody", {}).get("content", {}).values():
        name = _schema_name(media)
        if "example" not in media and "examples" not in media and name in examples.REQUESTS:
            media["example"] = examples.REQUESTS[name]
    for status, response in operation["responses"].items():
        for kind, body in response.get("content", {}).items():
            if kind in examples.BINARY and "example" not in body and "examples" not in body:
                body["examples"] = {"bytes": {"summary": examples.BINARY[kind]}}
        media = response.get("content", {}).get("application/json")
        if media is None or "example" in media:
            continue
        if int(status) >= 400:
            media["example"] = examples.error_example(status)
        elif path == "/v1/openapi.json":
            media["example"] = examples.DOCUMENT
        elif (name := _schema_name(media)) in examples.RESPONSES:
            media["example"] = examples.RESPONSES[str(name)]


def _where_it_lives(document: dict[str, Any]) -> None:
    document["servers"] = SERVERS
    oauth2 = document["components"]["securitySchemes"][OAUTH_SCHEME]
    oauth2["flows"]["clientCredentials"]["tokenUrl"] = TOKEN_URL
    oauth2["description"] = OAUTH2_NOTE


def _finish(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    # The generator's own 422 schemas: every error here answers in the one body instead, and
    # leaving one that points at a removed one would break the document's references.
    for generated in ("HTTPValidationError", "ResponseValidationError", "ValidationError"):
        schemas.pop(generated, None)
    schemas["Error"] = ERROR_SCHEMA
    rules.declare(schemas)
    _where_it_lives(document)
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            operation["operationId"] = OPERATION_IDS.get((path, method), operation["operationId"])
            if path == RAW_PREDICT:
                _raw_predict_body(operation)
            if path in INFER_PATHS and method == "post":
                _infer_body(operation, schemas)
            if (path, method) in IDEMPOTENT_OPERATIONS:
                _idempotency_header(operation)
            responses = operation["responses"]
            responses.pop("422", None)
            if "204" in responses:  # No Content: the generator gives it a JSON null body
                responses["204"].pop("content", None)
            for status in error_statuses(method, operation):
                responses[status] = error_response(status)
            _add_examples(path, operation)
    streaming.add(document, OPERATION_IDS)
    links.add(document)
    return document


def served_document() -> dict[str, Any]:
    """The document as a stage serves it: the committed one, with the stage's own buckets in
    the artifact and dataset patterns."""
    from maas_contract.settings import HandlerSettings

    settings = HandlerSettings.from_env()
    served = copy.deepcopy(openapi_document())
    metrics = [d["Name"] for d in settings.metric_definitions]
    schemas = served["components"]["schemas"]
    rules.for_stage(schemas, settings.artifact_bucket, settings.data_bucket, metrics)
    return served


@cache
def openapi_document() -> dict[str, Any]:
    """Every group's routes in one resolver, described (each Lambda serves only its own); the
    streaming groups' ASGI routes are described from their own tables (streaming.py)."""
    app = APIGatewayRestResolver(enable_validation=True)
    for group in ROUTE_GROUPS:
        if group in STREAMING_GROUPS:
            continue
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
