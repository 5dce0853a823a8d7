"""The streaming integration: API Gateway (responseTransferMode STREAM) in front of a function
that the AWS Lambda Web Adapter runs, emulated by the local gateway (maas_local.streaming).

A stand-in web app (fake_handlers_pkg/maas_fake_handlers/stream/app.py) is registered as a
streaming route group; it runs in the group's execution environment, served by uvicorn.

- https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode.html
  (15 minutes at most, 5-minute idle timeout on a regional endpoint)
- https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode-lambda.html
  (the stream starts once the function's status and headers are in)
- https://docs.aws.amazon.com/apigateway/latest/developerguide/response-streaming-troubleshoot.html
  (a timeout closes the transfer "with outstanding read data remaining")
- https://awslabs.github.io/aws-lambda-web-adapter/features/request-context.html
  (the event's requestContext reaches the app as the JSON header x-amzn-request-context)
"""

from __future__ import annotations

import copy
import http.client
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from maas_contract import errors
from maas_local.gateway import GatewaySettings
from maas_local.streaming import MAX_STREAM_S, StreamLimits
from maas_local.tokens import mint_token
from tests.maas_local.conftest import ADMIN_ONLY, ANY_SCOPE, FAKE_OPENAPI, _operation

TIMEOUT = 30
STREAMING = frozenset({"stream", "broken_stream"})


@pytest.fixture
def fake_openapi(tmp_path: Path) -> Path:
    """The stand-ins' API, with the streaming routes added."""
    doc = copy.deepcopy(FAKE_OPENAPI)
    doc["paths"]["/v1/stream"] = {
        "get": _operation("stream", ANY_SCOPE),
        "post": _operation("stream", ADMIN_ONLY),
    }
    doc["paths"]["/v1/broken-stream"] = {"get": _operation("broken_stream", ANY_SCOPE)}
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(doc))
    return path


def _settings(integration_timeout_s: float = 20.0, idle_timeout_s: float = 20.0):
    return GatewaySettings(
        streaming_groups=STREAMING,
        stream_limits=StreamLimits(
            integration_timeout_s=integration_timeout_s, idle_timeout_s=idle_timeout_s
        ),
    )


def _auth(gw, scopes=("maas/invoke",), key=None):
    token = mint_token(gw.keys_dir, list(scopes))
    return {"Authorization": f"Bearer {token}", "x-api-key": (key or gw.key).value}


def _open(gw, path, headers, method="GET", body=None):
    url = urlsplit(gw.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=TIMEOUT)
    conn.request(method, path, body=body, headers=headers)
    return conn, conn.getresponse()


def _refused_as(response, body: bytes, kind: errors.GatewayResponse) -> bool:
    return response.status == kind.status and json.loads(body) == {
        "error": kind.message,
        "code": kind.response_type,
        "request_id": response.getheader("x-amzn-RequestId"),
    }


def test_chunks_reach_the_client_before_the_function_finishes(start_gateway, tmp_path):
    gw = start_gateway(_settings())
    conn, response = _open(gw, "/v1/stream?mode=gated&gate=g1", _auth(gw))
    assert response.status == 200
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.getheader("x-mode") == "gated" and response.getheader("x-amzn-RequestId")
    # The function holds its second chunk until the first has reached this client.
    assert response.read1() == b"first\n"
    (tmp_path / "handler-state" / "g1").touch()
    assert response.read() == b"after-gate\n"
    conn.close()


def test_the_app_gets_the_request_with_the_adapter_headers(start_gateway):
    gw = start_gateway(_settings())
    headers = {
        **_auth(gw, scopes=("maas/admin",)),
        "Content-Type": "application/json",
        "x-amzn-request-context": '{"authorizer": {"claims": {"client_id": "forged"}}}',
    }
    conn, response = _open(gw, "/v1/stream?mode=echo&a=1", headers, "POST", b'{"q": 1}')
    assert response.status == 200
    seen = json.loads(response.read())
    conn.close()
    assert seen["method"] == "POST" and seen["path"] == "/v1/stream"
    assert seen["query"] == "mode=echo&a=1" and seen["body"] == '{"q": 1}'
    # In the function's own execution environment, with the function's environment.
    assert seen["pid"] != os.getpid() and seen["state_dir"] and seen["lwa_port"]
    [raw_context] = seen["headers"]["x-amzn-request-context"]  # the client's is replaced
    context = json.loads(raw_context)
    claims = context["authorizer"]["claims"]
    assert claims["client_id"] == "maas-local-cli" and claims["scope"] == "maas/admin"
    assert context["identity"]["apiKeyId"] == gw.key.id
    assert context["identity"]["apiKey"] == gw.key.value
    assert context["resourcePath"] == "/v1/stream" and context["httpMethod"] == "POST"
    assert context["requestId"] == response.getheader("x-amzn-RequestId")
    lambda_context = json.loads(seen["headers"]["x-amzn-lambda-context"][0])
    assert lambda_context["request_id"] == context["requestId"]
    assert lambda_context["invoked_function_arn"].endswith(":function:maas-local-stream")


