"""Who may talk to a local server: processes on this machine, never a web page.

Every server of the local stack (moto, the SageMaker emulator, the gateway, each model server)
listens on 127.0.0.1, which any program on the machine can reach, and so can any web page the
owner opens: a browser sends a page's requests to 127.0.0.1 too. Two rules close that door,
checked on every request before anything else:

- **Host must name the loopback interface** (`127.0.0.1`, `localhost`, a `*.localhost` name or
  `[::1]`, any port). A page on attacker.example that re-points its own name at 127.0.0.1 (DNS
  rebinding) still sends `Host: attacker.example`, so it is refused.
- **No cross-origin request.** A browser names the page that made a request in `Origin` (and,
  in current browsers, says `Sec-Fetch-Site: cross-site`). A request whose Origin is not the
  server's own origin (`http://` + its Host) is refused, so a page can neither read nor write
  through the stack, not even with a "simple" request that skips the CORS preflight. Programs
  (boto3, requests, curl, the `maas` command) send no Origin and pass.

Standard library only: moto's WSGI wrapper and the http.server base share it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Protocol

LOOPBACK_NAMES = ("localhost",)
FORBIDDEN_MESSAGE = "requests from web pages and non-loopback Host names are refused"


def _host_name(host: str) -> str:
    """`name` from `name:port`, `[v6]:port`, `name` or `[v6]`."""
    host = host.strip()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback_host(host: str) -> bool:
    name = _host_name(host).lower().rstrip(".")
    if not name:
        return False
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class _Headers(Protocol):
    def items(self) -> Iterable[tuple[str, str]]: ...


def refusal(headers: _Headers) -> str | None:
    """Why a request must be refused (403), or None when it may go on.

    `headers` is looked up case-insensitively (an http.client message or a WSGI-derived dict
    with the header names as sent)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    host = lowered.get("host", "")
    if not is_loopback_host(host):
        return f"Host {host!r} is not a loopback name: {FORBIDDEN_MESSAGE}"
    origin = lowered.get("origin")
    if origin is not None and origin.rstrip("/").lower() != f"http://{host}".lower():
        return f"cross-origin request from {origin!r}: {FORBIDDEN_MESSAGE}"
    if lowered.get("sec-fetch-site", "").lower() == "cross-site":
        return f"cross-site request: {FORBIDDEN_MESSAGE}"
    return None
