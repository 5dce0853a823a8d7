"""OpenAI's own Python client (pinned in constraints.txt) parses the OpenAI-compatible routes'
answers: a completion, a stream of chunks with the usage chunk, the model list, and errors,
which it raises as its own exception classes. It reaches the ASGI app through its HTTP
client's ASGI transport (`http_client=`), with the gateway's request context header as the
Lambda Web Adapter passes it
(https://awslabs.github.io/aws-lambda-web-adapter/features/request-context.html)."""

from __future__ import annotations

import asyncio
import json

import httpx2
import openai
import pytest

from handlers.openai import app as openai_app
from tests.handlers.test_openai import generation_models, request_context, runtime  # noqa: F401

# The fixtures above give every test a live text-generation model `chat` and its fake endpoint.
pytestmark = pytest.mark.usefixtures("generation_models", "runtime")


def client() -> openai.AsyncOpenAI:
    transport = httpx2.ASGITransport(app=openai_app.app)
    headers = {"x-amzn-request-context": json.dumps(request_context())}
    return openai.AsyncOpenAI(
        base_url="http://maas.test/openai/v1",
        api_key="unused: the gateway checks the bearer token",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=transport, headers=headers),
    )


def test_the_openai_client_parses_a_chat_completion():
    async def ask():
        return await client().chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "Say hello"}], max_tokens=6
        )

    answer = asyncio.run(ask())

    assert answer.choices[0].message.content == "Hello, world ✓"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.completion_tokens == 6


def test_the_openai_client_reads_the_stream_and_its_usage_chunk():
    async def ask():
        stream = await client().chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "Say hello"}],
            max_tokens=6,
            stream=True,
            stream_options={"include_usage": True},
        )
        return [chunk async for chunk in stream]

    chunks = asyncio.run(ask())

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello, world ✓"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6


def test_the_openai_client_lists_the_models():
    async def ask():
        return [m.id async for m in client().models.list()]

    assert asyncio.run(ask()) == ["chat"]


def test_the_openai_client_raises_its_not_found_and_bad_request_errors():
    async def ask(**body):
        return await client().chat.completions.create(**body)

    with pytest.raises(openai.NotFoundError) as missing:
        asyncio.run(ask(model="nobody", messages=[{"role": "user", "content": "hi"}]))
    with pytest.raises(openai.BadRequestError) as bad:
        asyncio.run(ask(model="chat", messages=[]))

    assert missing.value.code == "model_not_found"
    assert bad.value.param == "messages"
