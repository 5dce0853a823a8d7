"""The local token endpoint (Cognito-shaped) and `maas smoke`, the post-deploy check.

The token endpoint follows Cognito's documentation of its token endpoint: a form-encoded POST,
client authentication by HTTP Basic, `{"access_token", "expires_in", "token_type": "Bearer"}`
on success and HTTP 400 with `{"error": ...}` for a refusal (invalid_request, invalid_client,
unauthorized_client, unsupported_grant_type; invalid_scope for a scope the client lacks).
https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html
https://docs.aws.amazon.com/cognito/latest/developerguide/federation-endpoints-oauth-grants.html
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import logging
import stat
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from handlers.schemas import TrainingJobCreate
from maas_local import lifecycle, smoke
from maas_local.cli import build_parser
from maas_local.config import REPO_ROOT, StackPaths
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


# `maas smoke` against a stand-in API that records what it was asked.
CLIENT_ID, SECRET, API_KEY, TOKEN = "client1", "s3cret", "key1", "tok1"  # noqa: S105


@dataclass
class FakeStage:
    """A deployed stage, as far as the smoke check sees it."""

    predict_version: int | None = 3
    fail_job_reads: bool = False
    calls: list[tuple[str, str]] = field(default_factory=list)
    training_specs: list[dict] = field(default_factory=list)
    idempotency_keys: list[str] = field(default_factory=list)
    stopped: bool = False

    def answer(self, method: str, path: str, headers, body: bytes) -> tuple[int, Any]:
        self.calls.append((method, path))
        if path == TOKEN_PATH:
            good = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
            if headers.get("Authorization") != f"Basic {good}":
                return 400, {"error": "invalid_client"}
            return 200, {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"}
        if headers.get("Authorization") != f"Bearer {TOKEN}" or headers.get("x-api-key") != API_KEY:
            return 403, {"message": "Forbidden"}
        return self._route(method, path, headers, body)

    def _route(self, method: str, path: str, headers, body: bytes) -> tuple[int, Any]:
        job = {"id": "job-1", "status": "InProgress", "secondary_status": "Training"}
        if self.stopped:
            job["secondary_status"] = "Stopping"
        match method, path:
            case "GET", "/v2/health/ready":
                return 200, {"ready": True}
            case "GET", "/v2/models/digits/ready":
                return 200, {"name": "digits", "ready": True}
            case "POST", "/v1/models/digits/predict":
                return 200, {"model": "digits", "version": self.predict_version, "outputs": {}}
            case "POST", "/v1/training-jobs":
                self.training_specs.append(json.loads(body))
                self.idempotency_keys.append(headers.get("Idempotency-Key", ""))
                return 201, job
            case "GET", "/v1/training-jobs/job-1":
                return (500, {"error": {"code": "X"}}) if self.fail_job_reads else (200, job)
            case "DELETE", "/v1/training-jobs/job-1":
                self.stopped = True
                return 202, {**job, "secondary_status": "Stopping"}
        return 404, {"error": {"code": "NotFound", "message": path}}

    def deletes(self) -> int:
        return sum(1 for method, _ in self.calls if method == "DELETE")


@pytest.fixture
def stage():
    fake = FakeStage()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload = fake.answer(self.command, self.path, self.headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _serve  # noqa: N815

        def log_message(self, *args) -> None:
            """Silent: request lines would drown the test output."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _run_smoke(url: str, secret: str = SECRET) -> tuple[int, list[str]]:
    target = smoke.Target(url, url + TOKEN_PATH, CLIENT_ID, secret, API_KEY)
    plan = smoke.Plan(
        model="digits",
        payload=smoke.digits_payload(),
        content_type="application/json",
        dataset="s3://data/digits/train/",
        stop_timeout_s=5,
    )
    lines: list[str] = []
    code = smoke.Smoke(target, plan, lines.append).run()
    return code, lines


def _verdicts(lines: list[str]) -> dict[str, str]:
    return {
        line.split()[1]: line.split()[0] for line in lines if line[:4] in ("PASS", "FAIL", "SKIP")
    }


def test_smoke_passes_every_step_and_stops_the_job_it_started(stage):
    fake, url = stage

    code, lines = _run_smoke(url)

    assert code == 0, "\n".join(lines)
    assert set(_verdicts(lines).values()) == {"PASS"}
    assert list(_verdicts(lines)) == [
        "token",
        "server-ready",
        "model-ready",
        "predict",
        "training-start",
        "training-running",
        "training-stop",
        "training-stopped",
        "cleanup",
    ]
    assert fake.deletes() == 1
    # What it cannot remove, it says it left behind.
    assert any(line.startswith("NOTE left behind: training job record job-1") for line in lines)


