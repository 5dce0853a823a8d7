"""The committed openapi.json is the one the routes generate, the API serves it, and it
declares the one error body on every error status."""

from __future__ import annotations

import json

from handlers.meta import routes as meta
from handlers.meta import service as document
from maas_contract.errors import ERROR_SCHEMA
from maas_contract.names import MODEL_NAME_PATTERN
from maas_contract.routes import ADMIN_SCOPE, INVOKE_SCOPE, ROUTE_GROUPS
from tests.handlers.support import ROOT, api_event, call


def _operations(doc: dict) -> list[tuple[str, str, dict]]:
    return [(p, m, op) for p, ms in doc["paths"].items() for m, op in ms.items()]


def test_the_committed_document_matches_the_routes():
    committed = (ROOT / "openapi.json").read_text()

    assert committed == document.render(), "regenerate: python -m handlers.api > openapi.json"


def test_every_operation_names_its_group_and_its_scopes():
    operations = _operations(document.openapi_document())

    assert len(operations) == 19
    for path, method, operation in operations:
        assert operation["tags"][0] in ROUTE_GROUPS, (path, method)
        scopes = {s for option in operation["security"] for s in option["oauth2"]}
        group = operation["tags"][0]
        writes = method != "get" and group in ("registry", "deployments")
        admin_only = writes or group == "training_jobs"
        assert scopes == ({ADMIN_SCOPE} if admin_only else {INVOKE_SCOPE, ADMIN_SCOPE}), path
        assert all("apiKey" in option for option in operation["security"])


def test_every_error_status_of_every_operation_declares_the_one_error_body():
    doc = document.openapi_document()

    assert doc["components"]["schemas"]["Error"] == ERROR_SCHEMA
    assert "GatewayError" not in doc["components"]["schemas"]
    for path, method, operation in _operations(doc):
        errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
        assert {"400", "401", "403", "429", "500", "502", "504"} <= set(errors), (path, method)
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)


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


def test_the_meta_route_serves_the_generated_document(aws_backend, lambda_context):
    reply = call(meta, api_event("GET", "/v1/openapi.json"), lambda_context)

    assert reply.status == 200
    assert reply.body == json.loads(document.render())


def test_the_committed_document_is_valid_openapi():
    """Generators and viewers resolve every $ref; one that points nowhere breaks them all."""
    from openapi_spec_validator import validate

    validate(json.loads((ROOT / "openapi.json").read_text()))
