"""API keys with per-key rate, burst and quota, applied as API Gateway usage plans apply them."""

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

    def __init__(self, plan: UsagePlan, now: float) -> None:
        self.plan = plan
        self.tokens = float(plan.burst_limit)
        self.refilled_at = now
        self.period_start = _period_start(plan.quota_period, now)
        self.used = 0

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
    """Looks a presented key up in constant time and meters it; thread-safe."""

    def __init__(self, keys: list[ApiKey], clock=time.time) -> None:
        self._keys = list(keys)
        self._clock = clock
        self._meters: dict[str, _Meter] = {}
        self._lock = threading.Lock()

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
                meter = self._meters[key.id] = _Meter(key.plan, now)
            return meter.take(now), key
