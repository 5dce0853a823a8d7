"""The OpenAI-compatible API (handlers.openai.app), driven as an ASGI app with no server: a
scope, a receive that hands over the body, a send that records every message.

The endpoint is a fake sagemaker-runtime client whose stream yields events exactly as
botocore's EventStream yields them for InvokeEndpointWithResponseStream, `{"PayloadPart":
{"Bytes": b"..."}}`, cut at arbitrary byte offsets (a PayloadPart carries bytes, not lines):
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_ResponseStream.html
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_PayloadPart.html
The payload lines are the LMI container's (maas_contract.generation):
https://docs.djl.ai/docs/serving/serving/docs/lmi/user_guides/lmi_input_output_schema.html
The caller arrives as the Lambda Web Adapter passes API Gateway's request context, JSON in the
x-amzn-request-context header:
https://awslabs.github.io/aws-lambda-web-adapter/features/request-context.html
OpenAI's shapes (chunks, the include_usage chunk, errors):
https://platform.openai.com/docs/api-reference/chat/streaming
"""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from handlers.openai import app as openai_app
from handlers.openai import aws as openai_aws
from handlers.openai import quotas, serving
from handlers.registry import service as registry
from handlers.shared import registry_table
from tests.handlers.support import PREFIX, load_event, session

USAGE_TABLE = "maas-test-token-usage"
CLIENT = "7d0xmpl1v5e2b4ngjoaa5nsb4"  # the sample event's Cognito app client id
NOW = 1_750_000_000.0  # a fixed clock: no test crosses a minute by chance
TOKENS = ["Hel", "lo", ",", " wor", "ld", " ✓"]  # ✓ is three bytes, cut by the parts below


def request_context(scope: str = "maas/invoke", **claims: Any) -> dict[str, Any]:
    context = load_event("apigw_rest_request.json")["requestContext"]
    context["authorizer"]["claims"].update({"scope": scope, **claims})
    return context


def lmi_lines(tokens: list[str], finish: str = "length", prompt_tokens: int | None = None):
    """The container's streamed JSON lines, one per token, details on the last."""
    lines = []
    for index, text in enumerate(tokens):
        last = index == len(tokens) - 1
        details = None
        if last:
            details = {"finish_reason": finish, "generated_tokens": len(tokens), "inputs": "x"}
            if prompt_tokens is not None:
                details["prefill"] = [{"id": i, "text": "p", "log_prob": None} for i in range(7)]
        line = {
            "token": {"id": 100 + index, "text": text, "log_prob": -0.5},
            "generated_text": "".join(tokens) if last else None,
            "details": details,
        }
        lines.append(json.dumps(line) + "\n")
    return "".join(lines).encode()


def payload_parts(data: bytes, size: int = 7) -> list[dict[str, Any]]:
    return [{"PayloadPart": {"Bytes": data[i : i + size]}} for i in range(0, len(data), size)]


@dataclass
class FakeRuntime:
    """sagemaker-runtime: a JSON answer for invoke_endpoint, PayloadParts for the stream."""

    tokens: list[str] = field(default_factory=lambda: list(TOKENS))
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def invoke_endpoint(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("invoke_endpoint", params))
        body = {
            "generated_text": "".join(self.tokens),
            "details": {
                "finish_reason": "eos_token",
                "generated_tokens": len(self.tokens),
                "prefill": [{"id": i, "text": "p", "log_prob": None} for i in range(7)],
                "tokens": [{"id": 1, "text": t, "log_prob": -0.5} for t in self.tokens],
            },
        }
        return {"Body": io.BytesIO(json.dumps(body).encode()), "ContentType": "application/json"}

    def invoke_endpoint_with_response_stream(self, **params: Any) -> dict[str, Any]:
        self.calls.append(("invoke_endpoint_with_response_stream", params))
        return {"Body": iter(payload_parts(lmi_lines(self.tokens))), "ContentType": "x"}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def events(self) -> list[str]:
        """The SSE data fields, in order (comments skipped)."""
        assert self.body.endswith(b"\n\n")
        return [
            block.removeprefix("data: ")
            for block in self.body.decode().split("\n\n")
            if block and not block.startswith(":")
        ]


