"""The committed openapi.json is the one the routes generate, the API serves it, and it
declares the one error body on every error status."""

from __future__ import annotations

import json

import pytest

from handlers.meta import routes as meta
from handlers.meta import service as document
from maas_contract.errors import ERROR_SCHEMA
from maas_contract.names import MODEL_NAME_PATTERN
from maas_contract.routes import ADMIN_SCOPE, INVOKE_SCOPE, ROUTE_GROUPS, STREAMING_GROUPS
from tests.handlers.support import ROOT, api_event, call


def _operations(doc: dict) -> list[tuple[str, str, dict]]:
    return [(p, m, op) for p, ms in doc["paths"].items() for m, op in ms.items()]


def test_the_committed_document_matches_the_routes():
    committed = (ROOT / "openapi.json").read_text()

    assert committed == document.render(), "regenerate: python -m handlers.api > openapi.json"


def test_every_operation_names_its_group_and_its_scopes():
    operations = _operations(document.openapi_document())

    assert operations
    for path, method, operation in operations:
        assert operation["tags"][0] in ROUTE_GROUPS, (path, method)
        scopes = {s for option in operation["security"] for s in option["oauth2"]}
        group = operation["tags"][0]
        writes = method != "get" and group in ("registry", "deployments")
        admin_only = writes or group == "training_jobs" or path == "/v1/usage"
        assert scopes == ({ADMIN_SCOPE} if admin_only else {INVOKE_SCOPE, ADMIN_SCOPE}), path
        assert all("apiKey" in option for option in operation["security"])


def test_every_error_status_of_every_operation_declares_the_one_error_body():
    doc = document.openapi_document()

    assert doc["components"]["schemas"]["Error"] == ERROR_SCHEMA
    assert "GatewayError" not in doc["components"]["schemas"]
    for path, method, operation in _operations(doc):
        if operation["tags"][0] in STREAMING_GROUPS:
            continue
        errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
        assert {"400", "401", "403", "429", "500", "502", "504"} <= set(errors), (path, method)
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)


def test_the_openai_routes_declare_openais_error_object_and_the_gateways_where_it_answers():
    """OpenAI's clients read {"error": {"message", "type", "param", "code"}}; API Gateway's own
    answers (401, 403, 413, 429, 502, 504) carry the one gateway body before the function runs."""
    doc = document.openapi_document()
    own = {"$ref": "#/components/schemas/ErrorResponse"}
    either = {"oneOf": [own, {"$ref": "#/components/schemas/Error"}]}
    openai = [(p, m, op) for p, m, op in _operations(doc) if op["tags"][0] in STREAMING_GROUPS]

    assert {p for p, _, _ in openai} == {
        "/openai/v1/chat/completions",
        "/openai/v1/completions",
        "/openai/v1/models",
    }
    for path, method, operation in openai:
        errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
        assert {"400", "401", "403", "404", "429", "500", "502", "503", "504"} <= set(errors)
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            gateway = status in ("401", "403", "413", "429", "502", "504")
            assert schema == (either if gateway else own), (path, method, status)
    detail = doc["components"]["schemas"]["ErrorDetail"]
    assert set(detail["properties"]) == {"message", "type", "param", "code"}
    chat = doc["paths"]["/openai/v1/chat/completions"]["post"]["responses"]["200"]["content"]
    assert set(chat) == {"application/json", "text/event-stream"}


def test_model_names_in_the_document_follow_the_contracts_rule():
    doc = document.openapi_document()
    path_patterns = {
        p["schema"]["pattern"]
        for _, _, op in _operations(doc)
        for p in op.get("parameters", [])
        if p["name"] == "model"
    }
    body_pattern = doc["components"]["schemas"]["TrainingJobCreate"]["properties"]["model"]

    assert path_patterns == {MODEL_NAME_PATTERN}
    assert body_pattern["pattern"] == MODEL_NAME_PATTERN


