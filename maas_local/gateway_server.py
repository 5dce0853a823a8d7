"""HTTP plumbing for the local gateway, plus the internal sink for SageMaker state-change events.

Internal paths (never part of the API): GET /_local/health, GET /.well-known/jwks.json, and
POST /_local/events/{token}, which takes EventBridge event documents from the SageMaker emulator
(loopback only, shared secret made at start-up) and hands them, in order, to handlers.events.
POST /oauth2/token stands in for the user pool domain's token endpoint (maas_local.tokens).
"""

from __future__ import annotations

import argparse
import hmac
import json
import logging
import os
import queue
import re
import signal
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from maas_local.config import REPO_ROOT
from maas_local.event_queue import QUEUE_ENV, QueueDrainer
from maas_local.gateway import Gateway, GatewaySettings
from maas_local.iam_guard import IamGuard
from maas_local.invoker import HandlerInvoker
from maas_local.proxy_event import HttpRequest, HttpResponse
from maas_local.routing import RouteTable
from maas_local.tokens import (
    TOKEN_PATH,
    IssuerConfig,
    TokenEndpoint,
    TokenRequestError,
    TokenVerifier,
)
from maas_local.usage_plans import UsagePlans, load_api_keys

EVENTS_PATH = "/_local/events/"
EVENT_TOKEN_ENV = "MAAS_EVENT_SINK_TOKEN"  # noqa: S105 - the variable's name, not a secret
EVENT_TIMEOUT_S = 900.0  # Lambda's own maximum; the event handler is not behind API Gateway
LOOPBACK = {"127.0.0.1", "::1"}
DISCARD_LIMIT_BYTES = 64 * 1024 * 1024
_EVENT_SECRET = re.compile(re.escape(EVENTS_PATH) + r"[^\s\"]*")
log = logging.getLogger("maas_local.gateway")


