"""The local token issuer: RS256 keys made at start-up, a JWKS, and Cognito-shaped access tokens.

The gateway verifies tokens only against the public JWKS; the private key stays in the state
directory (owner-only) so that `maas local token` can mint tokens for the running stack.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from maas_local.config import AUDIENCE, CLIENT_ID, SCOPE_PREFIX, write_private_json

PRIVATE_KEY_FILE = "signing_key.pem"
ISSUER_FILE = "issuer.json"
DEFAULT_TTL_SECONDS = 3600
LEEWAY_SECONDS = 5


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
