"""API keys with per-key rate, burst and quota, applied as API Gateway usage plans apply them.

API Gateway reads the key, matches it against its usage plan and applies the plan's throttle
and quota before the integration runs
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-api-key-source.html):
a request counts against the quota when the gateway admits it, whatever the integration then
answers. The quota counters are written to `quota_counters.json` beside the keys before the
admitted request goes on, so a gateway restarted (`maas local down` + `up`, or a `kill -9`)
counts on in the same period and never forgets a request it let through. The token buckets
are not kept: a restarted gateway starts with full buckets, as after an idle second.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

from maas_local.config import read_json, write_private_json

API_KEYS_FILE = "api_keys.json"
QUOTA_COUNTERS_FILE = "quota_counters.json"
PERIOD_SECONDS = {"DAY": 86_400, "WEEK": 7 * 86_400, "MONTH": 30 * 86_400}


@dataclass(frozen=True)
class UsagePlan:
    rate_limit: float = 50.0  # steady requests per second
    burst_limit: int = 100  # bucket size
    quota_limit: int = 100_000  # requests per period
    quota_period: str = "DAY"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    value: str
    plan: UsagePlan

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ApiKey:
        return cls(data["id"], data["name"], data["value"], UsagePlan(**data["plan"]))


def new_api_key(name: str, plan: UsagePlan | None = None) -> ApiKey:
    return ApiKey(
        id=secrets.token_hex(5),
        name=name,
        value=secrets.token_urlsafe(30),
        plan=plan or UsagePlan(),
    )


def save_api_keys(keys_dir: Path, keys: list[ApiKey]) -> None:
    write_private_json(keys_dir / API_KEYS_FILE, {"keys": [asdict(k) for k in keys]})


def load_api_keys(keys_dir: Path) -> list[ApiKey]:
    data = read_json(keys_dir / API_KEYS_FILE) or {"keys": []}
    return [ApiKey.from_dict(item) for item in data["keys"]]


def ensure_api_key(keys_dir: Path, name: str = "local-default") -> ApiKey:
    """Keep the key a user already has across restarts; make one on the first start."""
    keys = load_api_keys(keys_dir)
    if not keys:
        keys = [new_api_key(name)]
        save_api_keys(keys_dir, keys)
    return keys[0]


class Verdict(Enum):
    ALLOWED = "allowed"
    FORBIDDEN = "forbidden"  # missing or unknown key: 403
    THROTTLED = "throttled"  # over rate/burst: 429 Too Many Requests
    QUOTA_EXCEEDED = "quota"  # over the period's quota: 429 Limit Exceeded


class _Meter:
    """A token bucket for rate/burst and a counter per quota period, for one key."""

    def __init__(self, plan: UsagePlan, now: float, saved: dict[str, Any] | None = None) -> None:
        self.plan = plan
        self.tokens = float(plan.burst_limit)
        self.refilled_at = now
        self.period_start = _period_start(plan.quota_period, now)
        self.used = 0
        kept = saved or {}
        if (kept.get("period"), kept.get("period_start")) == (plan.quota_period, self.period_start):
            self.used = int(kept["used"])  # counting goes on in the same period

    def counter(self) -> dict[str, Any]:
        """What is kept on disk for this key: a count that a later period does not inherit."""
        return {
            "period": self.plan.quota_period,
            "period_start": self.period_start,
            "used": self.used,
        }

    def take(self, now: float) -> Verdict:
        period_start = _period_start(self.plan.quota_period, now)
        if period_start != self.period_start:
            self.period_start, self.used = period_start, 0
        if self.used >= self.plan.quota_limit:
            return Verdict.QUOTA_EXCEEDED
        elapsed = max(0.0, now - self.refilled_at)
        self.tokens = min(self.plan.burst_limit, self.tokens + elapsed * self.plan.rate_limit)
        self.refilled_at = now
        if self.tokens < 1.0:
            return Verdict.THROTTLED
        self.tokens -= 1.0
        self.used += 1
        return Verdict.ALLOWED


def _period_start(period: str, now: float) -> int:
    if period == "DAY":
        day = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return int(day.timestamp())
    length = PERIOD_SECONDS.get(period, PERIOD_SECONDS["DAY"])
    return int(now // length) * length


class UsagePlans:
    """Looks a presented key up in constant time and meters it; thread-safe.

    With `counters_file`, each admitted request's count is on disk before `admit` answers (one
    small fsync'd write per admitted request; refusals write nothing)."""

    def __init__(
        self, keys: list[ApiKey], clock=time.time, counters_file: Path | None = None
    ) -> None:
        self._keys = list(keys)
        self._clock = clock
        self._meters: dict[str, _Meter] = {}
        self._lock = threading.Lock()
        self._counters_file = counters_file
        self._counters: dict[str, dict[str, Any]] = (
            (read_json(counters_file) or {}) if counters_file else {}
        )

    def find(self, presented: str | None) -> ApiKey | None:
        if not presented:
            return None
        found = None
        for key in self._keys:  # compare against all keys so timing reveals nothing
            if hmac.compare_digest(key.value.encode(), presented.encode()):
                found = key
        return found

    def admit(self, presented: str | None) -> tuple[Verdict, ApiKey | None]:
        key = self.find(presented)
        if key is None:
            return Verdict.FORBIDDEN, None
        with self._lock:
            now = self._clock()
            meter = self._meters.get(key.id)
            if meter is None:
                saved = self._counters.get(key.id)
                meter = self._meters[key.id] = _Meter(key.plan, now, saved)
            verdict = meter.take(now)
            if verdict is Verdict.ALLOWED and self._counters_file is not None:
                self._keep_count(key.id, meter, self._counters_file)
            return verdict, key

    def _keep_count(self, key_id: str, meter: _Meter, path: Path) -> None:
        self._counters[key_id] = meter.counter()
        try:
            write_private_json(path, self._counters)
        except OSError:
            # Not on disk, so not let through: the caller gets no answer rather than one a
            # restarted gateway would not have counted.
            meter.used -= 1
            self._counters[key_id] = meter.counter()
            raise


def load_usage_plans(keys_dir: Path) -> UsagePlans:
    """The gateway's usage plans: the stack's keys, with their quota counters kept beside them."""
    return UsagePlans(load_api_keys(keys_dir), counters_file=keys_dir / QUOTA_COUNTERS_FILE)