def test_the_meta_route_serves_the_document_with_the_stages_own_buckets(
    aws_backend, lambda_context
):
    """The served document names this stage's buckets in its patterns, so a request that its
    schema accepts is one the stage accepts (the committed one cannot know them)."""
    import re

    reply = call(meta, api_event("GET", "/v1/openapi.json"), lambda_context)

    assert reply.status == 200
    committed = json.loads(document.render())
    schemas = reply.body["components"]["schemas"]
    artifact = schemas["VersionCreate"]["properties"]["artifact_uri"]["pattern"]
    train = schemas["Datasets"]["properties"]["train"]["pattern"]
    assert re.fullmatch(artifact, "s3://maas-test-artifacts/models/x/model.tar.gz")
    assert not re.fullmatch(artifact, "s3://someone-else/models/x/model.tar.gz")
    assert re.fullmatch(train, "s3://maas-test-data/digits/train/")
    assert not re.fullmatch(train, "s3://maas-test-artifacts/digits/train/")
    pretrained = schemas["Datasets"]["properties"]["pretrained"]["anyOf"][0]["pattern"]
    assert re.fullmatch(pretrained, "s3://maas-test-data/lm/base/")
    assert not re.fullmatch(pretrained, "s3://someone-else/lm/base/")
    assert schemas["MetricThreshold"]["properties"]["metric"]["enum"] == sorted(
        d["Name"] for d in json.loads((ROOT / "training" / "metric_definitions.json").read_text())
    )
    for patterned in (
        ("MetricThreshold", "metric"),
        ("VersionCreate", "artifact_uri"),
        ("Datasets", "train"),
        ("Datasets", "validation"),
        ("Datasets", "pretrained"),
    ):
        committed["components"]["schemas"][patterned[0]]["properties"][patterned[1]] = None
        schemas[patterned[0]]["properties"][patterned[1]] = None
    assert reply.body == committed  # nothing else differs


def test_the_committed_document_is_valid_openapi():
    """Generators and viewers resolve every $ref; one that points nowhere breaks them all."""
    from openapi_spec_validator import validate

    validate(json.loads((ROOT / "openapi.json").read_text()))


def _bodies(doc: dict) -> list[tuple[str, str, str, dict]]:
    """(operation, where, media type, media type object) of every request and response body."""
    found = []
    for path, method, op in _operations(doc):
        name = f"{method.upper()} {path}"
        for media, content in op.get("requestBody", {}).get("content", {}).items():
            found.append((name, "request", media, content))
        for status, response in op["responses"].items():
            for media, content in response.get("content", {}).items():
                found.append((name, status, media, content))
    return found


def test_every_operation_has_its_id_from_the_table():
    """A new route fails here until handlers/meta/service.py's OPERATION_IDS names it."""
    doc = document.openapi_document()

    for path, method, operation in _operations(doc):
        assert (path, method) in document.OPERATION_IDS, f"add {method} {path} to OPERATION_IDS"
        assert operation["operationId"] == document.OPERATION_IDS[(path, method)]


def test_operation_ids_are_unique_and_every_entry_names_a_route():
    """A stale entry (its route gone) fails too."""
    routes = {(path, method) for path, method, _ in _operations(document.openapi_document())}
    ids = list(document.OPERATION_IDS.values())

    assert len(ids) == len(set(ids))
    assert set(document.OPERATION_IDS) == routes
    assert document.OPERATION_IDS[("/v2/models/{model}/infer", "post")] == "modelInfer"
    assert document.OPERATION_IDS[("/v1/models/{model}/versions", "get")] == "listModelVersions"


def test_every_request_and_response_body_has_an_example():
    missing = [
        (op, where, media)
        for op, where, media, content in _bodies(document.openapi_document())
        if not content.get("example") and not content.get("examples")
    ]

    assert not missing, "add examples to handlers/meta/examples.py"


