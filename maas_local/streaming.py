"""The streaming integration: API Gateway (responseTransferMode STREAM) in front of a Lambda
function that the AWS Lambda Web Adapter runs in response-stream mode.

What the cloud does, and what is done here in its place:

- API Gateway invokes the function with InvokeWithResponseStream and the same proxy event as a
  buffered integration; it starts sending to the client once the function's stream has given
  the status and headers, then relays the body as it comes.
  https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode-lambda.html
- The Lambda Web Adapter turns the event back into the HTTP request (the event's path, query,
  headers and body) to the web app on its loopback port, with the event's requestContext as the
  JSON header `x-amzn-request-context` and the invocation's context as `x-amzn-lambda-context`,
  each set over any header of that name the client sent; it drops the app's
  `transfer-encoding` and streams the app's body.
  https://awslabs.github.io/aws-lambda-web-adapter/features/request-context.html
  Here the gateway makes that request itself, to the environment's app (maas_local.web_adapter).
- Limits (https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode.html):
  a stream lasts at most 15 minutes (the integration timeout, at most 15 minutes with
  streaming); a regional endpoint's stream that stays idle for 5 minutes is closed. Until the
  headers arrive, the integration timeout ends the request with API Gateway's 504. Once the
  stream has started, a limit closes the connection without the end of the chunked body:
  curl's "transfer closed with outstanding read data remaining".
  https://docs.aws.amazon.com/apigateway/latest/developerguide/response-streaming-troubleshoot.html
"""

from __future__ import annotations

import http.client
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from maas_local.config import REGION
from maas_local.proxy_event import ACCOUNT_ID, HttpRequest

REQUEST_CONTEXT_HEADER = "x-amzn-request-context"
LAMBDA_CONTEXT_HEADER = "x-amzn-lambda-context"
MAX_STREAM_S = 15 * 60.0  # "You can stream your response for up to 15 minutes."
REGIONAL_IDLE_TIMEOUT_S = 5 * 60.0  # the API is regional (infra.front_door)
READ_SIZE = 64 * 1024
# Hop-by-hop headers end at the gateway; the body's framing is the gateway's own on each side.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}
_ADAPTER_HEADERS = {REQUEST_CONTEXT_HEADER, LAMBDA_CONTEXT_HEADER}
log = logging.getLogger("maas_local.streaming")


@dataclass(frozen=True)
class StreamLimits:
    # The streaming integration's timeout: until the headers (else 504), and for the whole
    # stream (else the connection is cut). At most 15 minutes.
    integration_timeout_s: float = MAX_STREAM_S
    idle_timeout_s: float = REGIONAL_IDLE_TIMEOUT_S

    def __post_init__(self) -> None:
        if not 0 < self.integration_timeout_s <= MAX_STREAM_S:
            raise ValueError("a streaming integration's timeout is at most 15 minutes")


class StreamCut(Exception):
    """The stream ended before its body did (a limit, or the function failed mid-way): the
    client's connection is closed without the end of the chunked body."""


class HeadersTimeout(Exception):
    """No status and headers within the integration timeout (API Gateway answers 504)."""


class UpstreamFailed(Exception):
    """The function gave no HTTP answer (API Gateway answers 502)."""


@dataclass
class StreamedResponse:
    """A response whose body is relayed as the function writes it. `chunks` raises StreamCut
    when the stream ends early; `close()` must follow, whatever happened."""

    status: int
    headers: list[tuple[str, str]]
    _relay: _Relay | None = field(default=None, repr=False)

    @property
    def chunks(self) -> Iterator[bytes]:
        return self._relay.chunks() if self._relay else iter(())

    def close(self) -> None:
        if self._relay:
            self._relay.close()


class _Relay:
    def __init__(
        self,
        conn: http.client.HTTPConnection,
        response: http.client.HTTPResponse,
        deadline: float,
        limits: StreamLimits,
        on_close: Any,
    ) -> None:
        self._conn = conn
        self._response = response
        self._deadline = deadline
        self._limits = limits
        self._on_close = on_close  # (complete: bool) -> None
        self._complete = False
        self._closed = False

    def chunks(self) -> Iterator[bytes]:
        last = time.monotonic()
        while True:
            now = time.monotonic()
            idle_left = last + self._limits.idle_timeout_s - now
            total_left = self._deadline - now
            if min(idle_left, total_left) <= 0:
                raise StreamCut(_which(idle_left, total_left))
            assert self._conn.sock is not None
            self._conn.sock.settimeout(min(idle_left, total_left))
            try:
                data = self._response.read1(READ_SIZE)
            except TimeoutError as error:
                now = time.monotonic()
                raise StreamCut(
                    _which(last + self._limits.idle_timeout_s - now, self._deadline - now)
                ) from error
            except (OSError, http.client.HTTPException) as error:
                raise StreamCut(f"the function's stream broke: {error!r}") from error
            if not data:
                self._complete = True
                return
            last = time.monotonic()
            yield data

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._conn.close()
        self._on_close(self._complete)


def _which(idle_left: float, total_left: float) -> str:
    if total_left <= idle_left:
        return "the integration timeout ended the stream"
    return "the stream was idle past the idle timeout"


def adapter_headers(
    request: HttpRequest, request_context: dict[str, Any], function_name: str, deadline_s: float
) -> list[tuple[str, str]]:
    """The request's headers as the Lambda Web Adapter hands them to the app: the client's,
    less hop-by-hop ones and any it sent under the adapter's own names, plus the adapter's."""
    kept = [
        (name, value)
        for name, value in request.headers
        if name.lower() not in _HOP_BY_HOP and name.lower() not in _ADAPTER_HEADERS
    ]
    lambda_context = {
        "request_id": request_context.get("requestId"),
        "deadline": int((time.time() + deadline_s) * 1000),
        "invoked_function_arn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}",
        "xray_trace_id": None,
        "client_context": None,
        "identity": None,
        "env_config": {"function_name": function_name, "version": "$LATEST"},
    }
    kept.append((REQUEST_CONTEXT_HEADER, json.dumps(request_context, separators=(",", ":"))))
    kept.append((LAMBDA_CONTEXT_HEADER, json.dumps(lambda_context, separators=(",", ":"))))
    if request.body:
        kept.append(("Content-Length", str(len(request.body))))
    return kept


def open_stream(
    port: int,
    request: HttpRequest,
    headers: list[tuple[str, str]],
    deadline: float,
    limits: StreamLimits,
    on_close: Any,
) -> StreamedResponse:
    """Sends the request to the app on `port` and returns once its status and headers are in;
    HeadersTimeout past the deadline, UpstreamFailed when the app gave no HTTP answer."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise HeadersTimeout()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=remaining)
    target = request.path + (f"?{request.query}" if request.query else "")
    try:
        conn.putrequest(request.method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders(request.body or None)
        response = conn.getresponse()
    except TimeoutError as error:
        conn.close()
        raise HeadersTimeout() from error
    except (OSError, http.client.HTTPException) as error:
        conn.close()
        raise UpstreamFailed(repr(error)) from error
    kept = [
        (name, value) for name, value in response.getheaders() if name.lower() not in _HOP_BY_HOP
    ]
    relay = _Relay(conn, response, deadline, limits, on_close)
    return StreamedResponse(response.status, kept, relay)
