"""Where the API is and how a client proves who it is: the base URL, the API key, a bearer token.

The local stack's credentials are read from its state folder and its tokens minted by its own
issuer; those imports of the local stack happen only when a client asks for them, so a client
of a deployed stage never loads the emulator.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SCOPES = "invoke,admin"
LOCAL_TOKEN_TTL_S = 900
REFRESH_MARGIN_S = 60


@dataclass(frozen=True)
class Credentials:
    """The API's base URL (stage included), the API key sent as ``x-api-key``, and a function
    that returns the bearer token, called before each request so a long wait never sends a
    stale token. ``local`` says the API is the running local stack.
    """

    api_url: str
    api_key: str
    token: Callable[[], str]
    local: bool = False

    @classmethod
    def fixed(cls, api_url: str, api_key: str, token: str) -> Credentials:
        """A deployed stage's URL and key, with a token got elsewhere (for example by the
        OAuth2 client-credentials grant against the stage's TokenUrl)."""
        return cls(api_url.rstrip("/"), api_key, lambda: token)

    @classmethod
    def local_stack(cls, home: Path | None = None, scopes: str = DEFAULT_SCOPES) -> Credentials:
        """The running local stack's URL and key, with tokens minted by its issuer.

        Args:
            home: the stack's state folder (default: ``MAAS_HOME``, else ``.maas/``).
            scopes: comma-separated scopes of the minted tokens, e.g. ``invoke,admin``.

        Raises:
            SystemExit: no local stack runs in that folder.
        """
        from maas_local.config import StackPaths, default_home, read_json

        paths = StackPaths(home or default_home())
        state = read_json(paths.state_file) or {}
        if not state.get("api_url") or not state.get("api_key"):
            raise SystemExit(f"the local stack is not running in {paths.home}: `maas local up`")
        return cls(state["api_url"], state["api_key"], _local_minter(paths.keys, scopes), True)

    @classmethod
    def resolve(
        cls,
        home: Path | None = None,
        api_url: str | None = None,
        api_key: str | None = None,
        token: str | None = None,
        scopes: str = DEFAULT_SCOPES,
    ) -> Credentials:
        """The arguments, then ``MAAS_API_URL`` / ``MAAS_API_KEY`` / ``MAAS_TOKEN``, then the
        running local stack in ``home``.

        Without a URL the calls go to the local stack (a key or token given is still used);
        with one, the key and the token must be given too.

        Raises:
            SystemExit: a URL without a key and a token, or no URL and no local stack.
        """
        api_url = api_url or os.environ.get("MAAS_API_URL")
        api_key = api_key or os.environ.get("MAAS_API_KEY")
        token = token or os.environ.get("MAAS_TOKEN")
        if not api_url:
            local = cls.local_stack(home, scopes)
            minted = local.token
            given = token
            source = (lambda: given) if given else minted
            return cls(local.api_url, api_key or local.api_key, source, True)
        if not api_key or not token:
            raise SystemExit(
                "calling a remote API needs --api-url, --api-key and --token "
                "(or MAAS_API_URL, MAAS_API_KEY and MAAS_TOKEN)"
            )
        return cls.fixed(api_url, api_key, token)


def _local_minter(keys: Path, scopes: str) -> Callable[[], str]:
    """Mints a token from the local issuer's key, and again shortly before it expires."""
    from maas_local.tokens import mint_token, scope_names

    names = scope_names(scopes)
    cached: dict[str, Any] = {}

    def token() -> str:
        if cached.get("expires", 0) < time.time() + REFRESH_MARGIN_S:
            cached["token"] = mint_token(keys, names, ttl_seconds=LOCAL_TOKEN_TTL_S)
            cached["expires"] = time.time() + LOCAL_TOKEN_TTL_S
        return cached["token"]

    return token
