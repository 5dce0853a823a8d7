"""The document's links (handlers/meta/links.py) lead somewhere: each names an operation of the
document, fills parameters that operation has, from fields its source answer has."""

from __future__ import annotations

from typing import Any

from handlers.meta import links
from handlers.meta import service as document

_REF = "#/components/schemas/"


def _links(doc: dict) -> list[tuple[str, str, str, str, dict]]:
    """(path, method, status, name, link) of every link in the document."""
    return [
        (path, method, status, name, link)
        for path, item in doc["paths"].items()
        for method, operation in item.items()
        for status, response in operation["responses"].items()
        for name, link in response.get("links", {}).items()
    ]


def _operation(doc: dict, operation_id: str) -> dict:
    (found,) = [
        op
        for item in doc["paths"].values()
        for op in item.values()
        if op["operationId"] == operation_id
    ]
    return found


def _field(doc: dict, schema: dict[str, Any], pointer: str) -> dict[str, Any] | None:
    """The schema of the field a JSON pointer names in a body of `schema`, or None."""
    for part in pointer.strip("/").split("/"):
        if "$ref" in schema:
            schema = doc["components"]["schemas"][schema["$ref"].removeprefix(_REF)]
        if part.isdigit():
            schema = schema.get("items", {})
        else:
            schema = schema.get("properties", {}).get(part)
            if schema is None:
                return None
    return schema


def test_every_link_of_the_table_is_in_the_document():
    doc = document.openapi_document()
    written = {(path, method, status, name) for path, method, status, name, _ in _links(doc)}

    for link in links.LINKS:
        assert (*link.source, link.name) in written, link


def test_every_link_fills_parameters_its_target_has_from_fields_its_answer_has():
    doc = document.openapi_document()

    for path, method, status, name, link in _links(doc):
        target = _operation(doc, link["operationId"])
        required = {p["name"] for p in target.get("parameters", []) if p["in"] == "path"}
        answer = doc["paths"][path][method]["responses"][status]
        schema = answer["content"]["application/json"]["schema"]
        where = f"{method} {path} {status} {name}"
        assert set(link["parameters"]) == required, where
        for expression in link["parameters"].values():
            source, _, pointer = expression.partition("#")
            assert source == "$response.body", where
            assert _field(doc, schema, pointer) is not None, (where, pointer)


def test_a_stopped_job_is_linked_to_its_record_which_it_keeps():
    """DELETE of a training job stops it: the link and the description say the job is still
    there to read, which the fuzz run relies on."""
    doc = document.openapi_document()
    stop = doc["paths"]["/v1/training-jobs/{job_id}"]["delete"]

    assert stop["responses"]["202"]["links"]["GetTrainingJob"]["operationId"] == "getTrainingJob"
    assert "keeps its record" in stop["description"]
