"""HTTP plumbing for the local gateway, and the internal paths beside the API.

Internal paths (never part of the API): GET /_local/health, GET /.well-known/jwks.json, and
POST /_local/events/{token}, where the SageMaker emulator's state-change events arrive for the
events function (maas_local.event_queue.EventReceiver). POST /oauth2/token stands in for the user
pool domain's token endpoint (maas_local.tokens). GET /docs serves the API description as
interactive docs (maas_local.api_docs).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from maas_contract import errors
from maas_contract.routes import EVENTS_GROUP, HANDLERS_PACKAGE, RouteTable
from maas_local.api_docs import DOCS_PATH, ApiDocs
from maas_local.config import REPO_ROOT
from maas_local.event_queue import (
    EVENTS_PATH,
    QUEUE_ENV,
    RETRY_DELAYS_S,
    TOKEN_HEADER,
    Deliver,
    EventReceiver,
    QueueDrainer,
)
from maas_local.gateway import LENGTH_REQUIRED, Gateway, GatewaySettings
from maas_local.http_server import BodyRefused, LocalHTTPServer, LocalRequestHandler
from maas_local.invoker import DEFAULT_CONCURRENCY, HandlerInvoker
from maas_local.proxy_event import HttpRequest, HttpResponse
from maas_local.streaming import StreamCut, StreamedResponse
from maas_local.tokens import (
    TOKEN_PATH,
    IssuerConfig,
    TokenEndpoint,
    TokenRequestError,
    TokenVerifier,
)
from maas_local.usage_plans import load_usage_plans

EVENT_TOKEN_ENV = "MAAS_EVENT_SINK_TOKEN"  # noqa: S105 - the variable's name, not a secret
EVENT_TIMEOUT_S = 900.0  # Lambda's own maximum; the event handler is not behind API Gateway
_EVENT_SECRET = re.compile(re.escape(EVENTS_PATH) + r"[^\s\"]*")
_OAUTH_JSON = "application/json;charset=UTF-8"  # the token endpoint's, as Cognito documents it
log = logging.getLogger("maas_local.gateway")


def carries_content(status: int) -> bool:
    """RFC 9110 section 6.4.1: a 1xx, 204 or 304 answer ends at its headers. A body a function
    gave one anyway (Powertools sends `null` for a route that returns None) is dropped: a client
    would read its bytes as the start of the connection's next answer."""
    return status >= 200 and status not in (204, 304)


class GatewayHTTPServer(LocalHTTPServer):
    def __init__(
        self,
        address: tuple[str, int],
        gateway: Gateway,
        events: EventReceiver | None,
        jwks: dict,
        token_endpoint: TokenEndpoint | None = None,
        docs: ApiDocs | None = None,
    ) -> None:
        super().__init__(address, _RequestHandler)
        self.docs = docs
        self.gateway = gateway
        self.events = events
        self.jwks = jwks
        self.token_endpoint = token_endpoint
        self.drainer: QueueDrainer | None = None  # set when events arrive through a queue

    def close(self) -> None:
        """After shutdown(): the socket, the event delivery, then every execution environment."""
        self.server_close()
        if self.events is not None:
            self.events.stop()
        if self.drainer is not None:
            self.drainer.stop()
        self.gateway.invoker.shutdown()