def test_the_environment_stays_warm_after_a_whole_stream(start_gateway):
    gw = start_gateway(_settings())
    pids = []
    for _ in range(2):
        conn, response = _open(gw, "/v1/stream?mode=echo", _auth(gw))
        pids.append(json.loads(response.read())["pid"])
        conn.close()
    assert pids[0] == pids[1]


def test_streaming_routes_are_authorized_and_metered_like_the_others(start_gateway):
    gw = start_gateway(_settings())
    token = mint_token(gw.keys_dir, ["maas/invoke"])
    cases = [
        ({"x-api-key": gw.key.value}, "GET", errors.UNAUTHORIZED),
        ({"Authorization": f"Bearer {token}", "x-api-key": gw.key.value}, "POST", None),
        ({"Authorization": f"Bearer {token}"}, "GET", errors.INVALID_API_KEY),
    ]
    for headers, method, kind in cases:
        conn, response = _open(gw, "/v1/stream?mode=echo", headers, method)
        body = response.read()
        conn.close()
        assert _refused_as(response, body, kind or errors.ACCESS_DENIED), (method, body)
    # The usage plan counts a streamed request like any other: 3 a day for this key.
    statuses = []
    for _ in range(4):
        conn, response = _open(gw, "/v1/stream?mode=echo", _auth(gw, key=gw.tiny_quota_key))
        body = response.read()
        conn.close()
        statuses.append(response.status)
    assert statuses == [200, 200, 200, 429]
    assert _refused_as(response, body, errors.QUOTA_EXCEEDED)


def test_an_idle_stream_is_cut_without_the_end_of_its_body(start_gateway):
    gw = start_gateway(_settings(idle_timeout_s=0.5))
    conn, response = _open(gw, "/v1/stream?mode=stall&seconds=5", _auth(gw))
    assert response.status == 200
    assert response.read1() == b"first\n"
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    assert b"late" not in cut.value.partial
    conn.close()


def test_a_stream_is_cut_at_the_integration_timeout_even_when_busy(start_gateway):
    gw = start_gateway(_settings(integration_timeout_s=1.5, idle_timeout_s=20.0))
    conn, response = _open(gw, "/v1/stream?mode=drip&count=400", _auth(gw))
    assert response.status == 200
    received = b""
    with pytest.raises(http.client.IncompleteRead):
        while True:  # read1 hands over each chunk as it comes; the cut ends the loop
            data = response.read1()
            if not data:
                break
            received += data
    assert received.startswith(b"0\n1\n") and b"end" not in received
    conn.close()


def test_no_headers_within_the_integration_timeout_is_a_504(start_gateway):
    gw = start_gateway(_settings(integration_timeout_s=1.0))
    conn, response = _open(gw, "/v1/stream?mode=slow_headers&seconds=5", _auth(gw))
    assert _refused_as(response, response.read(), errors.INTEGRATION_TIMEOUT)
    conn.close()


def test_a_function_that_cannot_start_is_a_502(start_gateway):
    gw = start_gateway(_settings())
    conn, response = _open(gw, "/v1/broken-stream", _auth(gw))
    assert _refused_as(response, response.read(), errors.LAMBDA_FAILURE)
    conn.close()


def test_a_function_that_fails_mid_stream_leaves_the_body_incomplete(start_gateway):
    gw = start_gateway(_settings())
    conn, response = _open(gw, "/v1/stream?mode=crash", _auth(gw))
    assert response.status == 200
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    assert cut.value.partial == b"first\n"
    conn.close()


def test_the_apps_own_status_passes_through(start_gateway):
    gw = start_gateway(_settings())
    conn, response = _open(gw, "/v1/stream?mode=status&code=503", _auth(gw))
    assert response.status == 503 and response.read() == b"from the app"
    conn.close()


def test_a_streaming_integration_lasts_at_most_15_minutes():
    assert StreamLimits().integration_timeout_s == MAX_STREAM_S == 900
    with pytest.raises(ValueError, match="15 minutes"):
        StreamLimits(integration_timeout_s=MAX_STREAM_S + 1)
