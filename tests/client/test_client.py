"""`maas.Client` against a stand-in API: what each method sends, how it reads the answers, and
the one error body every route answers with."""

from __future__ import annotations

import pytest

import maas
from maas.client import MAX_ATTEMPTS
from maas_contract.errors import error_body
from tests.client.stub_api import Reply, Request, stub_api

KEY, TOKEN = "key-1", "token-1"


def _client(url: str) -> maas.Client:
    return maas.Client.connect(url + "/", KEY, TOKEN, timeout_s=5)


# The error body
def test_api_error_reads_the_one_error_body():
    body = error_body("NotFound", "model digits has no version 7", "req-1")

    error = maas.ApiError(404, body, request_id="from-header")

    assert (error.status, error.code, error.message) == (404, "NotFound", body["error"])
    assert error.request_id == "req-1"  # the body's id, which the handler logged
    assert str(error) == "HTTP 404 NotFound: model digits has no version 7 (request id req-1)"


def test_api_error_reads_openai_error_objects():
    body = {"error": {"message": "no such model", "type": "invalid_request_error", "code": None}}

    error = maas.ApiError(404, body, request_id="hdr")

    assert (error.message, error.code, error.request_id) == (
        "no such model",
        "invalid_request_error",
        "hdr",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<html>502 Bad Gateway</html>", "<html>502 Bad Gateway</html>"),
        ("", "(empty body)"),
        (["not", "an", "object"], '["not", "an", "object"]'),
    ],
)
def test_api_error_keeps_a_body_of_another_shape_as_it_came(body, message):
    error = maas.ApiError(502, body, request_id=None)

    assert (error.message, error.code, error.request_id) == (message, "", None)
    assert str(error) == f"HTTP 502: {message}"


def test_error_answers_raise_api_error_with_the_body_and_the_header_id():
    def answer(request: Request) -> Reply:
        if request.path == "/v1/models/ghost":
            return Reply(404, error_body("NotFound", "no model ghost", "req-9"))
        return Reply(400, b"not json", {"x-amzn-RequestId": "hdr-1", "Content-Type": "text/plain"})

    with stub_api(answer) as api:
        client = _client(api.url)
        with pytest.raises(maas.ApiError) as missing:
            client.model("ghost")
        with pytest.raises(maas.ApiError) as refused:
            client.model("bad")

    assert (missing.value.status, missing.value.code, missing.value.request_id) == (
        404,
        "NotFound",
        "req-9",
    )
    assert (refused.value.body, refused.value.request_id) == ("not json", "hdr-1")


# What goes over the wire
def test_every_call_sends_the_api_key_and_a_fresh_bearer_token():
    issued = iter(["t1", "t2"])

    with stub_api(lambda request: Reply(200, {"live": True})) as api:
        client = maas.Client(maas.Credentials(api.url, KEY, lambda: next(issued)), timeout_s=5)
        assert client.live() is True
        assert client.live() is True

    sent = [(r.headers["x-api-key"], r.headers["Authorization"]) for r in api.requests]
    assert sent == [(KEY, "Bearer t1"), (KEY, "Bearer t2")]


def test_path_segments_are_escaped():
    with stub_api(lambda request: Reply(200, {"id": "x"})) as api:
        _client(api.url).training_job("a/b c")
        _client(api.url).deployment("m", "../admin")

    assert [r.path for r in api.requests] == [
        "/v1/training-jobs/a%2Fb%20c",
        "/v1/models/m/deployments/..%2Fadmin",
    ]


def test_predict_sends_instances_as_json_or_a_raw_body_with_its_type():
    with stub_api(lambda request: Reply(200, {"version": 3, "outputs": {}})) as api:
        client = _client(api.url)
        assert client.predict("digits", [[0.0, 1.0]])["version"] == 3
        client.predict("digits", data=b"\x93NUMPY", content_type="application/x-npy", version=2)

    as_json, raw = api.requests
    assert (as_json.method, as_json.path) == ("POST", "/v1/models/digits/predict")
    assert as_json.json() == {"instances": [[0.0, 1.0]]}
    assert raw.path == "/v1/models/digits/predict?version=2"
    assert raw.body == b"\x93NUMPY" and raw.headers["Content-Type"] == "application/x-npy"


@pytest.mark.parametrize("given", [{}, {"instances": [[1]], "data": b"x"}])
def test_predict_takes_instances_or_data_not_both_nor_neither(given):
    with pytest.raises(ValueError, match="either instances or data"):
        maas.Client.connect("http://127.0.0.1:1", KEY, TOKEN).predict("digits", **given)