async def _drive(method: str, path: str, body: bytes, headers: list[tuple[bytes, bytes]]):
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
    }
    inbox = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop(0)
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await openai_app.app(scope, receive, send)
    start = sent[0]
    assert start["type"] == "http.response.start"
    assert all(m["type"] == "http.response.body" for m in sent[1:])
    assert not sent[-1].get("more_body")
    return Answer(
        start["status"],
        {k.decode(): v.decode() for k, v in start["headers"]},
        b"".join(m.get("body", b"") for m in sent[1:]),
    )


def call(
    method: str,
    path: str,
    body: Any = None,
    *,
    context: dict[str, Any] | None = None,
    raw: bytes | None = None,
) -> Answer:
    payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    headers = [(b"content-type", b"application/json")]
    if context is not False:
        headers.append(
            (b"x-amzn-request-context", json.dumps(context or request_context()).encode())
        )
    return asyncio.run(_drive(method, path, payload, headers))


def error_of(answer: Answer) -> dict[str, Any]:
    body = answer.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch) -> FakeRuntime:
    fake = FakeRuntime()
    monkeypatch.setattr(openai_aws, "runtime", lambda: fake)
    return fake


@pytest.fixture
def generation_models(aws_backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """A live text-generation model `chat`, a live image model `digits`, and the token table."""
    monkeypatch.setenv("TOKEN_USAGE_TABLE", USAGE_TABLE)
    monkeypatch.setattr(quotas, "clock", lambda: NOW)
    openai_aws.reset()
    serving.clear_cache()
    session().client("dynamodb").create_table(
        TableName=USAGE_TABLE,
        KeySchema=[
            {"AttributeName": quotas.PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": quotas.SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": quotas.PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": quotas.SORT_KEY, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for name, recipe in (("chat", "text-generation"), ("digits", "image-cnn")):
        uri = f"s3://maas-test-artifacts/models/{name}/model.tar.gz"
        registry.register(name, PREFIX, {"artifact_uri": uri, "recipe": recipe}, 1)
        registry_table.update(registry_table.model_key(name), {"live_version": 1})
    yield
    openai_aws.reset()


def chat_body(**extra: Any) -> dict[str, Any]:
    return {
        "model": "chat",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"},
        ],
        "max_tokens": 6,
        **extra,
    }


CHAT = "/openai/v1/chat/completions"
COMPLETIONS = "/openai/v1/completions"


def counted(period: str) -> dict[str, Any]:
    item = (
        session()
        .client("dynamodb")
        .get_item(
            TableName=USAGE_TABLE,
            Key={"pk": {"S": period}, "sk": {"S": f"CLIENT#{CLIENT}"}},
        )
    )
    return {k: v.get("N", v.get("S")) for k, v in item.get("Item", {}).items()}


def test_a_chat_completion_answers_the_text_with_usage_and_counts_it(generation_models, runtime):
    answer = call("POST", CHAT, chat_body(temperature=0.7, stop="\n\n", seed=3))

    assert answer.status == 200, answer.body
    body = answer.json()
    assert body["object"] == "chat.completion" and body["model"] == "chat"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello, world ✓"},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    assert body["usage"] == {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13}
    operation, params = runtime.calls[0]
    sent = json.loads(params["Body"])
    assert operation == "invoke_endpoint" and params["EndpointName"] == "maas-test-chat"
    assert sent["inputs"] == "System: Be brief.\nUser: Say hello\nAssistant:"
    assert sent["parameters"]["max_new_tokens"] == 6
    assert sent["parameters"]["stop_sequences"] == ["\n\n", "\nUser:"]
    assert sent["parameters"]["temperature"] == 0.7 and sent["parameters"]["seed"] == 3
    minute = quotas.periods(NOW).minute
    assert counted(minute)["total_tokens"] == "13"
    assert counted(minute)["prompt_tokens"] == "7"


def test_streamed_chunks_join_to_the_same_text_and_end_with_done(generation_models, runtime):
    whole = call("POST", CHAT, chat_body()).json()["choices"][0]["message"]["content"]

    answer = call("POST", CHAT, chat_body(stream=True))

    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = answer.events()
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == whole
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert all("usage" not in c for c in chunks)  # only include_usage adds the field
    assert runtime.calls[-1][0] == "invoke_endpoint_with_response_stream"


def test_include_usage_adds_a_final_chunk_with_empty_choices(generation_models, runtime):
    answer = call("POST", CHAT, chat_body(stream=True, stream_options={"include_usage": True}))

    chunks = [json.loads(e) for e in answer.events()[:-1]]
    *tokens, last = chunks
    assert last["choices"] == []
    # The stream has no prompt count (decoder_input_details is not for streams): the prompt is
    # charged its UTF-8 length, which a byte-level BPE tokenizer never exceeds.
    prompt = len(b"System: Be brief.\nUser: Say hello\nAssistant:")
    assert last["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": 6,
        "total_tokens": prompt + 6,
    }
    assert all(c["usage"] is None for c in tokens)
    assert counted(quotas.periods(NOW).day)["completion_tokens"] == "6"


def test_a_streamed_completion_sends_text_completion_chunks(generation_models, runtime):
    answer = call("POST", COMPLETIONS, {"model": "chat:1", "prompt": "Once", "stream": True})

    chunks = [json.loads(e) for e in answer.events()[:-1]]
    assert {c["object"] for c in chunks} == {"text_completion"}
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Hello, world ✓"
    assert json.loads(runtime.calls[0][1]["Body"])["inputs"] == "Once"


def test_the_models_list_names_only_text_generation_models(generation_models, runtime):
    answer = call("GET", "/openai/v1/models")

    assert answer.status == 200
    body = answer.json()
    assert body["object"] == "list"
    assert [(m["id"], m["object"], m["owned_by"]) for m in body["data"]] == [
        ("chat", "model", "maas")
    ]
    assert isinstance(body["data"][0]["created"], int)


@pytest.mark.parametrize("model", ["nobody", "digits", "chat:7", "no such/model"])
def test_an_unknown_or_non_generation_model_is_a_404_model_not_found(
    generation_models, runtime, model
):
    answer = call("POST", CHAT, chat_body(model=model))

    assert answer.status == 404
    error = error_of(answer)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert error["type"] == "invalid_request_error"
    assert runtime.calls == []


def test_a_spent_token_quota_is_a_429_with_retry_after_before_the_model_is_called(
    generation_models, runtime, monkeypatch
):
    monkeypatch.setenv(
        "TOKEN_QUOTAS",
        json.dumps({CLIENT: {"name": "web", "tokens_per_minute": 100, "tokens_per_day": 10000}}),
    )
    quotas.record(CLIENT, "key-1", 60, 35)  # 95 of 100 this minute

    answer = call("POST", CHAT, chat_body(max_tokens=6))

    assert answer.status == 429
    error = error_of(answer)
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "tokens"
    assert answer.headers["retry-after"] == str(60 - int(NOW) % 60)
    assert runtime.calls == []
    assert call("POST", CHAT, chat_body(max_tokens=5)).status == 200  # what is left still fits


def test_a_client_without_a_quota_is_counted_but_never_refused(generation_models, runtime):
    quotas.record(CLIENT, None, 10**9, 0)

    assert call("POST", CHAT, chat_body()).status == 200
    assert int(counted(quotas.periods(NOW).day)["requests"]) == 2


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        (chat_body(messages=[]), "messages", "empty_array"),
        (chat_body(max_tokens=serving.MAX_TOKENS_LIMIT + 1), "max_tokens", "invalid_value"),
        (chat_body(max_completion_tokens=10**6), "max_completion_tokens", "invalid_value"),
        (
            chat_body(messages=[{"role": "wizard", "content": "hi"}]),
            "messages[0].role",
            "invalid_value",
        ),
        (chat_body(n=2), "n", "invalid_value"),
        (chat_body(max_tokens="6"), "max_tokens", "invalid_value"),
        (chat_body(temperature=3), "temperature", "invalid_value"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model", "missing_required_parameter"),
    ],
)
def test_invalid_requests_are_openai_shaped_400s(generation_models, runtime, body, param, code):
    answer = call("POST", CHAT, body)

    assert answer.status == 400, answer.body
    error = error_of(answer)
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert runtime.calls == []


@pytest.mark.parametrize("raw", [b'{"model": "chat", "messages": "\xff\xfe"}', b"{not json", b"[]"])
def test_a_body_that_is_not_utf8_json_object_is_a_400(generation_models, runtime, raw):
    answer = call("POST", CHAT, raw=raw)

    assert answer.status == 400
    assert error_of(answer)["type"] == "invalid_request_error"


def test_without_the_gateways_request_context_the_answer_is_401(generation_models, runtime):
    answer = call("POST", CHAT, chat_body(), context=False)

    assert answer.status == 401
    assert error_of(answer)["code"] == "invalid_authentication"


def test_a_token_without_an_invoke_or_admin_scope_is_a_403(generation_models, runtime):
    answer = call("POST", CHAT, chat_body(), context=request_context(scope="other/scope"))

    assert answer.status == 403
    assert error_of(answer)["code"] == "insufficient_scope"


def test_a_model_stream_error_mid_answer_ends_the_stream_with_an_error_event(
    generation_models, runtime, monkeypatch
):
    """botocore raises an EventStream's exception events (ModelStreamError) while iterating."""
    from botocore.exceptions import EventStreamError

    def broken(**params):
        data = lmi_lines(TOKENS)
        cut = data.index(b"\n") + 10  # the first line whole, and part of the second

        def events():
            yield from payload_parts(data[:cut])
            raise EventStreamError(
                {"Error": {"Code": "ModelStreamError", "Message": "StreamBroken"}},
                "InvokeEndpointWithResponseStream",
            )

        return {"Body": events()}

    monkeypatch.setattr(runtime, "invoke_endpoint_with_response_stream", broken)

    answer = call("POST", CHAT, chat_body(stream=True))

    events = answer.events()
    assert answer.status == 200 and events[-1] == "[DONE]"
    assert json.loads(events[1])["choices"][0]["delta"]["content"] == TOKENS[0]
    error = json.loads(events[-2])["error"]
    assert error["code"] == "ModelStreamError" and error["type"] == "server_error"
    assert counted(quotas.periods(NOW).minute)["completion_tokens"] == "1"  # what was streamed


def test_the_usage_route_reports_each_clients_minute_and_day_with_its_limits(
    generation_models, runtime, monkeypatch, lambda_context
):
    from handlers.meta import routes as meta
    from tests.handlers.support import api_event
    from tests.handlers.support import call as call_lambda

    monkeypatch.setenv(
        "TOKEN_QUOTAS",
        json.dumps(
            {
                CLIENT: {"name": "web", "tokens_per_minute": 100, "tokens_per_day": 10000},
                "idle-client": {"name": "batch", "tokens_per_day": 5},
            }
        ),
    )
    assert call("POST", CHAT, chat_body()).status == 200  # 7 prompt + 6 completion tokens
    quotas.record("unlisted", None, 1, 2)

    reply = call_lambda(meta, api_event("GET", "/v1/usage", scopes="maas/admin"), lambda_context)
    refused = call_lambda(meta, api_event("GET", "/v1/usage"), lambda_context)

    assert reply.status == 200, reply.body
    assert reply.body["minute"] == quotas.periods(NOW).minute
    by_id = {c["client_id"]: c for c in reply.body["clients"]}
    assert set(by_id) == {CLIENT, "idle-client", "unlisted"}
    web = by_id[CLIENT]
    assert web["name"] == "web"
    assert web["minute"] == {
        "prompt_tokens": 7,
        "completion_tokens": 6,
        "total_tokens": 13,
        "requests": 1,
    }
    assert web["day"]["total_tokens"] == 13
    assert web["limits"] == {"tokens_per_minute": 100, "tokens_per_day": 10000}
    assert by_id["idle-client"]["day"]["total_tokens"] == 0
    assert by_id["unlisted"]["limits"] is None and by_id["unlisted"]["minute"]["total_tokens"] == 3
    assert refused.status == 403  # admin only


def test_a_whole_number_written_as_a_float_is_that_integer_as_json_schema_says():
    """JSON Schema's `integer` takes 2.0 (https://json-schema.org/understanding-json-schema/
    reference/numeric#integer); strings, fractions and booleans stay refused."""
    from handlers.openai.protocol import CompletionRequest

    body = {"model": "m", "prompt": "p"}
    assert CompletionRequest.model_validate({**body, "max_tokens": 2.0}).max_tokens == 2
    for refused in ("5", 1.5, True, 0.0):
        with pytest.raises(ValueError):
            CompletionRequest.model_validate({**body, "max_tokens": refused})
