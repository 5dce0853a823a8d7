"""The OpenAI-compatible API, end to end, with the official `openai` client, on a real local
stack: a tiny text-generation model trained through the training-jobs API, registered and
deployed by the job-completed event as `make demo` does, then called through the gateway's
streaming integration (maas_local.streaming) as a client would call it in the cloud.
"""

from __future__ import annotations

import json
import os

import pytest
import requests

from maas import Client, demo_steps
from maas_local import lifecycle
from maas_local.aws_resources import local_client, stack_credentials
from maas_local.config import CLIENT_ID, StackPaths, read_json
from maas_local.stack import StackOptions
from maas_local.token_quotas import OVERRIDE_ENV
from maas_local.tokens import mint_token

openai = pytest.importorskip("openai")

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
MODEL = "tiny-chat"
THRIFTY = "thrifty-client"  # a client id whose daily token quota is a few tokens
QUOTAS = {
    CLIENT_ID: {"name": "ml-admin", "tokens_per_minute": 1_000_000, "tokens_per_day": 10_000_000},
    THRIFTY: {"name": "thrifty", "tokens_per_minute": 1_000_000, "tokens_per_day": 12},
}
CORPUS = "\n".join(
    f"The {animal} sat on the {place} and looked at the {thing}."
    for animal in ("cat", "dog", "bird", "fox")
    for place in ("mat", "wall", "roof", "log")
    for thing in ("moon", "sun", "sea")
)


def say(line: str) -> None:
    print(f"[openai-e2e] {line}", flush=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    paths = StackPaths(tmp_path_factory.mktemp("maas-home"))
    saved = os.environ.get(OVERRIDE_ENV)
    os.environ[OVERRIDE_ENV] = json.dumps(QUOTAS)  # the supervisor passes it to the gateway
    try:
        assert lifecycle.up(paths, foreground=False, options=StackOptions()) == 0
        yield paths, read_json(paths.state_file)
    finally:
        lifecycle.down(paths, quiet=True)
        if saved is None:
            os.environ.pop(OVERRIDE_ENV, None)
        else:
            os.environ[OVERRIDE_ENV] = saved


@pytest.fixture(scope="module")
def deployed(stack):
    """A one-layer GPT trained for an epoch on a few sentences through the training-jobs API
    (the emulated SageMaker runs train.py in script mode); the job-completed event registers
    it and deploys it on the LMI container, as `make demo` does with the recipe's model."""
    paths, state = stack
    s3 = local_client("s3", state["parts"]["moto"]["url"], stack_credentials(paths.keys))
    channels = {}
    for channel in ("train", "validation"):  # both given: no split of a tiny corpus
        key = f"{MODEL}/{channel}/corpus.txt"
        s3.put_object(Bucket=demo_steps.DATA_BUCKET, Key=key, Body=CORPUS.encode())
        channels[channel] = f"s3://{demo_steps.DATA_BUCKET}/{MODEL}/{channel}/"
    api = Client.local(paths.home)
    spec = {
        **demo_steps.generation_request(channels),
        "model": MODEL,
        "hyperparameters": {
            "epochs": 1,
            "n-layer": 1,
            "n-head": 2,
            "n-embd": 32,
            "block-size": 32,
            "vocab-size": 300,
            "threads": 1,
        },
        # A tiny model on a tiny corpus: the gate only has to let it through.
        "metric_threshold": {"metric": "validation:perplexity", "value": 1e6, "goal": "minimize"},
        "deployment": {},
    }
    job = demo_steps.train(api, spec, say, timeout_s=300)
    assert job["status"] == "Completed", job
    job = demo_steps.wait_for_version(api, job["id"])
    version = job.get("registered_version")
    assert version is not None, job
    deployment = demo_steps.follow_auto_deployment(api, job["id"], say)
    assert deployment["status"] == "Succeeded", deployment
    demo_steps.wait_until_live(api, version, say, name=MODEL)
    say(f"{MODEL} v{version} is live")
    return version


def _client(paths: StackPaths, state: dict, client_id: str = CLIENT_ID) -> openai.OpenAI:
    token = mint_token(paths.keys, ["maas/invoke"], client_id=client_id)
    return openai.OpenAI(
        base_url=f"{state['api_url']}/openai/v1",
        api_key=token,  # sent as the bearer token, which the authorizer checks
        default_headers={"x-api-key": state["api_key"]},
        max_retries=0,  # a 429 must surface, not be retried away
        timeout=120,
    )


MESSAGES = [{"role": "user", "content": "The cat sat on the"}]


def test_models_lists_the_live_text_generation_model(stack, deployed):
    client = _client(*stack)
    assert MODEL in [model.id for model in client.models.list()]


def test_chat_completion_whole_and_streamed_agree_for_one_seed(stack, deployed):
    client = _client(*stack)
    whole = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, max_tokens=12, seed=7, temperature=0.8
    )
    text = whole.choices[0].message.content
    assert isinstance(text, str) and whole.usage is not None
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens

    stream = client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        max_tokens=12,
        seed=7,
        temperature=0.8,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, usage = [], None
    for chunk in stream:
        if chunk.usage is not None:  # include_usage: the last chunk, with no choices
            assert chunk.choices == []
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
    assert "".join(pieces) == text
    assert usage is not None
    # The LMI container reports a prompt's token count only on unstreamed answers
    # (decoder_input_details cannot be used with streaming), so a stream charges the prompt's
    # UTF-8 length, an upper bound for a byte-level BPE (README: Known differences from AWS).
    assert usage.prompt_tokens >= whole.usage.prompt_tokens
    assert usage.completion_tokens == whole.usage.completion_tokens