def test_lists_follow_next_token_through_every_page():
    pages = {
        "/v1/models": {"items": [{"name": "a"}], "next_token": "p2"},
        "/v1/models?next_token=p2": {"items": [{"name": "b"}], "next_token": None},
    }

    with stub_api(lambda request: Reply(200, pages[request.path])) as api:
        names = [model["name"] for model in _client(api.url).models()]

    assert names == ["a", "b"]
    assert len(api.requests) == 2


# Retries
def test_a_throttled_write_is_retried_with_the_same_idempotency_key():
    answers = iter(
        [Reply(429, error_body("THROTTLED", "Too Many Requests", "r1"), {"Retry-After": "0"})]
    )

    def answer(request: Request) -> Reply:
        return next(answers, Reply(201, {"id": "job-1", "status": "InProgress"}))

    with stub_api(answer) as api:
        job = _client(api.url).start_training({"model": "digits"})

    assert job["id"] == "job-1"
    first, second = api.requests
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]
    assert len(first.headers["Idempotency-Key"]) == 36


def test_retries_stop_after_the_last_attempt_and_raise_the_last_answer():
    busy = Reply(503, error_body("ServiceUnavailable", "busy", "r"), {"Retry-After": "0"})

    with stub_api(lambda request: busy) as api:
        with pytest.raises(maas.ApiError) as unavailable:
            _client(api.url).ready()

    assert unavailable.value.status == 503 and len(api.requests) == MAX_ATTEMPTS


def test_client_errors_are_not_retried():
    with stub_api(lambda request: Reply(409, error_body("Conflict", "ended", "r"))) as api:
        with pytest.raises(maas.ApiError):
            _client(api.url).stop_training("job-1")

    assert [r.method for r in api.requests] == ["DELETE"]


# Watching
def test_watch_training_yields_each_milestone_once_and_stops_when_the_job_ends():
    states = [
        {"status": "InProgress", "secondary_status": "Starting"},
        {"status": "InProgress", "secondary_status": "Starting"},
        {"status": "InProgress", "secondary_status": "Training", "metrics": {"train:loss": 1}},
        {"status": "InProgress", "secondary_status": "Training", "metrics": {"train:loss": 0.5}},
        {"status": "InProgress", "secondary_status": "Training", "metrics": {"validation:a": 1}},
        {"status": "Completed", "secondary_status": "Completed", "registered_version": 1},
    ]
    reads = iter(states)

    with stub_api(lambda request: Reply(200, next(reads))) as api:
        seen = list(_client(api.url).watch_training("job-1", interval_s=0))

    # A repeated read and a training-loss tick are not milestones; an epoch's metrics are.
    assert seen == [states[0], states[2], states[4], states[5]]
    assert len(api.requests) == len(states)


def test_watch_deployment_gives_up_after_its_timeout():
    with stub_api(lambda request: Reply(200, {"id": "d", "status": "InProgress"})) as api:
        with pytest.raises(TimeoutError, match="still InProgress"):
            list(_client(api.url).watch_deployment("m", "d", timeout_s=0, interval_s=0))


# Credentials
def test_credentials_from_the_environment_reach_a_remote_stage(monkeypatch, tmp_path):
    monkeypatch.setenv("MAAS_API_URL", "https://api.example/prod/")
    monkeypatch.setenv("MAAS_API_KEY", "env-key")
    monkeypatch.setenv("MAAS_TOKEN", "env-token")

    credentials = maas.Credentials.resolve(tmp_path / "no-stack")

    assert (credentials.api_url, credentials.api_key, credentials.token()) == (
        "https://api.example/prod",
        "env-key",
        "env-token",
    )
    assert credentials.local is False


def test_credentials_without_a_url_or_a_local_stack_say_how_to_start_one(monkeypatch, tmp_path):
    for name in ("MAAS_API_URL", "MAAS_API_KEY", "MAAS_TOKEN"):
        monkeypatch.delenv(name, raising=False)

    with pytest.raises(SystemExit, match="maas local up"):
        maas.Credentials.resolve(tmp_path / "no-stack")


def test_openapi_reads_the_served_document():
    document = {"openapi": "3.1.0", "paths": {}}

    with stub_api(lambda request: Reply(200, document)) as api:
        assert _client(api.url).openapi() == document

    assert api.requests[0].path == "/v1/openapi.json"
