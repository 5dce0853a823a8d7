"""Where the API is and how a client proves who it is: the base URL, the API key, a bearer token.

The local stack's credentials are read from its state folder and its tokens minted by its own
issuer; those imports of the local stack happen only when a client asks for them, so a client
of a deployed stage never loads the emulator.

A deployed stage's token comes from its OAuth2 token endpoint (Cognito's `/oauth2/token`) by
the client-credentials grant: a POST of `grant_type=client_credentials` with the app client's
id and secret as HTTP Basic auth, answered with `access_token` and `expires_in`
(https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html). The token is
fetched again a minute before it expires, so a long `--wait` never outlives it.

Settings come from the command's flags, then the environment (`MAAS_API_URL`, `MAAS_API_KEY`,
`MAAS_TOKEN`, `MAAS_TOKEN_URL`, `MAAS_CLIENT_ID`, `MAAS_CLIENT_SECRET`, `MAAS_SCOPES`), then the
profile named by `--profile` or `MAAS_PROFILE` in the user's config file, `$MAAS_CONFIG` or
`$XDG_CONFIG_HOME/maas/config` (`~/.config/maas/config`), an INI file. A profile is used only
when named, so a command without one still means the local stack:

    [prod]
    api_url = https://abc123.execute-api.eu-west-1.amazonaws.com/prod
    api_key = ...
    token_url = https://maas-prod.auth.eu-west-1.amazoncognito.com/oauth2/token
    client_id = ...
    client_secret = ...

A file that holds a secret must be readable by its owner alone (chmod 600). The client secret
is never taken from the command line, where other users' `ps` would show it.
"""

from __future__ import annotations

import base64
import configparser
import os
import stat
import time
from collections.abc import Callable, Mapping
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
    def client_credentials(
        cls,
        api_url: str,
        api_key: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        scopes: str = "",
    ) -> Credentials:
        """A deployed stage, with tokens from its OAuth2 token endpoint by the
        client-credentials grant, fetched again shortly before each expires."""
        fetch = _client_credentials_grant(token_url, client_id, client_secret, scopes)
        return cls(api_url.rstrip("/"), api_key, fetch)

    @classmethod
    def resolve(
        cls,
        home: Path | None = None,
        api_url: str | None = None,
        api_key: str | None = None,
        token: str | None = None,
        scopes: str = DEFAULT_SCOPES,
        profile: str | None = None,
    ) -> Credentials:
        """The arguments, then the environment, then the profile (see the module's text), then
        the running local stack in ``home``.

        Without a URL the calls go to the local stack (a key or token given is still used);
        with one, the key must be given too, and a token or the client credentials.

        Raises:
            SystemExit: a URL without a key, or without a token or client credentials; no URL
                and no local stack; a profile named that does not exist, or a secret in a file
                others may read.
        """
        saved = load_profile(profile)
        env = os.environ

        def setting(given: str | None, name: str) -> str | None:
            return given or env.get(f"MAAS_{name.upper()}") or saved.get(name)

        api_url = setting(api_url, "api_url")
        api_key = setting(api_key, "api_key")
        token = setting(token, "token")
        if not api_url:
            local = cls.local_stack(home, scopes)
            minted = local.token
            given = token
            source = (lambda: given) if given else minted
            return cls(local.api_url, api_key or local.api_key, source, True)
        grant = [setting(None, n) for n in ("token_url", "client_id", "client_secret")]
        if api_key and token:
            return cls.fixed(api_url, api_key, token)
        if api_key and all(grant):
            token_url, client_id, secret = (str(v) for v in grant)
            wanted = setting(None, "scopes") or ""
            return cls.client_credentials(api_url, api_key, token_url, client_id, secret, wanted)
        raise SystemExit(
            "calling a remote API needs its URL and API key, and a token or the client "
            "credentials to get one (--api-url/--api-key/--token, or MAAS_API_URL, MAAS_API_KEY "
            "and MAAS_TOKEN or MAAS_TOKEN_URL/MAAS_CLIENT_ID/MAAS_CLIENT_SECRET, or a profile "
            f"in {config_file()})"
        )


def config_file() -> Path:
    """The user's maas config file: $MAAS_CONFIG, else $XDG_CONFIG_HOME/maas/config."""
    if os.environ.get("MAAS_CONFIG"):
        return Path(os.environ["MAAS_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "maas" / "config"


PROFILE_KEYS = ("api_url", "api_key", "token", "token_url", "client_id", "client_secret", "scopes")
SECRET_KEYS = ("api_key", "token", "client_secret")


def load_profile(name: str | None = None) -> Mapping[str, str]:
    """The settings of the profile named `name`, else $MAAS_PROFILE; {} when none is named."""
    profile = name or os.environ.get("MAAS_PROFILE")
    if not profile:
        return {}
    path = config_file()
    if not path.is_file():
        raise SystemExit(f"no profile {profile!r}: {path} does not exist")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path)
    except configparser.Error as error:
        raise SystemExit(f"{path}: {error}") from error
    if not parser.has_section(profile):
        raise SystemExit(f"no profile [{profile}] in {path}")
    found = {k: v for k, v in parser.items(profile) if k in PROFILE_KEYS and v}
    if any(k in found for k in SECRET_KEYS) and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SystemExit(f"{path} holds secrets and others may read it: chmod 600 {path}")
    return found


def _client_credentials_grant(
    token_url: str, client_id: str, client_secret: str, scopes: str
) -> Callable[[], str]:
    """A token function: the client-credentials grant, again shortly before each token ends."""
    import requests

    from maas.errors import ApiError

    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    form = {"grant_type": "client_credentials", **({"scope": scopes} if scopes else {})}
    cached: dict[str, Any] = {}

    def token() -> str:
        if cached.get("expires", 0) < time.time() + REFRESH_MARGIN_S:
            answer = requests.post(
                token_url,
                data=form,
                headers={"Authorization": f"Basic {basic}"},
                timeout=30,
            )
            body = _json_or_text(answer)
            if answer.status_code != 200 or not isinstance(body, dict):
                raise ApiError(answer.status_code, body)
            cached["token"] = body["access_token"]
            cached["expires"] = time.time() + float(body.get("expires_in", 3600))
        return str(cached["token"])

    return token


def _json_or_text(answer: Any) -> Any:
    try:
        return answer.json()
    except ValueError:
        return answer.text


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
