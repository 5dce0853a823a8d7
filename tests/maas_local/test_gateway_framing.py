"""The local gateway frames each answer so that the next one on the connection reads whole.

A function may give a body to an answer that has none: Powertools answers a route that returns
None with the body `null`, whatever its status. Found by the fuzz run (tests/reliability): a
DELETE's 204 left `null` on a kept-alive connection, and the next answer read `nullHTTP/1.1`.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from maas_local.gateway import GatewaySettings
from maas_local.gateway_server import GatewayHTTPServer, carries_content
from maas_local.proxy_event import HttpRequest, HttpResponse


class _FunctionAnswers:
    """Stands in for the gateway: every request gets the status its path names, with the body
    `null`, as a function that returns None answers."""

    settings = GatewaySettings()

    def handle(self, request: HttpRequest) -> HttpResponse:
        status = int(request.path.strip("/"))
        return HttpResponse(status, b"null", [("Content-Type", "application/json")])


@pytest.fixture
def gateway_port() -> Iterator[int]:
    server = GatewayHTTPServer(("127.0.0.1", 0), _FunctionAnswers(), None, {})  # type: ignore[arg-type]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _two_answers(port: int, status: int) -> bytes:
    """Everything the gateway sends back for two requests on one connection: one answered with
    `status`, then one answered 200 (which asks to close the connection after it)."""
    first = f"DELETE /{status} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    second = "GET /200 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall((first + second).encode())
        while chunk := connection.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize("status", [204, 304])
def test_an_answer_without_content_ends_at_its_headers(gateway_port, status):
    received = _two_answers(gateway_port, status)

    first_ends = received.index(b"\r\n\r\n") + 4
    assert received.startswith(f"HTTP/1.1 {status} ".encode())
    assert received[first_ends:].startswith(b"HTTP/1.1 200 ")
    assert received.endswith(b"\r\n\r\nnull")  # an answer with content keeps its body


def test_only_1xx_204_and_304_answers_go_without_content():
    assert [s for s in (100, 101, 200, 201, 202, 204, 304, 400, 503) if not carries_content(s)] == [
        100,
        101,
        204,
        304,
    ]
