"""`maas smoke`, the post-deploy check, against a stand-in stage that records what it was asked.

The token request follows Cognito's token endpoint: a form-encoded POST with the client
authenticated by HTTP Basic, answered with `{"access_token", "expires_in", "token_type"}`.
https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html
"""

from __future__ import annotations

import argparse
import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import pytest

from maas import smoke
from maas.cli import build_parser
from maas.commands_smoke import resolve_target
from maas_contract.routes import KNOWN_SCOPES
from tests.client.stub_api import Reply, Request, stub_api

REPO = Path(__file__).resolve().parents[2]
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - the path of Cognito's token endpoint
CLIENT_ID, SECRET, API_KEY, TOKEN = "client1", "s3cret", "key1", "tok1"  # noqa: S105


@dataclass
class FakeStage:
    """A deployed stage, as far as the smoke check sees it."""

    predict_version: int | None = 3
    fail_job_reads: bool = False
    calls: list[tuple[str, str]] = field(default_factory=list)
    training_specs: list[dict] = field(default_factory=list)
    idempotency_keys: list[str] = field(default_factory=list)
    token_forms: list[str] = field(default_factory=list)
    stopped: bool = False

    def answer(self, request: Request) -> Reply:
        self.calls.append((request.method, request.path))
        headers = request.headers
        if request.path == TOKEN_PATH:
            self.token_forms.append(request.body.decode())
            good = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
            if headers.get("Authorization") != f"Basic {good}":
                return Reply(400, {"error": "invalid_client"})
            return Reply(200, {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"})
        if headers.get("Authorization") != f"Bearer {TOKEN}" or headers.get("x-api-key") != API_KEY:
            return Reply(403, {"error": "Forbidden", "code": "ACCESS_DENIED", "request_id": "r"})
        return self._route(request)

    def _route(self, request: Request) -> Reply:
        job = {"id": "job-1", "status": "InProgress", "secondary_status": "Training"}
        if self.stopped:
            job["secondary_status"] = "Stopping"
        match request.method, request.path:
            case "GET", "/v2/health/ready":
                return Reply(200, {"ready": True})
            case "GET", "/v2/models/digits/ready":
                return Reply(200, {"name": "digits", "ready": True})
            case "POST", "/v1/models/digits/predict":
                return Reply(
                    200, {"model": "digits", "version": self.predict_version, "outputs": {}}
                )
            case "POST", "/v1/training-jobs":
                self.training_specs.append(request.json())
                self.idempotency_keys.append(request.headers.get("Idempotency-Key", ""))
                return Reply(201, job)
            case "GET", "/v1/training-jobs/job-1":
                if self.fail_job_reads:
                    return Reply(500, {"error": "boom", "code": "InternalError", "request_id": "r"})
                return Reply(200, job)
            case "DELETE", "/v1/training-jobs/job-1":
                self.stopped = True
                return Reply(202, {**job, "secondary_status": "Stopping"})
        return Reply(404, {"error": request.path, "code": "NotFound", "request_id": "r"})

    def deletes(self) -> int:
        return sum(1 for method, _ in self.calls if method == "DELETE")


@pytest.fixture
def stage():
    fake = FakeStage()
    with stub_api(fake.answer) as api:
        yield fake, api.url


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


def test_smoke_asks_for_both_scopes_the_api_defines(stage):
    fake, url = stage

    _run_smoke(url)

    (form,) = fake.token_forms
    assert "grant_type=client_credentials" in form
    asked = form.split("scope=")[1].replace("+", " ").replace("%2F", "/").split()
    document = json.loads((REPO / "openapi.json").read_text())
    flow = document["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert sorted(asked) == sorted(flow["scopes"]) == sorted(KNOWN_SCOPES)


def test_smoke_training_job_is_the_tiniest_the_api_accepts(stage):
    fake, url = stage

    _run_smoke(url)

    (spec,) = fake.training_specs
    assert spec["model"].startswith("smoke-") and spec["hyperparameters"] == {"epochs": 1}
    assert spec["auto_deploy"] is False and fake.idempotency_keys[0]
    # The API's own description of the request takes it, and nothing shorter.
    document = json.loads((REPO / "openapi.json").read_text())
    schema = {"$ref": "#/components/schemas/TrainingJobCreate", **document}
    jsonschema.validate(spec, schema)
    with pytest.raises(jsonschema.ValidationError, match="minimum"):
        jsonschema.validate({**spec, "max_runtime_seconds": smoke.MIN_RUNTIME_S - 1}, schema)


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

    target = resolve_target(args, tmp_path)

    assert target == smoke.Target(
        "https://api", "https://auth/oauth2/token", "c", "from-file", "key-from-env"
    )


def test_smoke_against_a_stage_names_every_output_it_lacks(tmp_path, monkeypatch):
    monkeypatch.delenv("MAAS_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("MAAS_API_KEY", raising=False)

    with pytest.raises(SystemExit) as refused:
        resolve_target(_smoke_args("--api-url", "https://api"), tmp_path)

    message = str(refused.value)
    for wanted in ("--token-url", "--client-id", "MAAS_CLIENT_SECRET", "MAAS_API_KEY"):
        assert wanted in message


def test_smoke_without_a_stage_or_a_local_stack_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv("MAAS_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("MAAS_API_KEY", raising=False)

    with pytest.raises(SystemExit, match="maas local up"):
        resolve_target(_smoke_args(), tmp_path / "no-stack-here")


def test_default_payload_is_one_digits_image_the_model_accepts():
    from maas_training import protocol

    request = protocol.decode(smoke.digits_payload(), "application/json")
    images = protocol.images(request.values, [1, 8, 8])  # the digits recipe's input shape

    assert images.shape == (1, 1, 8, 8)
    assert 0.0 <= images.min() and images.max() <= 1.0  # scaled as the training data is
