"""Server-sent events: one streamed answer relayed as the model's pieces come.

Framing, one event per chunk: `data: <JSON>\n\n`; at the end `data: [DONE]\n\n`; while no
token comes for KEEPALIVE_S, the comment `: keep-alive\n\n`. A failure mid-stream sends
`data: {"error": {...}}\n\n` (OpenAI's error object), then `[DONE]`.

Limits. API Gateway ends a streamed response after 15 minutes, and one idle for 5 minutes
(Regional and private endpoints) or 30 seconds (edge-optimized)
(https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode.html);
the function's own timeout is at most 15 minutes too. So the keep-alive comes well inside 30
seconds, and after STREAM_LIMIT_S the stream ends itself cleanly: it stops the model, sends
the finish chunk (finish_reason "length"), the usage chunk when asked for, and `[DONE]`.
A client that goes away stops the model too; what was generated until then is counted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from handlers.openai import endpoint, serving
from handlers.openai.protocol import ChatCompletionChunk, Completion, OpenAIError
from handlers.shared.observability import logger

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

KEEPALIVE_S = 20.0  # under the edge-optimized endpoints' 30 s idle timeout
STREAM_LIMIT_S = 14 * 60.0  # under API Gateway's 15 minutes and the function's timeout
SSE_DONE = b"data: [DONE]\n\n"
SSE_KEEPALIVE = b": keep-alive\n\n"


def _event(payload: BaseModel | dict[str, Any]) -> bytes:
    if isinstance(payload, BaseModel):
        text = payload.model_dump_json(exclude_none=False)
    else:
        text = json.dumps(payload)
    return b"data: " + text.encode() + b"\n\n"


class _Chunks:
    """The chunk objects of one streamed answer (chat or completion)."""

    def __init__(self, gen: serving.Generation, chat: bool) -> None:
        self.gen, self.chat = gen, chat

    def _make(self, choices: list[dict[str, Any]], usage: dict[str, int] | None) -> BaseModel:
        fields = {
            "id": ("chatcmpl-" if self.chat else "cmpl-") + self.gen.id,
            "created": self.gen.created,
            "model": self.gen.target.model,
            "choices": choices,
            "usage": usage,
        }
        model = ChatCompletionChunk if self.chat else Completion
        return model.model_validate(fields)

    def first(self) -> BaseModel | None:
        if not self.chat:
            return None
        return self._make([{"delta": {"role": "assistant", "content": ""}}], None)

    def text(self, text: str) -> BaseModel:
        choice = {"delta": {"content": text}} if self.chat else {"text": text}
        return self._make([choice], None)

    def finish(self, reason: str) -> BaseModel:
        choice: dict[str, Any] = {"delta": {}} if self.chat else {"text": ""}
        return self._make([{**choice, "finish_reason": reason}], None)

    def usage(self) -> BaseModel:
        return self._make([], self.gen.usage())


def _dump(chunk: BaseModel, include_usage: bool) -> bytes:
    """OpenAI's chunks carry `usage: null` while include_usage is on, and no usage otherwise."""
    body = chunk.model_dump(mode="json")
    if not include_usage:
        body.pop("usage", None)
    return _event(body)


async def _watch(receive: Receive, gone: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    gone.set()


async def relay(
    send: Send, receive: Receive, stream: endpoint.Stream, gen: serving.Generation, chat: bool
) -> None:
    """Relays the model's pieces as they come; see the module's docstring for the limits."""
    chunks = _Chunks(gen, chat)
    usage = gen.include_usage
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
            ],
        }
    )

    async def emit(data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})

    gone = asyncio.Event()
    watcher = asyncio.ensure_future(_watch(receive, gone))
    deadline = time.monotonic() + STREAM_LIMIT_S
    pending: asyncio.Future[endpoint.Piece | None] | None = None
    try:
        first = chunks.first()
        if first is not None:
            await emit(_dump(first, usage))
        while True:
            if pending is None:
                pending = asyncio.ensure_future(asyncio.to_thread(stream.next))
            left = deadline - time.monotonic()
            done, _ = await asyncio.wait({pending}, timeout=max(0.0, min(KEEPALIVE_S, left)))
            if gone.is_set():
                return
            if not done:
                if time.monotonic() < deadline:
                    await emit(SSE_KEEPALIVE)
                    continue
                await emit(_dump(chunks.finish("length"), usage))
                break
            piece, pending = pending.result(), None
            if piece is None:
                break
            if piece.finish is not None:
                await emit(_dump(chunks.finish(piece.finish), usage))
                break
            if piece.text:
                await emit(_dump(chunks.text(piece.text), usage))
        if usage:
            await emit(_dump(chunks.usage(), True))
    except OpenAIError as exc:
        logger.warning("stream failed", extra={"error": exc.detail.model_dump()})
        await emit(_event(exc.body()))
    finally:
        watcher.cancel()
        if pending is not None and not pending.done():
            stream.close()
            pending.add_done_callback(lambda f: f.exception())
    await send({"type": "http.response.body", "body": SSE_DONE, "more_body": False})
