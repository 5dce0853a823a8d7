"""The local token issuer: RS256 keys made at start-up, a JWKS, and Cognito-shaped access tokens.

The gateway verifies tokens only against the public JWKS; the private key stays in the state
directory (owner-only) so that `maas local token` can mint tokens for the running stack.

It also stands in for the user pool's OAuth2 token endpoint (`POST /oauth2/token`): one app
client with a secret, allowed the client-credentials grant and the `maas/invoke` and
`maas/admin` scopes, as `infra/client_auth.py` creates them in the cloud.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import string
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from maas_local.config import AUDIENCE, CLIENT_ID, SCOPE_PREFIX, read_json, write_private_json

PRIVATE_KEY_FILE = "signing_key.pem"
ISSUER_FILE = "issuer.json"
DEFAULT_TTL_SECONDS = 3600
LEEWAY_SECONDS = 5
APP_CLIENT_FILE = "app_client.json"
TOKEN_PATH = "/oauth2/token"  # noqa: S105 - the path a user pool domain serves tokens on
CLIENT_SCOPES = ("invoke", "admin")  # the resource server's scopes (infra/client_auth.py)
CLIENT_TOKEN_TTL_SECONDS = 3600  # the app clients' access_token_validity in infra/client_auth.py
FORM = "application/x-www-form-urlencoded"
GRANT_TYPES = {"authorization_code", "refresh_token", "client_credentials"}


class InvalidToken(Exception):
    """The bearer token is missing, malformed, expired, or not ours (API Gateway answers 401)."""


def scope_names(short: str) -> list[str]:
    """'invoke,admin' -> ['maas/invoke', 'maas/admin']; full names pass through."""
    names = [part.strip() for part in short.replace(" ", ",").split(",") if part.strip()]
    return [n if "/" in n else SCOPE_PREFIX + n for n in names]


@dataclass(frozen=True)
class IssuerConfig:
    """What a verifier needs: the issuer URL, the audience and the public keys."""

    issuer: str
    audience: str
    jwks: dict[str, Any]

    @classmethod
    def load(cls, keys_dir: Path) -> IssuerConfig:
        data = json.loads((keys_dir / ISSUER_FILE).read_text())
        return cls(issuer=data["issuer"], audience=data["audience"], jwks=data["jwks"])


def create_issuer(keys_dir: Path, issuer: str) -> IssuerConfig:
    """Make a fresh RSA key pair, keep the private half owner-only, publish the JWKS."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    keys_dir.mkdir(parents=True, exist_ok=True)
    key_path = keys_dir / PRIVATE_KEY_FILE
    key_path.unlink(missing_ok=True)
    key_path.touch(mode=0o600)
    key_path.write_bytes(pem)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    jwk.update({"kid": uuid.uuid4().hex, "alg": "RS256", "use": "sig"})
    config = IssuerConfig(issuer=issuer, audience=AUDIENCE, jwks={"keys": [jwk]})
    write_private_json(
        keys_dir / ISSUER_FILE,
        {"issuer": issuer, "audience": AUDIENCE, "jwks": config.jwks},
    )
    return config


def mint_token(
    keys_dir: Path,
    scopes: list[str],
    *,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    client_id: str = CLIENT_ID,
) -> str:
    """An access token shaped like Cognito's client-credentials tokens, signed by the local key."""
    config = IssuerConfig.load(keys_dir)
    private_key = serialization.load_pem_private_key(
        (keys_dir / PRIVATE_KEY_FILE).read_bytes(), password=None
    )
    now = int(time.time())
    claims = {
        "sub": client_id,
        "client_id": client_id,
        "aud": config.audience,
        "iss": config.issuer,
        "token_use": "access",
        "scope": " ".join(scopes),
        "auth_time": now,
        "iat": now,
        "exp": now + ttl_seconds,
        "jti": str(uuid.uuid4()),
        "version": 2,
    }
    kid = config.jwks["keys"][0]["kid"]
    return jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": kid})  # type: ignore[arg-type]