def test_an_unknown_model_is_a_404(stack, deployed):
    client = _client(*stack)
    with pytest.raises(openai.NotFoundError) as refused:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES, max_tokens=4)
    assert refused.value.status_code == 404


def test_a_client_whose_token_quota_is_spent_gets_429(stack, deployed):
    client = _client(*stack, client_id=THRIFTY)
    answered = 0
    with pytest.raises(openai.RateLimitError) as refused:
        for _ in range(5):  # 12 tokens a day: the prompt alone spends most of them
            client.chat.completions.create(model=MODEL, messages=MESSAGES, max_tokens=8)
            answered += 1
    assert refused.value.status_code == 429
    assert answered >= 1  # the quota admits until it is spent, then refuses
    assert refused.value.response.headers.get("Retry-After")
    assert refused.value.code == "rate_limit_exceeded"  # OpenAI's code for a spent limit


@pytest.mark.parametrize(
    "messages,extra,param",
    [
        ([], {}, "messages"),
        ([{"role": "wizard", "content": "hi"}], {}, "messages"),
        (MESSAGES, {"max_tokens": 1_000_000}, "max_tokens"),
    ],
    ids=["empty messages", "unknown role", "max_tokens over the limit"],
)
def test_bad_requests_through_the_gateway_are_openai_shaped_400s(
    stack, deployed, messages, extra, param
):
    client = _client(*stack)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=messages, **extra)
    assert refused.value.status_code == 400
    assert refused.value.body["type"] == "invalid_request_error"
    assert param in (refused.value.body.get("param") or "") + refused.value.body["message"]


def test_a_body_that_is_not_utf8_is_an_openai_shaped_400_through_the_gateway(stack, deployed):
    paths, state = stack
    token = mint_token(paths.keys, ["maas/invoke"], client_id=CLIENT_ID)
    answer = requests.post(
        f"{state['api_url']}/openai/v1/chat/completions",
        data=b'{"model": "tiny-chat", "messages": "\xff\xfe"}',
        headers={
            "Authorization": f"Bearer {token}",
            "x-api-key": state["api_key"],
            "Content-Type": "application/json",
        },
        timeout=60,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "invalid_request_error"