def test_smoke_training_job_is_the_tiniest_the_api_accepts(stage):
    fake, url = stage

    _run_smoke(url)

    (spec,) = fake.training_specs
    assert spec["model"].startswith("smoke-") and spec["hyperparameters"] == {"epochs": 1}
    assert spec["auto_deploy"] is False and fake.idempotency_keys[0]
    accepted = TrainingJobCreate(**spec)  # the real request schema takes it...
    assert accepted.max_runtime_seconds == smoke.MIN_RUNTIME_S
    with pytest.raises(ValueError):  # ...and nothing shorter
        TrainingJobCreate(**{**spec, "max_runtime_seconds": smoke.MIN_RUNTIME_S - 1})


def test_smoke_stops_the_job_when_a_step_after_its_start_fails(stage):
    fake, url = stage
    fake.fail_job_reads = True

    code, lines = _run_smoke(url)

    verdicts = _verdicts(lines)
    assert code == 1
    assert verdicts["training-running"] == "FAIL" and verdicts["training-stop"] == "SKIP"
    assert fake.deletes() == 1, "the clean-up must stop the job it started"


def test_smoke_with_a_bad_secret_fails_at_the_token_and_starts_nothing(stage):
    fake, url = stage

    code, lines = _run_smoke(url, secret="wrong")

    verdicts = _verdicts(lines)
    assert code == 1 and verdicts["token"] == "FAIL" and "invalid_client" in lines[0]
    assert {verdicts[name] for name in verdicts if name not in ("token", "cleanup")} == {"SKIP"}
    assert ("POST", "/v1/training-jobs") not in fake.calls


def test_smoke_fails_a_prediction_without_a_version_and_still_checks_training(stage):
    fake, url = stage
    fake.predict_version = None

    code, lines = _run_smoke(url)

    verdicts = _verdicts(lines)
    assert code == 1 and verdicts["predict"] == "FAIL"
    assert verdicts["training-stopped"] == "PASS" and verdicts["cleanup"] == "PASS"


def _smoke_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["smoke", "--model", "m", "--dataset", "s3://b/p/", *argv])


def test_smoke_takes_no_secret_on_the_command_line():
    # Nor an abbreviation of the file options, which argparse would otherwise allow.
    with pytest.raises(SystemExit):
        _smoke_args("--api-url", "https://x", "--client-secret", "s")
    with pytest.raises(SystemExit):
        _smoke_args("--api-url", "https://x", "--api-key", "k")


def test_smoke_reads_secrets_from_the_environment_or_files(tmp_path, monkeypatch):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file\n")
    monkeypatch.setenv("MAAS_API_KEY", "key-from-env")
    monkeypatch.delenv("MAAS_CLIENT_SECRET", raising=False)
    args = _smoke_args(
        "--api-url", "https://api/", "--token-url", "https://auth/oauth2/token",
        "--client-id", "c", "--client-secret-file", str(secret_file),
    )  # fmt: skip

    target = smoke.resolve_target(args, StackPaths(tmp_path))

    assert target == smoke.Target(
        "https://api", "https://auth/oauth2/token", "c", "from-file", "key-from-env"
    )


def test_smoke_against_a_stage_names_every_output_it_lacks(tmp_path, monkeypatch):
    monkeypatch.delenv("MAAS_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("MAAS_API_KEY", raising=False)

    with pytest.raises(SystemExit) as refused:
        smoke.resolve_target(_smoke_args("--api-url", "https://api"), StackPaths(tmp_path))

    message = str(refused.value)
    for wanted in ("--token-url", "--client-id", "MAAS_CLIENT_SECRET", "MAAS_API_KEY"):
        assert wanted in message


def test_default_payload_is_one_digits_image_the_model_accepts(monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "smoke_maas_codecs", REPO_ROOT / "training" / "maas_codecs.py"
    )
    codecs = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, codecs)  # its dataclasses look themselves up
    spec.loader.exec_module(codecs)

    request = codecs.decode(smoke.digits_payload(), "application/json")
    images = codecs.images(request.values, [1, 8, 8])  # the digits recipe's input shape

    assert images.shape == (1, 1, 8, 8)
    assert 0.0 <= images.min() and images.max() <= 1.0  # scaled as the training data is
