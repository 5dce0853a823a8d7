"""The local gateway enforces what API Gateway enforces and hands handlers a REST proxy event.

Its own refusals carry the one error body of maas_contract.errors, with the status and the
`code` ($context.error.responseType) that API Gateway's gateway responses give:
https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html
"""

from __future__ import annotations

import base64
import time

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from maas_contract import errors
from maas_local.gateway import MAX_PAYLOAD_BYTES
from maas_local.tokens import IssuerConfig, mint_token

TIMEOUT = 30


def _headers(gw, scopes=("maas/invoke",), key=None, token=None):
    token = token or mint_token(gw.keys_dir, list(scopes))
    return {"Authorization": f"Bearer {token}", "x-api-key": (key or gw.key).value}


def _refused_as(response, kind: errors.GatewayResponse) -> bool:
    """The response is API Gateway's `kind` refusal, in the one error body, for this request."""
    request_id = response.headers["x-amzn-RequestId"]
    return response.status_code == kind.status and response.json() == {
        "error": kind.message,
        "code": kind.response_type,
        "request_id": request_id,
    }


def _forge(gw, **overrides):
    """A token signed with the stack's own key, with some claims changed."""
    config = IssuerConfig.load(gw.keys_dir)
    private = load_pem_private_key((gw.keys_dir / "signing_key.pem").read_bytes(), None)
    now = int(time.time())
    claims = {
        "sub": "c",
        "client_id": "c",
        "aud": config.audience,
        "iss": config.issuer,
        "token_use": "access",
        "scope": "maas/invoke",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(overrides)
    kid = config.jwks["keys"][0]["kid"]
    return jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid})


def test_handler_receives_a_rest_proxy_event_with_claims_and_parameters(running_gateway):
    gw = running_gateway
    response = requests.get(
        f"{gw.url}/v1/echo/digits?a=1&a=2&b=x", headers=_headers(gw), timeout=TIMEOUT
    )
    assert response.status_code == 200
    event = response.json()["event"]
    assert event["resource"] == "/v1/echo/{name}"
    assert event["path"] == "/v1/echo/digits"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"name": "digits"}
    assert event["queryStringParameters"] == {"a": "2", "b": "x"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x"]}
    assert event["headers"]["x-api-key"] == gw.key.value
    assert event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "local" and context["requestId"]
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["apiKey"] == gw.key.value
    claims = context["authorizer"]["claims"]
    assert claims["scope"] == "maas/invoke" and claims["token_use"] == "access"
    assert all(isinstance(v, str) for v in claims.values())
    assert response.headers["x-amzn-RequestId"] == context["requestId"]
    assert response.json()["remaining_ms"] > 0


def test_literal_resource_wins_over_parameter_and_greedy_takes_the_rest(running_gateway):
    gw = running_gateway
    literal = requests.get(f"{gw.url}/v1/echo/latest", headers=_headers(gw), timeout=TIMEOUT)
    assert literal.json() == {"bytes": 0}
    greedy = requests.get(f"{gw.url}/v1/files/a/b/c.txt", headers=_headers(gw), timeout=TIMEOUT)
    assert greedy.json()["event"]["pathParameters"] == {"key": "a/b/c.txt"}


def test_binary_body_arrives_base64_encoded_and_binary_response_is_decoded(running_gateway):
    gw = running_gateway
    payload = bytes(range(256)) * 4
    headers = _headers(gw) | {"Content-Type": "application/x-npy"}
    sized = requests.post(f"{gw.url}/v1/size", data=payload, headers=headers, timeout=TIMEOUT)
    assert sized.json() == {"bytes": len(payload)}
    echoed = requests.post(
        f"{gw.url}/v1/echo/x",
        data=payload,
        headers=headers | _headers(gw, ["maas/admin"]),
        timeout=TIMEOUT,
    ).json()["event"]
    assert echoed["isBase64Encoded"] is True
    assert base64.b64decode(echoed["body"]) == payload
    binary = requests.get(f"{gw.url}/v1/binary", headers=_headers(gw), timeout=TIMEOUT)
    assert binary.content == bytes(range(256))


def test_multi_value_response_headers_are_all_sent(running_gateway):
    gw = running_gateway
    response = requests.get(f"{gw.url}/v1/echo/a", headers=_headers(gw), timeout=TIMEOUT)
    assert response.headers["X-Echo"] == "one, two"


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda gw: None, id="no-token"),
        pytest.param(lambda gw: "not-a-jwt", id="garbage"),
        pytest.param(lambda gw: _forge(gw, exp=int(time.time()) - 60), id="expired"),
        pytest.param(lambda gw: _forge(gw, aud="someone-else"), id="wrong-audience"),
        pytest.param(lambda gw: _forge(gw, iss="https://evil.example"), id="wrong-issuer"),
        pytest.param(lambda gw: _forge(gw, token_use="id"), id="id-token"),
    ],
)
def test_bad_or_missing_token_gets_401_unauthorized(running_gateway, make_token):
    gw = running_gateway
    token = make_token(gw)
    headers = {"x-api-key": gw.key.value}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = requests.get(f"{gw.url}/v1/echo/a", headers=headers, timeout=TIMEOUT)
    assert response.status_code == 401
    assert response.json() == {
        "error": "Unauthorized",
        "code": "UNAUTHORIZED",
        "request_id": response.headers["x-amzn-RequestId"],
    }
    assert response.headers["x-amzn-ErrorType"] == "UnauthorizedException"


