"""The OpenAI-compatible function's per-client token limits (TOKEN_QUOTAS), for the local stack.

In the cloud, each cdk.json client of the stage is a Cognito app client, and TOKEN_QUOTAS maps
its generated id to `{"name", "tokens_per_minute", "tokens_per_day"}`. The local stack has its
own app clients (the token endpoint's, and the id `maas local token` mints for); each takes the
limits of the local stage's client that holds the same scopes (both hold invoke and admin, as
the stage's admin client does). MAAS_TOKEN_QUOTAS, JSON of the same shape, is laid over the
result: a developer or a test can set other limits, or limits for another client id.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from maas_local.tokens import CLIENT_SCOPES

OVERRIDE_ENV = "MAAS_TOKEN_QUOTAS"
LIMITS = ("tokens_per_minute", "tokens_per_day")


def stage_clients(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The clients of the stage that a CDK context selects (maas_local.synth's local stage)."""
    return list(context["maas:stages"][context["stage"]].get("clients", []))


def local_token_quotas(
    client_ids: Iterable[str],
    clients: list[dict[str, Any]],
    environ: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """`{client_id: {"name", "tokens_per_minute", "tokens_per_day"}}` for the local clients,
    whose scopes are CLIENT_SCOPES; a stage client without token limits gives none."""
    wanted = set(CLIENT_SCOPES)
    quotas: dict[str, dict[str, Any]] = {}
    match = next((c for c in clients if set(c.get("scopes", ())) == wanted), None)
    if match is not None and all(limit in match for limit in LIMITS):
        for client_id in client_ids:
            quotas[client_id] = {"name": match["name"], **{k: int(match[k]) for k in LIMITS}}
    override = (os.environ if environ is None else environ).get(OVERRIDE_ENV)
    if override:
        quotas.update(json.loads(override))
    return quotas
