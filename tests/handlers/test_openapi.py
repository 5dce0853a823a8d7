"""The committed openapi.json is the one the routes generate, and the API serves it."""

from __future__ import annotations

import json

from handler_support import ROOT, api_event, call

from handlers import api, meta
from handlers.web import ADMIN_SCOPE, INVOKE_SCOPE

GROUPS = {"predict", "registry", "deployments", "training_jobs", "meta"}


def test_the_committed_document_matches_the_routes():
    committed = (ROOT / "openapi.json").read_text()

    assert committed == api.render(), "regenerate: python -m handlers.api > openapi.json"


def test_every_operation_names_its_group_and_its_scopes():
    document = api.openapi_document()
    operations = [(p, m, op) for p, ms in document["paths"].items() for m, op in ms.items()]

    assert len(operations) == 19
    for path, method, operation in operations:
        assert operation["tags"][0] in GROUPS, (path, method)
        scopes = {s for option in operation["security"] for s in option["oauth2"]}
        group = operation["tags"][0]
        writes = method != "get" and group in ("registry", "deployments")
        admin_only = writes or group == "training_jobs"
        assert scopes == ({ADMIN_SCOPE} if admin_only else {INVOKE_SCOPE, ADMIN_SCOPE}), path
        assert all("apiKey" in option for option in operation["security"])


def test_the_meta_route_serves_the_generated_document(aws_backend, lambda_context):
    reply = call(meta, api_event("GET", "/v1/openapi.json"), lambda_context)

    assert reply.status == 200
    assert reply.body == json.loads(api.render())


def test_the_committed_document_is_valid_openapi():
    """Generators and viewers resolve every $ref; one that points nowhere breaks them all."""
    from openapi_spec_validator import validate

    validate(json.loads((ROOT / "openapi.json").read_text()))