def test_token_signed_by_another_key_gets_401(running_gateway):
    gw = running_gateway
    config = IssuerConfig.load(gw.keys_dir)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {
        "sub": "c",
        "aud": config.audience,
        "iss": config.issuer,
        "token_use": "access",
        "scope": "maas/admin",
        "exp": now + 600,
    }
    token = jwt.encode(
        claims, stranger, algorithm="RS256", headers={"kid": config.jwks["keys"][0]["kid"]}
    )
    response = requests.get(
        f"{gw.url}/v1/echo/a", headers=_headers(gw, token=token), timeout=TIMEOUT
    )
    assert response.status_code == 401


def test_token_without_the_routes_scope_gets_403(running_gateway):
    gw = running_gateway
    response = requests.post(f"{gw.url}/v1/echo/a", json={}, headers=_headers(gw), timeout=TIMEOUT)
    assert _refused_as(response, errors.ACCESS_DENIED)
    assert response.json()["error"] == "User is not authorized to access this resource"
    admin = requests.post(
        f"{gw.url}/v1/echo/a", json={}, headers=_headers(gw, ["maas/admin"]), timeout=TIMEOUT
    )
    assert admin.status_code == 200


@pytest.mark.parametrize("key", [None, "wrong-key"], ids=["missing", "unknown"])
def test_missing_or_unknown_api_key_gets_403_forbidden(running_gateway, key):
    gw = running_gateway
    headers = {"Authorization": f"Bearer {mint_token(gw.keys_dir, ['maas/invoke'])}"}
    if key:
        headers["x-api-key"] = key
    response = requests.get(f"{gw.url}/v1/echo/a", headers=headers, timeout=TIMEOUT)
    assert _refused_as(response, errors.INVALID_API_KEY)
    assert response.json()["error"] == "Forbidden" and response.json()["code"] == "INVALID_API_KEY"


