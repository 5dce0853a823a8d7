"""The local gateway reads a body as binary or text exactly as API Gateway does: from the API's
binaryMediaTypes and the request's Content-Type (a request without one is application/json),
and it decodes a base64 answer only when the request's first Accept type is binary.
https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-payload-encodings.html
https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-payload-encodings-workflow.html
https://docs.aws.amazon.com/apigateway/latest/developerguide/integration-passthrough-behaviors.html
"""

from __future__ import annotations

import base64

import pytest

from maas_contract.routes import BINARY_MEDIA_TYPES, Route
from maas_local.gateway import GatewaySettings
from maas_local.proxy_event import (
    Caller,
    HttpRequest,
    build_event,
    matches_binary,
    parse_proxy_response,
)

ROUTE = Route(method="POST", path="/v2/models/{model}/infer", group="predict")
CALLER = Caller(claims=None, api_key=None, api_key_id=None)
TENSORS = b'{"inputs": []}' + bytes(range(256))  # JSON, then raw bytes that are not UTF-8


def event_for(body: bytes, binary_types, content_type: str | None = None) -> dict:
    headers = [("Content-Type", content_type)] if content_type else []
    request = HttpRequest("POST", "/v2/models/m/infer", "", headers, body, "127.0.0.1")
    return build_event(request, ROUTE, {"model": "m"}, CALLER, "rid", binary_types)


def test_the_gateway_uses_the_apis_binary_media_types():
    assert GatewaySettings().binary_media_types == BINARY_MEDIA_TYPES == ("*/*",)


@pytest.mark.parametrize(
    "header,types,binary",
    [
        (None, ("*/*",), True),
        (None, ("application/json",), True),  # no Content-Type reads as application/json
        (None, ("application/x-npy",), False),
        ("application/x-npy; v=1", ("application/x-npy",), True),
        ("image/png", ("image/*",), True),
        ("IMAGE/PNG", ("image/*",), True),
        ("text/plain", ("image/*",), False),
        ("application/x-npy, application/json", ("application/x-npy",), True),  # first type
        ("application/json, application/x-npy", ("application/x-npy",), False),
    ],
)
def test_media_types_match_as_api_gateway_matches_them(header, types, binary):
    assert matches_binary(header, types) is binary


def test_triton_binary_tensors_without_a_content_type_arrive_intact_under_the_apis_types():
    event = event_for(TENSORS, BINARY_MEDIA_TYPES)

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == TENSORS


def test_a_body_whose_type_is_not_binary_arrives_as_text():
    event = event_for(b'{"a": 1}', ("application/x-npy",), "application/json")

    assert (event["isBase64Encoded"], event["body"]) == (False, '{"a": 1}')


def test_a_base64_answer_is_decoded_only_for_a_binary_accept():
    answer = {
        "statusCode": 200,
        "body": base64.b64encode(b"\x00\xff").decode(),
        "isBase64Encoded": True,
    }

    assert parse_proxy_response(answer, True).body == b"\x00\xff"
    assert parse_proxy_response(answer, False).body == answer["body"].encode()
