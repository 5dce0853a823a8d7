"""A deployed stage's token by OAuth2's client-credentials grant, as Cognito's token endpoint
takes it (https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html): a
form POST of grant_type=client_credentials with the client's id and secret as HTTP Basic auth,
answered with access_token and expires_in; fetched again before it expires. Settings come from
flags, the environment, or a named profile in an owner-only config file."""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from maas import ApiError, Client
from maas.credentials import Credentials
from tests.client.stub_api import Reply, Request, stub_api


def token_endpoint(expires_in: int, issued: list[Request]):
    def answer(request: Request) -> Reply:
        if request.path == "/oauth2/token":
            issued.append(request)
            body = {"access_token": f"tok-{len(issued)}", "expires_in": expires_in}
            return Reply(200, {**body, "token_type": "Bearer"})
        return Reply(200, {"items": [], "seen": request.headers.get("Authorization")})

    return answer


def test_the_grant_is_a_basic_auth_form_post_and_the_token_is_reused_until_near_its_end():
    issued: list[Request] = []
    with stub_api(token_endpoint(3600, issued)) as api:
        creds = Credentials.client_credentials(
            api.url, "key", f"{api.url}/oauth2/token", "client-1", "s3cret", "maas/invoke"
        )
        first, second = creds.token(), creds.token()

    (grant,) = issued
    assert grant.method == "POST"
    assert (
        grant.headers["Authorization"] == "Basic " + base64.b64encode(b"client-1:s3cret").decode()
    )
    assert grant.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(grant.body.decode()) == {
        "grant_type": ["client_credentials"],
        "scope": ["maas/invoke"],
    }
    assert first == second == "tok-1"


def test_a_token_about_to_expire_is_fetched_again_before_a_call():
    issued: list[Request] = []
    with stub_api(token_endpoint(30, issued)) as api:  # inside the 60 s refresh margin
        client = Client(
            Credentials.client_credentials(
                api.url, "key", f"{api.url}/oauth2/token", "client-1", "s3cret"
            )
        )
        client.models()
        client.models()

    assert len(issued) == 2
    calls = [r for r in api.requests if r.path.startswith("/v1/models")]
    assert [c.headers["Authorization"] for c in calls] == ["Bearer tok-1", "Bearer tok-2"]


def test_a_refused_grant_is_an_api_error_with_the_endpoints_reason():
    def refuse(request: Request) -> Reply:
        return Reply(400, {"error": "invalid_client"})

    with stub_api(refuse) as api:
        creds = Credentials.client_credentials(
            api.url, "key", f"{api.url}/oauth2/token", "client-1", "wrong"
        )
        with pytest.raises(ApiError) as refused:
            creds.token()

    assert refused.value.status == 400 and "invalid_client" in str(refused.value)


def _config(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "maas" / "config"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_named_profile_gives_the_url_key_and_client_credentials(tmp_path, monkeypatch):
    issued: list[Request] = []
    with stub_api(token_endpoint(3600, issued)) as api:
        _config(
            tmp_path,
            f"[prod]\napi_url = {api.url}/\napi_key = k-prod\n"
            f"token_url = {api.url}/oauth2/token\nclient_id = c\nclient_secret = s\n",
        )
        monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
        for name in ("MAAS_API_URL", "MAAS_API_KEY", "MAAS_TOKEN", "MAAS_PROFILE", "MAAS_CONFIG"):
            monkeypatch.delenv(name, raising=False)

        creds = Credentials.resolve(tmp_path / "no-stack", profile="prod")
        Client(creds).models()

    assert (creds.api_url, creds.api_key, creds.local) == (api.url, "k-prod", False)
    call = [r for r in api.requests if r.path.startswith("/v1/models")][0]
    assert call.headers["x-api-key"] == "k-prod"
    assert call.headers["Authorization"] == "Bearer tok-1"


def test_the_environment_gives_client_credentials_too(monkeypatch, tmp_path):
    issued: list[Request] = []
    with stub_api(token_endpoint(3600, issued)) as api:
        monkeypatch.setenv("MAAS_API_URL", api.url)
        monkeypatch.setenv("MAAS_API_KEY", "k-env")
        monkeypatch.setenv("MAAS_TOKEN_URL", f"{api.url}/oauth2/token")
        monkeypatch.setenv("MAAS_CLIENT_ID", "c")
        monkeypatch.setenv("MAAS_CLIENT_SECRET", "s")
        monkeypatch.delenv("MAAS_TOKEN", raising=False)
        monkeypatch.delenv("MAAS_PROFILE", raising=False)

        token = Credentials.resolve(tmp_path / "no-stack").token()

    assert token == "tok-1" and len(issued) == 1


def test_a_profile_with_a_secret_that_others_may_read_is_refused(tmp_path, monkeypatch):
    path = _config(tmp_path, "[prod]\napi_url = https://x\napi_key = k\n", mode=0o644)
    monkeypatch.setenv("MAAS_CONFIG", str(path))

    with pytest.raises(SystemExit, match="chmod 600"):
        Credentials.resolve(tmp_path / "no-stack", profile="prod")


def test_an_unknown_profile_is_refused_and_none_named_means_the_local_stack(tmp_path, monkeypatch):
    monkeypatch.setenv("MAAS_CONFIG", str(_config(tmp_path, "[prod]\napi_url = https://x\n")))
    for name in ("MAAS_API_URL", "MAAS_PROFILE"):
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(SystemExit, match=r"no profile \[staging\]"):
        Credentials.resolve(tmp_path / "no-stack", profile="staging")
    with pytest.raises(SystemExit, match="local stack is not running"):
        Credentials.resolve(tmp_path / "no-stack")  # no profile named: the local stack
