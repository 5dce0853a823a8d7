"""The OpenAI-compatible API's logic: which endpoint a `model` names, and the prompt and
container request a request becomes (endpoint.py makes the call, sse.py relays a stream).

Chat template. The LMI container can apply a tokenizer's chat template itself (its chat
completions schema, a request with `messages`), but only for a tokenizer that has one, and the
models trained here are plain GPT-2 language models whose tokenizer_config.json has none. So
the messages become one prompt here, one line per message, and the model continues it:

    System: {content}
    User: {content}
    Assistant: {content}
    Assistant:

with "\\nUser:" as an extra stop sequence, so that the model answers and does not go on to
write the user's next turn.

Token counts: the container reports completion tokens (details.generated_tokens), and prompt
tokens when asked (decoder_input_details), which its schema allows only without streaming.
A stream whose last line carries no prompt count is charged the prompt's UTF-8 length in
bytes: a byte-level BPE tokenizer (GPT-2's, and every model here) never makes more tokens
than bytes, so a client is never charged less than it used.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handlers.openai.protocol import (
    CHAT_ROLES,
    ChatCompletionRequest,
    CompletionRequest,
    OpenAIError,
    invalid,
)
from handlers.predict import service as predict
from handlers.shared import registry_table
from handlers.shared.errors import ApiError
from maas_contract import generation
from maas_contract.names import MODEL_NAME_PATTERN

RECIPE = "text-generation"
OWNER = "maas"
# The largest max_tokens passed on. A model's context may be smaller: its container then
# refuses the request, which answers 400.
MAX_TOKENS_LIMIT = 4096
# What a request without max_tokens may generate: the container's own default.
DEFAULT_MAX_TOKENS = generation.DEFAULT_MAX_NEW_TOKENS
CHAT_STOP = "\nUser:"
_FINISH = {generation.FINISH_LENGTH: "length"}
_VERSION_CACHE_TTL_S = 30.0
_versions: dict[tuple[str, int], tuple[float, dict[str, Any] | None]] = {}


@dataclass(frozen=True)
class Target:
    """The model a request names, and the endpoint that serves it."""

    model: str  # as the request named it, echoed in every answer
    name: str
    version: int | None
    endpoint: str


@dataclass
class Generation:
    """One request, decided: what to send, and what it used so far."""

    target: Target
    prompt: str
    max_tokens: int
    request: dict[str, Any]
    include_usage: bool = False
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: int = field(default_factory=lambda: int(time.time()))
    prompt_tokens: int | None = None
    completion_tokens: int = 0

    @property
    def prompt_bound(self) -> int:
        return len(self.prompt.encode())

    def usage(self) -> dict[str, int]:
        prompt = self.prompt_tokens if self.prompt_tokens is not None else self.prompt_bound
        return {
            "prompt_tokens": prompt,
            "completion_tokens": self.completion_tokens,
            "total_tokens": prompt + self.completion_tokens,
        }


def finish_reason(lmi_reason: str | None) -> str:
    """LMI's eos_token and stop_sequence are OpenAI's stop; its length is length."""
    return _FINISH.get(lmi_reason or "", "stop")


def not_found(model: str, why: str = "does not exist") -> OpenAIError:
    return OpenAIError(404, f"The model `{model}` {why}.", param="model", code="model_not_found")


def _version_item(name: str, version: int) -> dict[str, Any] | None:
    cached = _versions.get((name, version))
    if cached and time.monotonic() - cached[0] < _VERSION_CACHE_TTL_S:
        return cached[1]
    item = registry_table.get_version(name, version)
    _versions[(name, version)] = (time.monotonic(), item)
    return item


def clear_cache() -> None:
    _versions.clear()
    predict.clear_cache()


def _from_api_error(exc: ApiError, model: str) -> OpenAIError:
    if exc.status == 404:
        return not_found(model)
    if exc.status == 409:
        return OpenAIError(409, exc.message, param="model", code="version_not_live")
    kind = "invalid_request_error" if exc.status < 500 else "server_error"
    return OpenAIError(exc.status, exc.message, kind=kind, headers=exc.headers)


def _split(model: str) -> tuple[str, int | None]:
    name, colon, pinned = model.partition(":")
    if not re.fullmatch(MODEL_NAME_PATTERN, name):
        raise not_found(model)
    if not colon:
        return name, None
    if not pinned.isdigit() or not 1 <= int(pinned) <= 99_999_999:
        raise not_found(model)
    return name, int(pinned)


def resolve(model: str) -> Target:
    """The endpoint of a registered text-generation model, or `name:version` while that
    version is the one live; 404 model_not_found for anything else."""
    name, version = _split(model)
    try:
        endpoint = predict.endpoint_for(name, version)
    except ApiError as exc:
        raise _from_api_error(exc, model) from exc
    item = predict.cached_model(name) or {}
    serving = version or item.get("live_version")
    if serving is None:
        raise not_found(model, "has no version in service")
    found = _version_item(name, int(serving))
    if found is None or found.get("recipe") != RECIPE:
        raise not_found(model, "is not a text-generation model")
    return Target(model=model, name=name, version=version, endpoint=endpoint)


def list_models() -> list[dict[str, Any]]:
    """Every model whose live version is a text-generation one, in OpenAI's model shape."""
    found, token = [], None
    while True:
        items, token = registry_table.list_models(100, token)
        for item in items:
            live = item.get("live_version")
            if live is None:
                continue
            version = _version_item(item["name"], int(live))
            if version is None or version.get("recipe") != RECIPE:
                continue
            created = item.get("created_at") or registry_table.now_iso()
            found.append(
                {
                    "id": item["name"],
                    "created": int(_timestamp(created)),
                    "owned_by": OWNER,
                }
            )
        if not token:
            return found


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _message_text(index: int, content: Any) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for part in content:
        if part.type != "text" or part.text is None:
            raise invalid(
                f"Invalid content part type '{part.type}': these models take text only.",
                param=f"messages[{index}].content",
            )
        texts.append(part.text)
    return "".join(texts)


