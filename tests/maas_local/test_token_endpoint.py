"""The local token endpoint (Cognito-shaped) and the app client `maas local up` makes.

The token endpoint follows Cognito's documentation of its token endpoint: a form-encoded POST,
client authentication by HTTP Basic, `{"access_token", "expires_in", "token_type": "Bearer"}`
on success and HTTP 400 with `{"error": ...}` for a refusal (invalid_request, invalid_client,
unauthorized_client, unsupported_grant_type; invalid_scope for a scope the client lacks).
https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html
https://docs.aws.amazon.com/cognito/latest/developerguide/federation-endpoints-oauth-grants.html
"""

from __future__ import annotations

import base64
import logging
import stat

import pytest
import requests

from maas_local import lifecycle
from maas_local.config import StackPaths
from maas_local.tokens import APP_CLIENT_FILE, TOKEN_PATH, ensure_app_client


# The token endpoint, on the gateway in front of stand-in handlers.
@pytest.fixture
def client_gateway(running_gateway):
    client = ensure_app_client(running_gateway.keys_dir)
    return running_gateway, client


def _token_request(url: str, auth: tuple[str, str] | None, **form: str) -> requests.Response:
    return requests.post(url + TOKEN_PATH, data=form, auth=auth, timeout=10)


def _echo(gw, method: str, token: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", "x-api-key": gw.key.value}
    return requests.request(method, f"{gw.url}/v1/echo/smoke", headers=headers, timeout=10)


def test_client_credentials_token_is_accepted_by_the_gateway(client_gateway):
    gw, client = client_gateway

    answer = _token_request(
        gw.url, (client.client_id, client.client_secret), grant_type="client_credentials"
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"access_token", "expires_in", "token_type"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    # No scope asked for: every scope the client holds, so the admin-only route answers too.
    assert _echo(gw, "GET", body["access_token"]).status_code == 200
    assert _echo(gw, "POST", body["access_token"]).status_code == 200


def test_requested_scope_narrows_the_token(client_gateway):
    gw, client = client_gateway

    answer = _token_request(
        gw.url,
        (client.client_id, client.client_secret),
        grant_type="client_credentials",
        scope="maas/invoke",
    )

    token = answer.json()["access_token"]
    assert _echo(gw, "GET", token).status_code == 200
    assert _echo(gw, "POST", token).status_code == 403  # the admin-only route


@pytest.mark.parametrize(
    ("auth", "form", "error"),
    [
        ("wrong-secret", {"grant_type": "client_credentials"}, "invalid_client"),
        ("unknown-client", {"grant_type": "client_credentials"}, "invalid_client"),
        (None, {"grant_type": "client_credentials"}, "invalid_client"),
        ("good", {"grant_type": "password"}, "unsupported_grant_type"),
        ("good", {"grant_type": "authorization_code", "code": "x"}, "unauthorized_client"),
        ("good", {"scope": "maas/invoke"}, "invalid_request"),  # no grant_type
        ("good", {"grant_type": "client_credentials", "scope": "maas/root"}, "invalid_scope"),
        (
            "good",
            {"grant_type": "client_credentials", "scope": "maas/invoke openid"},
            "invalid_scope",
        ),
    ],
)
def test_token_endpoint_refuses_as_cognito_does(client_gateway, auth, form, error):
    gw, client = client_gateway
    credentials = {
        "good": (client.client_id, client.client_secret),
        "wrong-secret": (client.client_id, client.client_secret + "x"),
        "unknown-client": ("a" * 26, client.client_secret),
        None: None,
    }[auth]

    answer = _token_request(gw.url, credentials, **form)

    assert answer.status_code == 400
    assert answer.json() == {"error": error}
    assert answer.headers["Content-Type"].startswith("application/json")


def test_token_endpoint_takes_only_form_encoded_bodies(client_gateway):
    gw, client = client_gateway

    answer = requests.post(
        gw.url + TOKEN_PATH,
        json={"grant_type": "client_credentials"},
        auth=(client.client_id, client.client_secret),
        timeout=10,
    )

    assert answer.status_code == 400 and answer.json() == {"error": "invalid_request"}


def test_token_endpoint_never_logs_the_client_secret(client_gateway, caplog):
    gw, client = client_gateway
    caplog.set_level(logging.DEBUG)
    basic = base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()

    _token_request(
        gw.url, (client.client_id, client.client_secret), grant_type="client_credentials"
    )
    _token_request(gw.url, (client.client_id, "not-it"), grant_type="client_credentials")

    assert caplog.records, "the gateway logged nothing; the check would prove nothing"
    assert client.client_secret not in caplog.text and basic not in caplog.text


def test_local_app_client_is_private_stable_and_holds_the_cloud_scopes(tmp_path):
    from infra.client_auth import RESOURCE_SERVER

    first = ensure_app_client(tmp_path)
    again = ensure_app_client(tmp_path)

    assert again == first  # restarts keep the secret a user has saved
    assert stat.S_IMODE((tmp_path / APP_CLIENT_FILE).stat().st_mode) == 0o600
    assert first.scopes == (f"{RESOURCE_SERVER}/invoke", f"{RESOURCE_SERVER}/admin")
    assert len(first.client_id) == 26 and len(first.client_secret) >= 40


def test_status_says_where_the_client_secret_is_but_not_the_secret(tmp_path, capsys):
    paths = StackPaths(tmp_path).ensure()
    client = ensure_app_client(paths.keys)

    lifecycle._print_client_credentials(paths, {"api_url": "http://127.0.0.1:1"})

    shown = capsys.readouterr().out
    assert f"http://127.0.0.1:1{TOKEN_PATH}" in shown and client.client_id in shown
    assert str(paths.keys / APP_CLIENT_FILE) in shown
    assert client.client_secret not in shown
