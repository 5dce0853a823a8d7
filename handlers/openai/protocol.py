"""The OpenAI-compatible API's request and response types (pydantic v2), after OpenAI's API
reference (https://platform.openai.com/docs/api-reference/chat, .../completions, .../models):
the one model of these types in the codebase.

Requests ignore fields they do not know, as OpenAI's clients send many (`user`, `logit_bias`,
`presence_penalty`, ...) that these models have no use for; the fields they know are checked
strictly (a string where an integer belongs is a 400, not a conversion).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

# The roles a chat message may have. OpenAI also knows `developer` (its newer name for
# `system`), `tool` and `function`; the models served here take no tools.
CHAT_ROLES = ("system", "user", "assistant")
# OpenAI allows at most four stop sequences.
STOP_MAX = 4
# The type names pydantic puts in an error's location inside a union.
_PYDANTIC_TAGS = {"str", "int", "float", "bool", "list", "dict", "none"}


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextPart(_Request):
    """A content part of a message; only text parts exist for text-generation models."""

    type: StrictStr
    text: StrictStr | None = None


class ChatMessage(_Request):
    role: StrictStr = Field(description=f"one of {', '.join(CHAT_ROLES)}")
    content: StrictStr | list[TextPart] | None = None
    name: StrictStr | None = None


class StreamOptions(_Request):
    include_usage: StrictBool = False


Temperature = Annotated[float, Field(ge=0, le=2, allow_inf_nan=False)]
TopP = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]


def _integral(value: Any) -> Any:
    """JSON Schema's `integer` includes 2.0 (and 1e3): a whole number written as a float is
    that integer. Strings and fractions stay refused."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


Integer = Annotated[StrictInt, BeforeValidator(_integral)]
MaxTokens = Annotated[StrictInt, Field(ge=1), BeforeValidator(_integral)]
Stop = StrictStr | Annotated[list[StrictStr], Field(max_length=STOP_MAX)] | None


class _Generation(_Request):
    model: StrictStr = Field(description="a registered text-generation model, or name:version")
    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    stop: Stop = None
    seed: Integer | None = None
    n: Integer | None = Field(default=None, description="only 1 is supported")
    stream: StrictBool | None = False
    stream_options: StreamOptions | None = None


class ChatCompletionRequest(_Generation):
    messages: list[ChatMessage]
    max_completion_tokens: MaxTokens | None = None


class CompletionRequest(_Generation):
    prompt: StrictStr | list[StrictStr]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


FinishReason = Literal["stop", "length"]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: FinishReason | None = None
    logprobs: None = None


class Completion(BaseModel):
    """A completion, and (streamed) each of its chunks: OpenAI gives both `text_completion`."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """OpenAI's error object; its clients read each field."""

    error: ErrorDetail


class OpenAIError(Exception):
    """An answer other than success, raised anywhere and rendered once by the app."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        kind: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = ErrorDetail(message=message, type=kind, param=param, code=code)
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return ErrorResponse(error=self.detail).model_dump(mode="json")


def invalid(message: str, param: str | None = None, code: str | None = None) -> OpenAIError:
    return OpenAIError(400, message, param=param, code=code)


def _param(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.lower() not in _PYDANTIC_TAGS and not any(c in part for c in "[-"):
            text += f".{part}" if text else part
    return text


def parse(model: type[BaseModel], body: bytes) -> Any:
    """The body as `model`, or an OpenAI 400 naming the first parameter at fault."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("The request body is not valid UTF-8.") from None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        raise invalid(
            "We could not parse the JSON body of your request. The body must be valid JSON."
        ) from None
    if not isinstance(doc, dict):
        raise invalid("The request body must be a JSON object.")
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = _param(tuple(first.get("loc", ())))
        if first["type"] == "missing":
            raise invalid(
                f"Missing required parameter: '{param}'.", param, "missing_required_parameter"
            ) from None
        raise invalid(
            f"Invalid value for '{param}': {first['msg']}.", param, "invalid_value"
        ) from None