class _RequestHandler(LocalRequestHandler):
    server_version = "maas-local-gateway"
    server: GatewayHTTPServer

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET  # noqa: N815

    def __getattr__(self, name: str) -> Any:
        """Any other method (TRACE, CONNECT, PROPFIND, ...) goes through the gateway too, which
        answers a method the API lacks as API Gateway does: 403 Missing Authentication Token,
        in the one error body, not the standard library's 501 HTML page."""
        if name.startswith("do_") and name[3:].isalpha() and name[3:].isupper():
            return self.do_GET
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        line = format % args
        if EVENTS_PATH in line:  # the events path carries its secret: never log it
            line = _EVENT_SECRET.sub(EVENTS_PATH + "***", line)
        log.info("%s %s", self.address_string(), line)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The standard library's request line is replaced by the access line of _send."""

    def handle_one_request(self) -> None:
        self._started = time.perf_counter()
        super().handle_one_request()

    def foreign_refusal(self, why: str) -> tuple[bytes, list[tuple[str, str]]]:
        request_id = str(uuid.uuid4())
        body = errors.error_json(errors.ACCESS_DENIED.response_type, why, request_id).encode()
        return body, [("Content-Type", "application/json"), ("x-amzn-RequestId", request_id)]

    def _serve(self) -> None:
        gateway = self.server.gateway
        try:
            body = self.read_body(gateway.settings.max_payload_bytes)
        except BodyRefused as refused:
            too_large = refused.status == errors.REQUEST_TOO_LARGE.status
            kind = errors.REQUEST_TOO_LARGE if too_large else LENGTH_REQUIRED
            return self._send(gateway.refuse(kind))
        url = urlsplit(self.path)
        internal = self._internal(url.path, body)
        if internal is not None:
            return self._send(internal)
        request = HttpRequest(
            method=self.command,
            path=url.path,
            query=url.query,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        answer = gateway.handle(request)
        if isinstance(answer, StreamedResponse):
            return self._relay(answer)
        self._send(answer)

    def _relay(self, stream: StreamedResponse) -> None:
        """A streamed answer, chunk by chunk as the function writes it (HTTP/1.1 chunked; an
        HTTP/1.0 client gets the body until the connection closes). A stream that a limit or
        the function ends early closes the connection without the body's end, as API Gateway
        does; the client then knows the body is incomplete."""
        chunked = self.request_version != "HTTP/1.0"
        self.send_response(stream.status)
        for name, value in stream.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        outcome = "complete"
        try:
            if self.command != "HEAD" and carries_content(stream.status):
                for chunk in stream.chunks:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except StreamCut as cut:
            outcome = str(cut)
            self.close_connection = True
        except OSError as error:  # the client went away
            outcome = f"client gone: {error!r}"
            self.close_connection = True
        finally:
            stream.close()
        self._access(stream, outcome)

    def _internal(self, path: str, body: bytes) -> HttpResponse | None:
        if path == "/_local/health" and self.command == "GET":
            return HttpResponse.of_json(200, self._health())
        if path == "/.well-known/jwks.json" and self.command == "GET":
            return HttpResponse.of_json(200, self.server.jwks)
        receiver = self.server.events
        if path.startswith(EVENTS_PATH) and self.command == "POST" and receiver is not None:
            return receiver.accept(
                path,
                self.headers.get(TOKEN_HEADER, ""),
                self.headers.get("Content-Type", ""),
                self.client_address[0],
                body,
            )
        if path == TOKEN_PATH and self.command == "POST" and self.server.token_endpoint:
            return self._issue_token(self.server.token_endpoint, body)
        if path.startswith(DOCS_PATH) and self.command == "GET" and self.server.docs:
            return self.server.docs.answer(path, self.headers.get("Host", ""))
        return None

    def _health(self) -> dict[str, Any]:
        receiver, drainer = self.server.events, self.server.drainer
        status: dict[str, Any] = {
            "status": "ok",
            "events_delivered": receiver.delivered if receiver else 0,
            "events_failed": receiver.failed if receiver else 0,
            "events_pending": receiver.pending if receiver else 0,
        }
        if drainer is not None:
            status["queue_events_delivered"] = drainer.delivered
            status["queue_events_failed"] = drainer.failed
        return status

    def _issue_token(self, endpoint: TokenEndpoint, body: bytes) -> HttpResponse:
        """Cognito answers every refusal with 400 and {"error": code}; never log the request's
        Authorization header, which carries the client secret."""
        headers = [("Content-Type", _OAUTH_JSON), ("Cache-Control", "no-store")]
        try:
            reply = endpoint.answer(
                self.headers.get("Authorization"), self.headers.get("Content-Type"), body
            )
        except TokenRequestError as refusal:
            log.info("token endpoint refused the request: %s", refusal.code)
            return HttpResponse(400, json.dumps({"error": refusal.code}).encode(), headers)
        return HttpResponse(200, json.dumps(reply).encode(), headers)

    def _send(self, response: HttpResponse) -> None:
        body = response.body if carries_content(response.status) else b""
        self.send_bytes(response.status, body, response.headers)
        self._access(response)

    def _access(self, response: HttpResponse | StreamedResponse, stream: str = "") -> None:
        """One access line per request, as API Gateway's access logging writes one: method,
        path (the events path without its secret), status, latency and request id."""
        path = urlsplit(self.path).path
        if path.startswith(EVENTS_PATH):
            path = EVENTS_PATH + "***"
        request_id = next((v for k, v in response.headers if k.lower() == "x-amzn-requestid"), None)
        line = {
            "method": self.command,
            "path": path,
            "status": response.status,
            "latency_ms": round(1000 * (time.perf_counter() - self._started), 1),
            "request_id": request_id,
        }
        if stream:
            line["stream"] = stream
        log.info("access %s", json.dumps(line))


def build_server(
    host: str,
    port: int,
    *,
    keys_dir: Path,
    openapi: Path,
    handlers_package: str = HANDLERS_PACKAGE,
    handlers_root: Path | None = None,
    settings: GatewaySettings | None = None,
    event_token: str = "",
    iam_policies: Path | None = None,
    iam_audit_log: Path | None = None,
    event_spool: Path | None = None,
    time_scale: float = 1.0,
) -> GatewayHTTPServer:
    """The gateway, its functions' execution environments and the events path (with a token).

    `handlers_root` is the folder that holds `handlers_package`, when it is not importable
    already; with `iam_policies`, each function's AWS calls are checked against its policy."""
    settings = settings or GatewaySettings()
    issuer = IssuerConfig.load(keys_dir)
    invoker = HandlerInvoker(
        handlers_package,
        concurrency=settings.function_concurrency,
        code_root=handlers_root,
        iam_policies=iam_policies,
        iam_audit_log=iam_audit_log,
        streaming_groups=settings.streaming_groups,
    )
    routes = RouteTable.from_file(openapi)
    plans = load_usage_plans(keys_dir)
    gateway = Gateway(routes, TokenVerifier(issuer), plans, invoker, settings)
    events = (
        EventReceiver(
            _events_function(invoker),
            event_token,
            spool=event_spool,
            retry_delays_s=tuple(d * time_scale for d in RETRY_DELAYS_S),
        )
        if event_token
        else None
    )
    return GatewayHTTPServer(
        (host, port), gateway, events, issuer.jwks, TokenEndpoint(keys_dir), ApiDocs(openapi)
    )


def _events_function(invoker: HandlerInvoker) -> Deliver:
    def deliver(event: dict[str, Any]) -> None:
        invoker.invoke(EVENTS_GROUP, event, str(uuid.uuid4()), EVENT_TIMEOUT_S)

    return deliver


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="maas local API gateway")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, required=True, help="port to bind")
    parser.add_argument("--keys-dir", type=Path, required=True, help="issuer and API keys")
    parser.add_argument("--openapi", type=Path, default=REPO_ROOT / "openapi.json")
    parser.add_argument("--handlers-package", default=HANDLERS_PACKAGE, help="handlers' package")
    parser.add_argument(
        "--preload",
        action="store_true",
        help="load the handlers and start one execution environment per function at start-up",
    )
    parser.add_argument(
        "--function-concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help="execution environments each function may run at once (Lambda's reserved "
        "concurrency); a request that finds them all busy waits, within the integration timeout",
    )
    parser.add_argument(
        "--iam-policies",
        type=Path,
        help="each function's IAM policy from the synthesised template; every AWS call a "
        "handler makes is checked against its own function's policy",
    )
    parser.add_argument("--iam-audit-log", type=Path, help="one JSON line per IAM decision")
    parser.add_argument(
        "--event-spool",
        type=Path,
        help="accepted events wait here, on disk, until the events function has handled them",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="scales the waits between the events function's retries (1 and 2 minutes)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not args.openapi.is_file():
        print(f"gateway: no API description at {args.openapi}", file=sys.stderr)
        return 2
    if args.iam_policies:
        log.info("IAM: handlers' AWS calls are checked against %s", args.iam_policies)
    server = build_server(
        args.host,
        args.port,
        keys_dir=args.keys_dir,
        openapi=args.openapi,
        handlers_package=args.handlers_package,
        settings=GatewaySettings(function_concurrency=args.function_concurrency),
        event_token=os.environ.get(EVENT_TOKEN_ENV, ""),
        iam_policies=args.iam_policies,
        iam_audit_log=args.iam_audit_log,
        event_spool=args.event_spool,
        time_scale=args.time_scale,
    )
    server.drainer = _event_queue_drainer(server.gateway.invoker)
    if args.preload:
        receives_events = server.events is not None or server.drainer is not None
        events = {EVENTS_GROUP} if receives_events else set()
        server.gateway.invoker.preload(server.gateway.routes.groups() | events)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log.info("gateway listening on http://%s:%d", args.host, args.port)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.close()
    return 0


def _event_queue_drainer(invoker: HandlerInvoker) -> QueueDrainer | None:
    """With the LocalStack backend, events arrive through an EventBridge rule's queue."""
    queue_url = os.environ.get(QUEUE_ENV)
    if not queue_url:
        return None
    log.info("draining state-change events from %s", queue_url)
    return QueueDrainer(queue_url, _events_function(invoker)).start()


if __name__ == "__main__":
    raise SystemExit(main())
