"""Per-client token accounting in DynamoDB: the token-usage table's only reader and writer.

The table (TOKEN_USAGE_TABLE) has partition key `pk` (S) and sort key `sk` (S), and TTL on
`expires_at` (N, epoch seconds). One counter item per period and client:

    pk=MINUTE#2025-06-01T09:41   sk=CLIENT#{cognito app client id}   (expires an hour later)
    pk=DAY#2025-06-01            sk=CLIENT#{cognito app client id}   (expires 8 days later)

each holding `prompt_tokens`, `completion_tokens`, `total_tokens` and `requests` (N), added to
with UpdateItem ADD (atomic, so concurrent functions never lose a count), and `client_name`,
`api_key_id` (S). The period leads the key so that one Query per period reads every client's
counts for the usage report. Periods are UTC.

Limits come from TOKEN_QUOTAS, `{"<client id>": {"name", "tokens_per_minute",
"tokens_per_day"}}`. A request is refused up front when its `max_tokens` is more than what is
left of either budget; afterwards what it really used (prompt + completion) is added. The check
and the count are separate calls, so concurrent requests can together overshoot a budget by up
to their max_tokens: a soft limit, as OpenAI's own token limits are. A client missing from
TOKEN_QUOTAS has no limit but is counted all the same.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from handlers.openai import aws
from handlers.openai.protocol import OpenAIError
from maas_contract import settings
from maas_contract.settings import MisconfiguredError
from maas_contract.token_usage import PARTITION_KEY, SORT_KEY, TTL_ATTRIBUTE

MINUTE_KEEP_S = 3600
DAY_KEEP_S = 8 * 86400
COUNTERS = ("prompt_tokens", "completion_tokens", "total_tokens", "requests")


def clock() -> float:
    """Now, in epoch seconds (tests replace it to cross a minute on purpose)."""
    return time.time()


@dataclass(frozen=True)
class Limits:
    name: str
    tokens_per_minute: int | None
    tokens_per_day: int | None


class TokenCounts(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    requests: int = 0


class TokenLimits(BaseModel):
    tokens_per_minute: int | None = None
    tokens_per_day: int | None = None


class ClientUsage(BaseModel):
    client_id: str
    name: str | None = None
    minute: TokenCounts
    day: TokenCounts
    limits: TokenLimits | None = None


class UsageReport(BaseModel):
    """Each client's tokens this UTC minute and today, with its limits (none: unlimited)."""

    minute: str
    day: str
    clients: list[ClientUsage]


@dataclass(frozen=True)
class Periods:
    minute: str
    day: str
    minute_left_s: int  # until the minute ends
    day_left_s: int  # until UTC midnight
    minute_expires: int
    day_expires: int


def periods(now: float) -> Periods:
    moment = datetime.fromtimestamp(now, UTC)
    minute_start = moment.replace(second=0, microsecond=0)
    day_start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    minute_end = minute_start + timedelta(minutes=1)
    day_end = day_start + timedelta(days=1)
    return Periods(
        minute=minute_start.strftime("%Y-%m-%dT%H:%M"),
        day=day_start.strftime("%Y-%m-%d"),
        minute_left_s=max(1, math.ceil(minute_end.timestamp() - now)),
        day_left_s=max(1, math.ceil(day_end.timestamp() - now)),
        minute_expires=int(minute_end.timestamp()) + MINUTE_KEEP_S,
        day_expires=int(day_end.timestamp()) + DAY_KEEP_S,
    )


