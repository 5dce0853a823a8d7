"""The base of the local stack's hand-written HTTP servers: the gateway, the SageMaker emulator
and each model server. What every one of them needs from the standard library's server is set
here once:

- a thread per connection, as a daemon thread, so an idle keep-alive client never holds up exit;
- a listen backlog of 128: socketserver's default of 5 drops connections under concurrent load,
  and a dropped SYN costs its client a one-second retransmit;
- HTTP/1.1 keep-alive with TCP_NODELAY: headers and body go out as separate writes, and with
  Nagle's algorithm on, a keep-alive client waits for its delayed ACK (~40 ms) on every request;
- request lines on the server's own logger at DEBUG, never printed to stderr;
- only requests from this machine's programs: a Host that names the loopback interface and no
  cross-origin request from a web page (maas_local.loopback), refused with 403 before any
  handler runs;
- a body read by its Content-Length only. A chunked body, or one over the server's limit, is
  refused and the connection closed; an oversized body is first read and dropped, so the client
  sees the refusal rather than a reset, and no unread body is ever parsed as the next request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from maas_local import loopback

DISCARD_LIMIT_BYTES = 64 * 1024 * 1024  # past this, the refused body is not read: just close
_FRAMING_HEADERS = ("content-length", "connection", "transfer-encoding")


class BodyRefused(Exception):
    """The request's body cannot be taken: 411 (no length) or 413 (over the limit)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class LocalHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    # allow_reuse_address is already set by http.server.HTTPServer.


class LocalRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # StreamRequestHandler sets TCP_NODELAY in setup()
    logger = logging.getLogger("maas_local.http")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        self.logger.debug("%s %s", self.address_string(), format % args)

    def parse_request(self) -> bool:
        """The standard library's parsing, then the loopback rules; a refused request is
        answered here with 403 and never reaches a do_* method."""
        if not super().parse_request():
            return False
        why = loopback.refusal(self.headers)
        if why is None:
            return True
        self.logger.warning("refused %s %s: %s", self.command, self.path.split("?")[0], why)
        self.close_connection = True  # its body, if any, is never read
        body, headers = self.foreign_refusal(why)
        self.send_bytes(403, body, headers)
        return False

    def foreign_refusal(self, why: str) -> tuple[bytes, list[tuple[str, str]]]:
        """The 403 body for a request the loopback rules refuse; servers answer in their own
        error shape."""
        return json.dumps({"message": why}).encode(), [("Content-Type", "application/json")]

    def read_body(self, limit: int | None = None) -> bytes:
        """The request's body; BodyRefused (and the connection marked to close) otherwise."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True
            raise BodyRefused(411, "Length Required")
        length = self.headers.get("Content-Length", "")
        size = int(length) if length.isdigit() else 0
        if limit is not None and size > limit:
            self._discard(size)
            raise BodyRefused(413, f"the body is {size} bytes; the limit is {limit}")
        return self.rfile.read(size) if size else b""

    def _discard(self, size: int) -> None:
        self.close_connection = True
        remaining = min(size, DISCARD_LIMIT_BYTES)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)

    def send_bytes(self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        """One whole response: the headers given (framing ones are the server's to set), then
        Content-Length, `Connection: close` when the connection ends here, and the body."""
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in _FRAMING_HEADERS:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