def test_every_example_is_valid_against_its_own_schema():
    """An example that the schema refuses would teach callers a request the API refuses."""
    from openapi_schema_validator import OAS31Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    doc = document.openapi_document()
    registry = Registry().with_resource("urn:doc", Resource(doc, DRAFT202012))
    for op, where, media, content in _bodies(doc):
        if "example" not in content:
            continue
        schema = content["schema"]
        if "$ref" in schema:
            schema = {"$ref": "urn:doc" + schema["$ref"]}
        errors = list(OAS31Validator(schema, registry=registry).iter_errors(content["example"]))
        assert not errors, (op, where, media, errors[0].message)


def test_the_digits_predict_example_is_one_image_of_64_features():
    predict = document.openapi_document()["paths"]["/v1/models/{model}/predict"]["post"]

    body = predict["requestBody"]["content"]["application/json"]["example"]

    assert sum(len(row) for row in body["instances"][0][0]) == 64


def test_servers_are_the_stages_invoke_url_template_and_the_local_stack():
    """A REST API stage's base URL is https://api-id.execute-api.region.amazonaws.com/stage/
    (https://docs.aws.amazon.com/apigateway/latest/developerguide/how-to-call-api.html)."""
    stage, local = document.openapi_document()["servers"]

    assert stage["url"] == "https://{restApiId}.execute-api.{region}.amazonaws.com/{stage}"
    assert set(stage["variables"]) == {"restApiId", "region", "stage"}
    assert all(v["default"] for v in stage["variables"].values())
    assert local["url"] == "http://127.0.0.1:{port}"


def test_the_token_url_is_an_absolute_cognito_token_endpoint():
    """A prefix domain is https://<prefix>.auth.<region>.amazoncognito.com and its token
    endpoint /oauth2/token (https://docs.aws.amazon.com/cognito/latest/developerguide/
    cognito-user-pools-assign-domain-prefix.html, .../token-endpoint.html)."""
    from urllib.parse import urlsplit

    oauth2 = document.openapi_document()["components"]["securitySchemes"]["oauth2"]
    url = urlsplit(oauth2["flows"]["clientCredentials"]["tokenUrl"])

    assert url.scheme == "https"
    assert url.hostname.endswith(".auth.eu-west-1.amazoncognito.com")
    assert url.path == "/oauth2/token"
    assert "TokenUrl" in oauth2["description"]


def test_a_no_content_answer_declares_no_body():
    for path, method, operation in _operations(document.openapi_document()):
        assert "content" not in operation["responses"].get("204", {}), (method, path)


def test_rules_the_handlers_enforce_in_code_are_in_the_schemas():
    """The document refuses what the validators refuse: reserved hyperparameters, dict keys
    outside their pattern, numbers DynamoDB cannot store, a malformed Idempotency-Key."""
    import re

    from openapi_schema_validator import OAS31Validator

    from handlers.shared.idempotency import check_key
    from handlers.training_jobs.schemas import TrainingJobCreate

    schemas = document.openapi_document()["components"]["schemas"]
    hyper = OAS31Validator(schemas["TrainingJobCreate"]["properties"]["hyperparameters"])
    metrics = OAS31Validator(schemas["VersionCreate"]["properties"]["metrics"])
    job = {"model": "digits", "recipe": "image-cnn", "datasets": {"train": "s3://b/x"}}

    assert hyper.is_valid({"epochs": 3, "lr": 0.01})
    for refused in ({"model-dir": "/x"}, {"sagemaker_program": "x"}, {"Epochs": 3}):
        assert not hyper.is_valid(refused), refused
        with pytest.raises(ValueError):
            TrainingJobCreate.model_validate({**job, "hyperparameters": refused})
    assert not metrics.is_valid({"accuracy": 1e-200})
    assert not metrics.is_valid({"bad key!": 1.0})
    assert metrics.is_valid({"accuracy": 0})
    idempotent = document.openapi_document()["paths"]["/v1/training-jobs"]["post"]
    key = next(p for p in idempotent["parameters"] if p["name"] == "Idempotency-Key")
    assert re.match(key["schema"]["pattern"], "abc-123")
    assert not re.match(key["schema"]["pattern"], "has space")
    with pytest.raises(Exception):  # noqa: B017 - the handler's own refusal, an ApiError
        check_key("has space")
