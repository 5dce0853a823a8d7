"""The OpenAI-compatible API as an ASGI app (`handlers.openai.app:app`): its routes, the
caller's identity, request bodies, errors and server-sent events. The logic is serving's.

Any ASGI server runs it: uvicorn in the cloud, where the AWS Lambda Web Adapter runs it in
response-stream mode (AWS_LWA_INVOKE_MODE=response_stream) behind an API Gateway integration
whose responseTransferMode is STREAM. It needs the standard library, boto3 and pydantic only.

Identity. API Gateway checks the bearer token (scope maas/invoke or maas/admin) and the API
key before the function runs; the adapter passes the request context to the app as JSON in
the `x-amzn-request-context` header
(https://awslabs.github.io/aws-lambda-web-adapter/features/request-context.html). The caller
is `authorizer.claims.client_id` (its Cognito app client) and `identity.apiKeyId`. A request
without that context, or with more than one, never came through the gateway: 401. Without
either scope: 403.

Streams: sse.py relays them, and says how it keeps inside API Gateway's time limits.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from handlers.openai import endpoint, protocol, quotas, serving, sse
from handlers.openai.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    ModelList,
    OpenAIError,
)
from handlers.shared.observability import logger
from maas_contract.routes import ADMIN_SCOPE, INVOKE_SCOPE
from maas_contract.settings import MisconfiguredError

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PREFIX = "/openai/v1"
CONTEXT_HEADER = b"x-amzn-request-context"
MAX_BODY_BYTES = 6_291_456  # as every other route: SageMaker's 6 MiB payload limit


@dataclass(frozen=True)
class Caller:
    client_id: str
    api_key_id: str | None
    request_id: str


@dataclass(frozen=True)
class RouteSpec:
    """One route: what the app serves and what the OpenAPI document says of it."""

    method: str
    path: str
    operation: str
    summary: str
    request: type[BaseModel] | None
    response: type[BaseModel]
    chunk: type[BaseModel] | None = None  # the streamed answer's events


ROUTES = (
    RouteSpec(
        "POST",
        f"{PREFIX}/chat/completions",
        "chat",
        "OpenAI chat completion (stream: true answers server-sent chat.completion.chunk events)",
        ChatCompletionRequest,
        ChatCompletion,
        ChatCompletionChunk,
    ),
    RouteSpec(
        "POST",
        f"{PREFIX}/completions",
        "completion",
        "OpenAI completion (stream: true answers server-sent text_completion events)",
        CompletionRequest,
        Completion,
        Completion,
    ),
    RouteSpec(
        "GET",
        f"{PREFIX}/models",
        "models",
        "The text-generation models in service, in OpenAI's list shape",
        None,
        ModelList,
    ),
)


def _header(scope: Scope, name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == name]


def caller(scope: Scope) -> Caller:
    found = _header(scope, CONTEXT_HEADER)
    try:
        context = json.loads(found[0]) if len(found) == 1 else None
    except ValueError:
        context = None
    claims = ((context or {}).get("authorizer") or {}).get("claims") or {}
    client_id = claims.get("client_id")
    if not isinstance(client_id, str) or not client_id:
        raise OpenAIError(
            401,
            "No caller identity: this API is reached through its gateway with a bearer token.",
            kind="invalid_request_error",
            code="invalid_authentication",
        )
    if not {INVOKE_SCOPE, ADMIN_SCOPE} & set(str(claims.get("scope") or "").split()):
        raise OpenAIError(
            403,
            f"This route needs one of the scopes: {ADMIN_SCOPE}, {INVOKE_SCOPE}.",
            kind="permission_error",
            code="insufficient_scope",
        )
    identity = (context or {}).get("identity") or {}
    return Caller(
        client_id=client_id,
        api_key_id=identity.get("apiKeyId"),
        request_id=str(context.get("requestId") or "") if context else "",
    )


async def _body(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise OpenAIError(413, f"The body is over {MAX_BODY_BYTES} bytes.")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send_json(
    send: Send, status: int, body: Any, request_id: str, headers: dict[str, str] | None = None
) -> None:
    raw = json.dumps(body).encode()
    pairs = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    if request_id:
        pairs.append((b"x-request-id", request_id.encode()))
    pairs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": pairs})
    await send({"type": "http.response.body", "body": raw})


async def _record(who: Caller, gen: serving.Generation) -> None:
    used = gen.usage()
    try:
        await asyncio.to_thread(
            quotas.record,
            who.client_id,
            who.api_key_id,
            used["prompt_tokens"],
            used["completion_tokens"],
        )
    except Exception:  # the answer is already given; a lost count must not break it
        logger.exception("token usage not recorded", extra={"client_id": who.client_id})


async def _generate(
    route: RouteSpec, body: bytes, who: Caller, send: Send, receive: Receive
) -> None:
    assert route.request is not None
    request = protocol.parse(route.request, body)
    chat = route.operation == "chat"
    target = await asyncio.to_thread(serving.resolve, request.model)
    gen = serving.prepare(request, target)
    await asyncio.to_thread(quotas.check, who.client_id, gen.max_tokens)
    if not request.stream:
        try:
            text, reason = await asyncio.to_thread(endpoint.complete, gen)
        finally:
            await _record(who, gen)
        ident = ("chatcmpl-" if chat else "cmpl-") + gen.id
        common = {"id": ident, "created": gen.created, "model": target.model}
        choice = {"finish_reason": reason}
        if chat:
            answer: BaseModel = ChatCompletion.model_validate(
                {**common, "choices": [{**choice, "message": {"content": text}}]}
                | {"usage": gen.usage()}
            )
        else:
            answer = Completion.model_validate(
                {**common, "choices": [{**choice, "text": text}], "usage": gen.usage()}
            )
        await _send_json(send, 200, answer.model_dump(mode="json"), who.request_id)
        return
    stream = await asyncio.to_thread(endpoint.Stream, gen)
    try:
        await sse.relay(send, receive, stream, gen, chat)
    finally:
        await _record(who, gen)


async def _serve(scope: Scope, receive: Receive, send: Send) -> None:
    method, path = scope["method"].upper(), scope["path"].rstrip("/") or "/"
    if path == "/" and method == "GET":  # the adapter's readiness check, not an API route
        await _send_json(send, 200, {"status": "ok"}, "")
        return
    route = next((r for r in ROUTES if r.path == path), None)
    if route is None:
        raise OpenAIError(404, f"Unknown request URL: {method} {path}.", code="unknown_url")
    if route.method != method:
        raise OpenAIError(405, f"{method} is not allowed on {path}.", code="method_not_allowed")
    who = caller(scope)
    if route.request is None:
        models = await asyncio.to_thread(serving.list_models)
        listing = ModelList.model_validate({"data": models})
        await _send_json(send, 200, listing.model_dump(mode="json"), who.request_id)
        return
    await _generate(route, await _body(receive), who, send, receive)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI 3 application."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    started = False

    async def tracked(message: dict[str, Any]) -> None:
        nonlocal started
        started = started or message["type"] == "http.response.start"
        await send(message)

    try:
        await _serve(scope, receive, tracked)
    except ConnectionAbortedError:
        return
    except Exception as exc:
        if started:
            raise
        error = _as_openai_error(exc)
        rid = _request_id(scope)
        await _send_json(tracked, error.status, error.body(), rid, error.headers)


def _as_openai_error(exc: BaseException) -> OpenAIError:
    if isinstance(exc, OpenAIError):
        return exc
    if isinstance(exc, MisconfiguredError):
        logger.error("misconfigured", extra={"reason": str(exc)})
        return OpenAIError(500, "The service is misconfigured.", kind="server_error")
    logger.exception("unhandled error")
    return OpenAIError(
        500, "The server had an error while processing your request.", kind="server_error"
    )


def _request_id(scope: Scope) -> str:
    try:
        context = json.loads(_header(scope, CONTEXT_HEADER)[0])
        return str(context.get("requestId") or "")
    except (IndexError, ValueError, AttributeError):
        return ""