def test_key_over_its_quota_gets_429_limit_exceeded(running_gateway):
    gw = running_gateway
    headers = _headers(gw, key=gw.tiny_quota_key)
    codes = [
        requests.get(f"{gw.url}/v1/echo/a", headers=headers, timeout=TIMEOUT).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    last = requests.get(f"{gw.url}/v1/echo/a", headers=headers, timeout=TIMEOUT)
    assert _refused_as(last, errors.QUOTA_EXCEEDED)
    assert last.json()["error"] == "Limit Exceeded"
    other = requests.get(f"{gw.url}/v1/echo/a", headers=_headers(gw), timeout=TIMEOUT)
    assert other.status_code == 200


def test_key_over_its_rate_gets_429_too_many_requests(running_gateway):
    gw = running_gateway
    headers = _headers(gw, key=gw.narrow_rate_key)
    responses = [
        requests.get(f"{gw.url}/v1/echo/a", headers=headers, timeout=TIMEOUT) for _ in range(3)
    ]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert _refused_as(responses[-1], errors.THROTTLED)
    assert responses[-1].json()["error"] == "Too Many Requests"


def test_bodies_past_api_gateways_10_mb_or_lambdas_6_mb_event_get_413(running_gateway):
    """API Gateway takes bodies of up to 10 MB; Lambda's synchronous Invoke takes an event of at
    most 6 MB (https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html), and a binary body
    travels base64-encoded in it, so about 4.7 MB is the most that reaches a handler."""
    gw = running_gateway
    headers = _headers(gw) | {"Content-Type": "application/octet-stream"}

    def post(size: int) -> requests.Response:
        body = b"\0" * size
        return requests.post(f"{gw.url}/v1/size", data=body, headers=headers, timeout=TIMEOUT)

    fits = post(4_500_000)  # 6.0 MB in base64, with the event around it: under 6,291,456
    assert fits.status_code == 200 and fits.json() == {"bytes": 4_500_000}
    for size in (4_800_000, MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES + 1):
        over = post(size)
        assert _refused_as(over, errors.REQUEST_TOO_LARGE), size
        assert over.json()["code"] == "REQUEST_TOO_LARGE"


def test_a_chunked_body_gets_411_and_the_connection_closes(running_gateway):
    gw = running_gateway
    headers = _headers(gw) | {"Content-Type": "application/octet-stream"}

    response = requests.post(
        f"{gw.url}/v1/size", data=iter([b"ab", b"cd"]), headers=headers, timeout=TIMEOUT
    )

    assert response.status_code == 411
    assert response.json() == {
        "error": "Length Required",
        "code": "DEFAULT_4XX",
        "request_id": response.headers["x-amzn-RequestId"],
    }
    assert response.headers["Connection"] == "close"


def test_handler_slower_than_the_integration_timeout_gets_504(running_gateway):
    gw = running_gateway
    response = requests.get(f"{gw.url}/v1/slow?seconds=2", headers=_headers(gw), timeout=TIMEOUT)
    assert _refused_as(response, errors.INTEGRATION_TIMEOUT)
    assert response.json()["error"] == "Endpoint request timed out"


@pytest.mark.parametrize("mode", ["raise", "malformed"])
def test_failing_handler_gets_502_internal_server_error(running_gateway, mode):
    gw = running_gateway
    response = requests.get(
        f"{gw.url}/v1/broken?mode={mode}", headers=_headers(gw), timeout=TIMEOUT
    )
    assert _refused_as(response, errors.LAMBDA_FAILURE)
    assert response.json()["error"] == "Internal server error"


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/nowhere"), ("DELETE", "/v1/echo/a")])
def test_unknown_resource_or_method_gets_403_missing_authentication_token(
    running_gateway, method, path
):
    gw = running_gateway
    response = requests.request(method, f"{gw.url}{path}", headers=_headers(gw), timeout=TIMEOUT)
    assert _refused_as(response, errors.MISSING_AUTHENTICATION_TOKEN)
    assert response.json()["code"] == "MISSING_AUTHENTICATION_TOKEN"


def test_client_retries_a_failed_write_with_the_same_idempotency_key(running_gateway):
    from maas.client import Client

    gw = running_gateway
    token = mint_token(gw.keys_dir, ["maas/invoke"])
    api = Client.connect(gw.url, gw.key.value, token)

    answer = api.call("POST", "/v1/flaky", json={}).json()

    assert answer["attempts"] == 2
    assert len(answer["key"]) == 36  # one uuid, sent on both attempts