class TokenVerifier:
    """Checks signature, issuer, audience, expiry and token_use, as Cognito's authorizer does."""

    def __init__(self, config: IssuerConfig) -> None:
        self._config = config
        self._keys = {
            k["kid"]: jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(k))
            for k in config.jwks["keys"]
        }

    def verify(self, authorization: str | None) -> dict[str, Any]:
        if not authorization:
            raise InvalidToken("no token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            # Cognito authorizers also accept the raw token without the scheme.
            token = authorization
        try:
            kid = jwt.get_unverified_header(token.strip()).get("kid")
            key = self._keys[kid]
            claims = jwt.decode(
                token.strip(),
                key=key,  # type: ignore[arg-type]
                algorithms=["RS256"],
                audience=self._config.audience,
                issuer=self._config.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except (jwt.PyJWTError, KeyError) as error:
            raise InvalidToken(str(error)) from error
        if claims.get("token_use") != "access":
            raise InvalidToken("not an access token")
        return claims


def authorizer_claims(claims: dict[str, Any]) -> dict[str, str]:
    """Claims as API Gateway passes them to the integration: every value a string."""
    return {name: value if isinstance(value, str) else str(value) for name, value in claims.items()}


@dataclass(frozen=True)
class AppClient:
    """The local stand-in for a user pool app client that has a secret."""

    client_id: str
    client_secret: str
    scopes: tuple[str, ...]

    @classmethod
    def load(cls, keys_dir: Path) -> AppClient | None:
        data = read_json(keys_dir / APP_CLIENT_FILE)
        if not data:
            return None
        return cls(data["client_id"], data["client_secret"], tuple(data["scopes"]))


def ensure_app_client(keys_dir: Path) -> AppClient:
    """Keep the client a user already has across restarts (as a deployed pool keeps its app
    clients); make one, owner-only, on the first start."""
    existing = AppClient.load(keys_dir)
    if existing is not None:
        return existing
    # Shaped like Cognito's generated values: a 26-character id, a long random secret.
    alphabet = string.ascii_lowercase + string.digits
    client = AppClient(
        client_id="".join(secrets.choice(alphabet) for _ in range(26)),
        client_secret=secrets.token_urlsafe(38),
        scopes=tuple(scope_names(",".join(CLIENT_SCOPES))),
    )
    write_private_json(keys_dir / APP_CLIENT_FILE, {**asdict(client), "scopes": client.scopes})
    return client


class TokenRequestError(Exception):
    """An OAuth2 error the token endpoint answers with (HTTP 400, {"error": code})."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class TokenEndpoint:
    """Cognito's token endpoint for the client-credentials grant, as its documentation gives
    it: a form-encoded POST, the client authenticated by HTTP Basic (`client_id:client_secret`),
    an access token for the requested scopes (all of the client's when none are asked for), and
    400 with `{"error": ...}` for everything refused.
    https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html
    """

    def __init__(self, keys_dir: Path) -> None:
        self._keys_dir = keys_dir

    def answer(self, authorization: str | None, content_type: str | None, body: bytes) -> dict:
        """The JSON body of a 200; raises TokenRequestError for a refusal."""
        form = _parse_form(content_type, body)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise TokenRequestError("invalid_request")
        if grant_type not in GRANT_TYPES:
            raise TokenRequestError("unsupported_grant_type")
        client = self._authenticate(authorization)
        if grant_type != "client_credentials":
            # A client-credentials app client may use no other grant.
            raise TokenRequestError("unauthorized_client")
        scopes = _granted_scopes(form.get("scope", ""), client)
        token = mint_token(
            self._keys_dir, scopes, ttl_seconds=CLIENT_TOKEN_TTL_SECONDS, client_id=client.client_id
        )
        return {
            "access_token": token,
            "expires_in": CLIENT_TOKEN_TTL_SECONDS,
            "token_type": "Bearer",
        }

    def _authenticate(self, authorization: str | None) -> AppClient:
        presented_id, presented_secret = _basic_credentials(authorization)
        client = AppClient.load(self._keys_dir)
        # Both comparisons always run, so the timing says nothing about which part was wrong.
        expected_id = client.client_id if client else secrets.token_hex(13)
        expected_secret = client.client_secret if client else secrets.token_hex(19)
        id_ok = hmac.compare_digest(presented_id.encode(), expected_id.encode())
        secret_ok = hmac.compare_digest(presented_secret.encode(), expected_secret.encode())
        if client is None or not (id_ok & secret_ok):
            raise TokenRequestError("invalid_client")
        return client


def _parse_form(content_type: str | None, body: bytes) -> dict[str, str]:
    if (content_type or "").split(";")[0].strip().lower() != FORM:
        raise TokenRequestError("invalid_request")
    try:
        pairs = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        raise TokenRequestError("invalid_request") from None
    if any(len(values) > 1 for values in pairs.values()):
        raise TokenRequestError("invalid_request")  # a repeated parameter
    return {name: values[0] for name, values in pairs.items()}


def _basic_credentials(authorization: str | None) -> tuple[str, str]:
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        raise TokenRequestError("invalid_client")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise TokenRequestError("invalid_client") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise TokenRequestError("invalid_client")
    return client_id, secret


def _granted_scopes(requested: str, client: AppClient) -> list[str]:
    names = requested.split()
    if not names:
        return list(client.scopes)
    if any(name not in client.scopes for name in names):
        raise TokenRequestError("invalid_scope")
    return list(dict.fromkeys(names))
