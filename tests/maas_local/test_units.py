"""Pieces of the local stack that need no server: usage plans and scope names."""

from __future__ import annotations

from maas_local.tokens import scope_names
from maas_local.usage_plans import UsagePlan, UsagePlans, Verdict, new_api_key


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_rate_limit_refills_over_time_like_a_token_bucket():
    clock = Clock()
    key = new_api_key("k", UsagePlan(rate_limit=2.0, burst_limit=2, quota_limit=1000))
    plans = UsagePlans([key], clock=clock)
    verdicts = [plans.admit(key.value)[0] for _ in range(3)]
    assert verdicts == [Verdict.ALLOWED, Verdict.ALLOWED, Verdict.THROTTLED]
    clock.now += 0.5  # one token back at 2 per second
    assert plans.admit(key.value)[0] is Verdict.ALLOWED
    assert plans.admit(key.value)[0] is Verdict.THROTTLED


def test_quota_resets_when_the_day_turns():
    clock = Clock(1_700_006_400.0 - 10)  # ten seconds before a UTC midnight
    key = new_api_key("k", UsagePlan(quota_limit=1))
    plans = UsagePlans([key], clock=clock)
    assert plans.admit(key.value)[0] is Verdict.ALLOWED
    assert plans.admit(key.value)[0] is Verdict.QUOTA_EXCEEDED
    clock.now += 20
    assert plans.admit(key.value)[0] is Verdict.ALLOWED


def test_unknown_or_missing_key_is_forbidden_and_keys_are_metered_apart():
    first, second = new_api_key("a", UsagePlan(quota_limit=1)), new_api_key("b")
    plans = UsagePlans([first, second])
    assert plans.admit(None)[0] is Verdict.FORBIDDEN
    assert plans.admit(first.value + "x")[0] is Verdict.FORBIDDEN
    assert plans.admit(first.value) == (Verdict.ALLOWED, first)
    assert plans.admit(first.value)[0] is Verdict.QUOTA_EXCEEDED
    assert plans.admit(second.value) == (Verdict.ALLOWED, second)


def test_short_scope_names_get_the_maas_prefix():
    assert scope_names("invoke,admin") == ["maas/invoke", "maas/admin"]
    assert scope_names("maas/admin") == ["maas/admin"]