def _limit(name: str, value: Any, field: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MisconfiguredError(f"TOKEN_QUOTAS: {name}.{field} must be a whole number >= 0")
    return value


def configured_limits(text: str | None = None) -> dict[str, Limits]:
    """TOKEN_QUOTAS, parsed; empty when unset."""
    raw = text if text is not None else _optional("token_quotas")
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise MisconfiguredError("TOKEN_QUOTAS is not JSON") from None
    if not isinstance(parsed, dict) or not all(isinstance(v, dict) for v in parsed.values()):
        raise MisconfiguredError("TOKEN_QUOTAS: want {client id: {name, tokens_per_minute, ...}}")
    return {
        client: Limits(
            name=str(spec.get("name") or client),
            tokens_per_minute=_limit(client, spec.get("tokens_per_minute"), "tokens_per_minute"),
            tokens_per_day=_limit(client, spec.get("tokens_per_day"), "tokens_per_day"),
        )
        for client, spec in parsed.items()
    }


def _optional(setting: str) -> str | None:
    try:
        return settings.read(setting)
    except MisconfiguredError:
        return None


def table_name() -> str | None:
    """The table, or None: then nothing is counted, which is only allowed without limits."""
    name = _optional("token_usage_table")
    if name is None and _optional("token_quotas"):
        raise MisconfiguredError("TOKEN_QUOTAS is set but TOKEN_USAGE_TABLE is not")
    return name


def _key(period: str, client_id: str) -> dict[str, Any]:
    return {PARTITION_KEY: {"S": period}, SORT_KEY: {"S": f"CLIENT#{client_id}"}}


def _counts(item: dict[str, Any] | None) -> TokenCounts:
    item = item or {}
    return TokenCounts(**{c: int(item[c]["N"]) for c in COUNTERS if c in item})


def _used(table: str, period: str, client_id: str) -> int:
    found = aws.dynamodb().get_item(
        TableName=table,
        Key=_key(period, client_id),
        ProjectionExpression="total_tokens",
        ConsistentRead=True,
    )
    return _counts(found.get("Item")).total_tokens


def _refuse(client: str, window: str, limit: int, used: int, wanted: int, wait: int) -> None:
    raise OpenAIError(
        429,
        f"Rate limit reached for {client} on tokens per {window}: Limit {limit}, Used {used}, "
        f"Requested {wanted}. Please try again in {wait}s.",
        kind="tokens",
        code="rate_limit_exceeded",
        headers={"Retry-After": str(wait)},
    )


def check(client_id: str, max_tokens: int) -> None:
    """Refuses (429, Retry-After) a request whose max_tokens is more than what is left."""
    limits = configured_limits().get(client_id)
    table = table_name()
    if limits is None or table is None:
        return
    now = periods(clock())
    for limit, period, window, wait in (
        (limits.tokens_per_minute, now.minute, "min (TPM)", now.minute_left_s),
        (limits.tokens_per_day, now.day, "day (TPD)", now.day_left_s),
    ):
        if limit is None:
            continue
        used = _used(table, period, client_id)
        if max_tokens > limit - used:
            _refuse(limits.name, window, limit, used, max_tokens, wait)


def record(client_id: str, api_key_id: str | None, prompt: int, completion: int) -> None:
    """Adds what a request used to its client's minute and day (nothing without a table)."""
    table = table_name()
    if table is None:
        return
    limits = configured_limits().get(client_id)
    now = periods(clock())
    names = {"#ttl": TTL_ATTRIBUTE}
    values: dict[str, Any] = {
        ":prompt": {"N": str(prompt)},
        ":completion": {"N": str(completion)},
        ":total": {"N": str(prompt + completion)},
        ":one": {"N": "1"},
        ":name": {"S": limits.name if limits else client_id},
        ":key": {"S": api_key_id or ""},
    }
    for period, expires in ((now.minute, now.minute_expires), (now.day, now.day_expires)):
        aws.dynamodb().update_item(
            TableName=table,
            Key=_key(period, client_id),
            UpdateExpression=(
                "ADD prompt_tokens :prompt, completion_tokens :completion, "
                "total_tokens :total, requests :one "
                "SET #ttl = :expires, client_name = :name, api_key_id = :key"
            ),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={**values, ":expires": {"N": str(expires)}},
        )


def _period_items(table: str, period: str) -> dict[str, TokenCounts]:
    found: dict[str, TokenCounts] = {}
    params: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#pk = :period",
        "ExpressionAttributeNames": {"#pk": PARTITION_KEY},
        "ExpressionAttributeValues": {":period": {"S": period}},
    }
    while True:
        page = aws.dynamodb().query(**params)
        for item in page.get("Items", []):
            found[item[SORT_KEY]["S"].removeprefix("CLIENT#")] = _counts(item)
        if "LastEvaluatedKey" not in page:
            return found
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def report() -> UsageReport:
    """Every client counted this minute or today, and every configured client."""
    table = table_name()
    if table is None:
        raise MisconfiguredError("TOKEN_USAGE_TABLE is not set")
    limits = configured_limits()
    now = periods(clock())
    minute, day = _period_items(table, now.minute), _period_items(table, now.day)
    clients = []
    for client in sorted(set(limits) | set(minute) | set(day)):
        configured = limits.get(client)
        clients.append(
            ClientUsage(
                client_id=client,
                name=configured.name if configured else None,
                minute=minute.get(client, TokenCounts()),
                day=day.get(client, TokenCounts()),
                limits=TokenLimits(
                    tokens_per_minute=configured.tokens_per_minute,
                    tokens_per_day=configured.tokens_per_day,
                )
                if configured
                else None,
            )
        )
    return UsageReport(minute=now.minute, day=now.day, clients=clients)