def chat_prompt(request: ChatCompletionRequest) -> str:
    if not request.messages:
        raise invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            param="messages",
            code="empty_array",
        )
    lines = []
    for index, message in enumerate(request.messages):
        if message.role not in CHAT_ROLES:
            raise invalid(
                f"Invalid value: '{message.role}'. Supported values are: "
                + ", ".join(f"'{role}'" for role in CHAT_ROLES)
                + ".",
                param=f"messages[{index}].role",
                code="invalid_value",
            )
        lines.append(f"{message.role.capitalize()}: {_message_text(index, message.content)}")
    lines.append("Assistant:")
    return "\n".join(lines)


def completion_prompt(request: CompletionRequest) -> str:
    if isinstance(request.prompt, str):
        return request.prompt
    if len(request.prompt) != 1:
        raise invalid("Only one prompt per request is supported.", param="prompt")
    return request.prompt[0]


def _max_tokens(request: ChatCompletionRequest | CompletionRequest) -> int:
    wanted = getattr(request, "max_completion_tokens", None) or request.max_tokens
    param = "max_completion_tokens" if getattr(request, "max_completion_tokens", None) else None
    if wanted is None:
        return DEFAULT_MAX_TOKENS
    if wanted > MAX_TOKENS_LIMIT:
        raise invalid(
            f"{param or 'max_tokens'} is too large: {wanted}. This model supports at most "
            f"{MAX_TOKENS_LIMIT} completion tokens.",
            param=param or "max_tokens",
            code="invalid_value",
        )
    return wanted


def prepare(request: ChatCompletionRequest | CompletionRequest, target: Target) -> Generation:
    """Checks what the resolver cannot, and builds the container request."""
    if request.n not in (None, 1):
        raise invalid("Only n=1 is supported.", param="n", code="invalid_value")
    chat = isinstance(request, ChatCompletionRequest)
    if isinstance(request, ChatCompletionRequest):
        prompt = chat_prompt(request)
    else:
        prompt = completion_prompt(request)
    max_tokens = _max_tokens(request)
    stop = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
    if chat and CHAT_STOP not in stop:
        stop.append(CHAT_STOP)
    stream = bool(request.stream)
    body = generation.build_request(
        prompt,
        max_new_tokens=max_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        stop=stop,
        seed=request.seed,
        stream=stream,
        details=True,
        decoder_input_details=not stream,
    )
    options = request.stream_options
    return Generation(
        target=target,
        prompt=prompt,
        max_tokens=max_tokens,
        request=body,
        include_usage=bool(stream and options and options.include_usage),
    )
