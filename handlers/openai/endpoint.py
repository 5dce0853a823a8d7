"""The one call to a generation endpoint: InvokeEndpoint for a whole answer, or
InvokeEndpointWithResponseStream for its pieces as they come, and what SageMaker's failures
mean to an OpenAI client.

A stream's events come from botocore's EventStream: `{"PayloadPart": {"Bytes": ...}}` for
each part, and its exception events (ModelStreamError, InternalStreamFailure) raised as
botocore's EventStreamError, a ClientError, while iterating
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_ResponseStream.html).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from handlers.openai import aws
from handlers.openai.protocol import OpenAIError, invalid
from handlers.openai.serving import Generation, finish_reason, not_found
from handlers.shared.errors import aws_error_code, aws_error_message
from maas_contract import generation


def _runtime_error(exc: ClientError, model: str) -> OpenAIError:
    code = aws_error_code(exc)
    message = aws_error_message(exc)
    if code == "ModelError":
        original = exc.response.get("OriginalStatusCode")
        text = str(exc.response.get("OriginalMessage") or message)
        if isinstance(original, int) and 400 <= original < 500:
            return invalid(text, code="model_rejected_input")
        return OpenAIError(502, text, kind="server_error", code="model_error")
    if code in ("ValidationError", "ValidationException") and "not found" in message.lower():
        return not_found(model, "has no endpoint in service")
    if code == "ModelNotReadyException":
        return OpenAIError(
            503, message, kind="server_error", code="model_not_ready", headers={"Retry-After": "10"}
        )
    if code in ("ThrottlingException", "Throttling", "ServiceUnavailable"):
        return OpenAIError(
            503, message, kind="server_error", code="unavailable", headers={"Retry-After": "2"}
        )
    return OpenAIError(502, message, kind="server_error", code="upstream_error")


def _call(operation: str, gen: Generation) -> dict[str, Any]:
    try:
        method = getattr(aws.runtime(), operation)
        return dict(
            method(
                EndpointName=gen.target.endpoint,
                Body=json.dumps(gen.request).encode(),
                ContentType=generation.CONTENT_TYPE_JSON,
            )
        )
    except ClientError as exc:
        raise _runtime_error(exc, gen.target.model) from exc
    except (ReadTimeoutError, ConnectTimeoutError) as exc:
        raise OpenAIError(
            504, "The model did not answer in time.", kind="server_error", code="timeout"
        ) from exc
    except EndpointConnectionError as exc:
        raise OpenAIError(
            502, "Could not reach the model.", kind="server_error", code="upstream_error"
        ) from exc


def complete(gen: Generation) -> tuple[str, str]:
    """One non-streamed generation: its text and OpenAI finish reason; counts on `gen`."""
    reply = _call("invoke_endpoint", gen)
    try:
        answer = generation.parse_response(reply["Body"].read())
    except generation.GenerationResponseError as exc:
        raise OpenAIError(502, str(exc), kind="server_error", code="model_error") from exc
    gen.prompt_tokens = answer.prompt_tokens
    gen.completion_tokens = (
        answer.completion_tokens if answer.completion_tokens is not None else len(answer.tokens)
    )
    return answer.text, finish_reason(answer.finish_reason)


@dataclass
class Piece:
    """One step of a stream: a token's text, or the end with its finish reason."""

    text: str = ""
    finish: str | None = None


class Stream:
    """An open InvokeEndpointWithResponseStream: its pieces, one blocking `next` at a time."""

    def __init__(self, gen: Generation) -> None:
        self.gen = gen
        self._events = _call("invoke_endpoint_with_response_stream", gen)["Body"]
        self._pieces = self._read()

    def _payloads(self) -> Iterator[bytes]:
        for event in self._events:
            part = event.get("PayloadPart")
            if part is not None:
                yield part.get("Bytes", b"")

    def _read(self) -> Iterator[Piece]:
        try:
            for event in generation.iter_stream(self._payloads()):
                if isinstance(event, generation.StreamToken):
                    self.gen.completion_tokens += 1
                    special = event.token.special_token
                    yield Piece(text="" if special else event.token.text)
                    continue
                if event.finish_reason == generation.FINISH_ERROR:
                    raise OpenAIError(
                        502, "The model failed mid-answer.", kind="server_error", code="model_error"
                    )
                if event.completion_tokens is not None:
                    self.gen.completion_tokens = event.completion_tokens
                self.gen.prompt_tokens = event.prompt_tokens
                yield Piece(finish=finish_reason(event.finish_reason))
                return
        except ClientError as exc:  # botocore raises ModelStreamError, InternalStreamFailure
            raise OpenAIError(
                502, aws_error_message(exc), kind="server_error", code=aws_error_code(exc)
            ) from exc
        except generation.GenerationResponseError as exc:
            raise OpenAIError(502, str(exc), kind="server_error", code="model_error") from exc
        yield Piece(finish="stop")  # the stream ended without its last line

    def next(self) -> Piece | None:
        return next(self._pieces, None)

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if close is not None:
            close()