class EventSink:
    """Delivers events to handlers.events one at a time, in arrival order, off the HTTP thread."""

    def __init__(self, invoker: HandlerInvoker, token: str, module: str = "events") -> None:
        self._invoker = invoker
        self._token = token
        self._module = module
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.delivered = 0
        self.failed = 0
        self.pending = 0  # accepted and not yet handled: tests and tools wait for 0
        self._count_lock = threading.Lock()
        self._worker = threading.Thread(target=self._drain, name="event-sink", daemon=True)
        self._worker.start()

    def accepts(self, presented: str) -> bool:
        return bool(self._token) and hmac.compare_digest(presented.encode(), self._token.encode())

    def put(self, event: dict[str, Any]) -> None:
        with self._count_lock:
            self.pending += 1
        self._queue.put(event)

    def _drain(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self._invoker.invoke(self._module, event, str(uuid.uuid4()), EVENT_TIMEOUT_S)
                self.delivered += 1
            except Exception:
                self.failed += 1
                log.exception("event handler failed on %s", event.get("detail-type"))
            finally:
                with self._count_lock:
                    self.pending -= 1
            log.info("event %s handled", event.get("detail-type"))

    def stop(self) -> None:
        self._queue.put(None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 drops connections under concurrent load

    def __init__(
        self,
        address,
        gateway: Gateway,
        sink: EventSink | None,
        jwks: dict,
        token_endpoint: TokenEndpoint | None = None,
    ) -> None:
        super().__init__(address, _RequestHandler)
        self.gateway = gateway
        self.sink = sink
        self.jwks = jwks
        self.token_endpoint = token_endpoint
        self.drainer: QueueDrainer | None = None  # set when events arrive through a queue


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "maas-local-gateway"
    # Headers and body go out in separate writes; with Nagle on, a keep-alive client waits
    # for its delayed ACK (~40 ms) on every request.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's naming
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        line = format % args
        if EVENTS_PATH in line:  # the sink's path carries its secret: never log it
            line = _EVENT_SECRET.sub(EVENTS_PATH + "***", line)
        log.info("%s %s", self.address_string(), line)

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            return self._send(HttpResponse.message(411, "Length Required"))
        size = int(length) if length and length.isdigit() else 0
        if size > self.server.gateway.settings.max_payload_bytes:
            self._discard(size)
            return self._send(self.server.gateway.too_large())
        body = self.rfile.read(size) if size else b""
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
        self._send(self.server.gateway.handle(request))

    def _discard(self, size: int) -> None:
        """Read (and drop) a refused body so the client sees the 413 rather than a reset."""
        self.close_connection = True
        remaining = min(size, DISCARD_LIMIT_BYTES)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)

    def _internal(self, path: str, body: bytes) -> HttpResponse | None:
        if path == "/_local/health" and self.command == "GET":
            sink = self.server.sink
            status = {
                "status": "ok",
                "events_delivered": sink.delivered if sink else 0,
                "events_failed": sink.failed if sink else 0,
                "events_pending": sink.pending if sink else 0,
            }
            if self.server.drainer is not None:
                status["queue_events_delivered"] = self.server.drainer.delivered
                status["queue_events_failed"] = self.server.drainer.failed
            return HttpResponse(200, json.dumps(status).encode(), _JSON)
        if path == "/.well-known/jwks.json" and self.command == "GET":
            return HttpResponse(200, json.dumps(self.server.jwks).encode(), _JSON)
        if path.startswith(EVENTS_PATH) and self.command == "POST":
            return self._accept_events(path[len(EVENTS_PATH) :], body)
        if path == TOKEN_PATH and self.command == "POST" and self.server.token_endpoint:
            return self._issue_token(self.server.token_endpoint, body)
        return None

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

    def _accept_events(self, presented: str, body: bytes) -> HttpResponse:
        sink = self.server.sink
        header = self.headers.get("X-Maas-Event-Token", "")
        trusted = self.client_address[0] in LOOPBACK
        if sink is None or not trusted or not (sink.accepts(presented) or sink.accepts(header)):
            return HttpResponse.message(403, "Forbidden")
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            # Also keeps out "simple" cross-site requests a browser page could send.
            return HttpResponse.message(415, "events must be application/json")
        try:
            payload = json.loads(body)
        except json.JSONDecodeError:
            return HttpResponse.message(400, "event body is not JSON")
        events = payload if isinstance(payload, list) else [payload]
        for event in events:
            sink.put(event)
        return HttpResponse(202, json.dumps({"accepted": len(events)}).encode(), _JSON)

    def _send(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


_JSON = [("Content-Type", "application/json")]
_OAUTH_JSON = "application/json;charset=UTF-8"  # the token endpoint's, as Cognito documents it


def build_server(
    host: str,
    port: int,
    *,
    keys_dir: Path,
    openapi: Path,
    handlers_package: str = "handlers",
    settings: GatewaySettings | None = None,
    event_token: str = "",
) -> _Server:
    issuer = IssuerConfig.load(keys_dir)
    invoker = HandlerInvoker(handlers_package)
    routes = RouteTable.from_file(openapi)
    gateway = Gateway(
        routes, TokenVerifier(issuer), UsagePlans(load_api_keys(keys_dir)), invoker, settings
    )
    sink = EventSink(invoker, event_token) if event_token else None
    return _Server((host, port), gateway, sink, issuer.jwks, TokenEndpoint(keys_dir))


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="maas local API gateway")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, required=True, help="port to bind")
    parser.add_argument("--keys-dir", type=Path, required=True, help="issuer and API keys")
    parser.add_argument("--openapi", type=Path, default=REPO_ROOT / "openapi.json")
    parser.add_argument("--handlers-package", default="handlers", help="where handlers live")
    parser.add_argument("--preload", action="store_true", help="import handlers at start-up")
    parser.add_argument(
        "--iam-policies",
        type=Path,
        help="each function's IAM policy from the synthesised template; every AWS call a "
        "handler makes is checked against it",
    )
    parser.add_argument("--iam-audit-log", type=Path, help="one JSON line per IAM decision")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if not args.openapi.is_file():
        print(f"gateway: no API description at {args.openapi}", file=sys.stderr)
        return 2
    if args.iam_policies:
        # Before any handler loads: the guard rides on every botocore session made after it.
        guard = IamGuard.from_file(args.iam_policies, audit_log=args.iam_audit_log)
        guard.install()
        log.info("IAM: handlers' AWS calls are checked against %s", args.iam_policies)
    server = build_server(
        args.host,
        args.port,
        keys_dir=args.keys_dir,
        openapi=args.openapi,
        handlers_package=args.handlers_package,
        event_token=os.environ.get(EVENT_TOKEN_ENV, ""),
    )
    if args.preload:
        server.gateway.invoker.preload(server.gateway.routes.modules())
    drainer = server.drainer = _event_queue_drainer(server)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    log.info("gateway listening on http://%s:%d", args.host, args.port)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        if drainer is not None:
            drainer.stop()
        server.server_close()
    return 0


def _event_queue_drainer(server: _Server) -> QueueDrainer | None:
    """With the LocalStack backend, events arrive through an EventBridge rule's queue."""
    queue_url = os.environ.get(QUEUE_ENV)
    if not queue_url:
        return None
    invoker = server.gateway.invoker

    def deliver(event: dict[str, Any]) -> None:
        invoker.invoke("events", event, str(uuid.uuid4()), EVENT_TIMEOUT_S)

    log.info("draining state-change events from %s", queue_url)
    return QueueDrainer(queue_url, deliver).start()


if __name__ == "__main__":
    raise SystemExit(main())
