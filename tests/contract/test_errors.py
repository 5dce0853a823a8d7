"""The one error body: handlers and API Gateway's own responses give the same fields."""

from __future__ import annotations

import json

import pytest

from maas_contract import errors


def _render(template: str, message: str, response_type: str, request_id: str) -> str:
    """What API Gateway does to the template: `messageString` is the message already quoted as
    a JSON string, the other two are substituted as they are.
    https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-template-reference.html
    """
    return (
        template.replace("$context.error.messageString", json.dumps(message))
        .replace("$context.error.responseType", response_type)
        .replace("$context.requestId", request_id)
    )


@pytest.mark.parametrize(
    "response",
    [errors.UNAUTHORIZED, errors.THROTTLED, errors.QUOTA_EXCEEDED, errors.INTEGRATION_TIMEOUT],
)
def test_the_gateway_response_template_renders_the_handlers_body(response):
    rendered = json.loads(
        _render(errors.GATEWAY_RESPONSE_TEMPLATE, response.message, response.response_type, "r-1")
    )
    assert (
        rendered
        == response.body("r-1")
        == errors.error_body(response.response_type, response.message, "r-1")
    )
    assert errors.is_error_body(rendered)


def test_a_message_with_quotes_stays_one_json_string():
    rendered = _render(errors.GATEWAY_RESPONSE_TEMPLATE, 'bad "x"\n', "BAD_REQUEST_BODY", "r")
    assert json.loads(rendered)["error"] == 'bad "x"\n'


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"code": "NotFound", "message": "m"}, "request_id": "r"},
        {"message": "Unauthorized"},
        {"error": "m", "code": "NotFound"},
        {"error": "m", "code": "NotFound", "request_id": "r", "extra": "x"},
    ],
)
def test_other_shapes_are_not_the_error_body(body):
    assert not errors.is_error_body(body)


def test_the_schema_requires_exactly_the_three_string_fields():
    schema = errors.ERROR_SCHEMA
    assert schema["required"] == ["error", "code", "request_id"]
    assert {name: spec["type"] for name, spec in schema["properties"].items()} == {
        "error": "string",
        "code": "string",
        "request_id": "string",
    }
    assert errors.is_error_body(schema["example"])
