"""The token usage table's key schema: the OpenAI-compatible function's per-client counters.

Defined once here: infra builds the cloud table from it, the local stack builds its own with it,
and the handlers name their key attributes from it. What the keys hold (one counter item per
period and client) is the handlers' business: handlers/openai/quotas.py.
"""

from __future__ import annotations

PARTITION_KEY = "pk"  # S: the period, e.g. MINUTE#2026-12-03T09:41 or DAY#2026-12-03
SORT_KEY = "sk"  # S: CLIENT#<cognito app client id>
TTL_ATTRIBUTE = "expires_at"  # N, epoch seconds: DynamoDB's TTL deletes spent counters
KEYS = ((PARTITION_KEY, "HASH"), (SORT_KEY, "RANGE"))
