"""A key's quota counts on across a restart of the gateway: `maas local down` + `up`, or a
`kill -9`, leaves the count where it was, in the same period; a new period starts from zero.

API Gateway reads the key, matches it against its usage plan and applies the plan's throttle and
quota before the integration
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-api-key-source.html),
so a request counts when the gateway admits it; the local gate writes the count to disk before
the admitted request goes on. Quotas are per key and per DAY, WEEK or MONTH
(https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-api-usage-plans.html).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from maas_contract import errors
from maas_local.config import REPO_ROOT
from maas_local.tokens import create_issuer, mint_token
from maas_local.usage_plans import (
    QUOTA_COUNTERS_FILE,
    UsagePlan,
    UsagePlans,
    Verdict,
    load_api_keys,
    new_api_key,
    save_api_keys,
)
from tests.maas_local.conftest import FAKE_HANDLERS, FAKE_HANDLERS_ROOT
from tests.maas_local.sagemaker.emulator_helpers import free_port, wait_for
from tests.maas_local.test_units import Clock

MIDNIGHT = 1_700_006_400.0  # a UTC midnight
TIMEOUT = 30


def _keys(tmp_path: Path, plan: UsagePlan) -> Path:
    keys_dir = tmp_path / "keys"
    save_api_keys(keys_dir, [new_api_key("metered", plan)])
    return keys_dir


def _gate(keys_dir: Path, clock: Clock) -> UsagePlans:
    """A gate as a freshly started gateway builds it: the keys, and the counters beside them."""
    return UsagePlans(
        load_api_keys(keys_dir), clock=clock, counters_file=keys_dir / QUOTA_COUNTERS_FILE
    )


def test_a_new_gate_over_the_same_keys_counts_on_from_the_last_one(tmp_path):
    # given a gate that has admitted 3 of a key's 5 requests today
    keys_dir = _keys(tmp_path, UsagePlan(quota_limit=5))
    (key,) = load_api_keys(keys_dir)
    clock = Clock(MIDNIGHT + 3600)
    first = _gate(keys_dir, clock)
    assert [first.admit(key.value)[0] for _ in range(3)] == [Verdict.ALLOWED] * 3

    # when a new gate starts over the same keys, later the same day
    clock.now += 3600
    second = _gate(keys_dir, clock)

    # then it admits the 2 requests left, and refuses the sixth as over the quota
    verdicts = [second.admit(key.value)[0] for _ in range(3)]
    assert verdicts == [Verdict.ALLOWED, Verdict.ALLOWED, Verdict.QUOTA_EXCEEDED]


def test_a_new_period_starts_from_zero_after_a_restart(tmp_path):
    # given a key that spent its daily quota just before midnight
    keys_dir = _keys(tmp_path, UsagePlan(quota_limit=2))
    (key,) = load_api_keys(keys_dir)
    clock = Clock(MIDNIGHT - 10)
    first = _gate(keys_dir, clock)
    assert [first.admit(key.value)[0] for _ in range(3)][-1] is Verdict.QUOTA_EXCEEDED

    # when a new gate starts after midnight
    clock.now += 20
    second = _gate(keys_dir, clock)

    # then the new day's quota is whole
    assert [second.admit(key.value)[0] for _ in range(3)] == [
        Verdict.ALLOWED,
        Verdict.ALLOWED,
        Verdict.QUOTA_EXCEEDED,
    ]


def test_counters_are_owner_only_and_a_refusal_writes_nothing(tmp_path):
    # given a key with a burst of 1 that refills almost never
    keys_dir = _keys(tmp_path, UsagePlan(rate_limit=0.001, burst_limit=1, quota_limit=10))
    (key,) = load_api_keys(keys_dir)
    gate = _gate(keys_dir, Clock(MIDNIGHT + 60))
    counters = keys_dir / QUOTA_COUNTERS_FILE

    # when one request is admitted and the next is throttled
    assert gate.admit(key.value)[0] is Verdict.ALLOWED
    written = counters.read_text()
    assert gate.admit(key.value)[0] is Verdict.THROTTLED

    # then the file holds the one admitted request, for the owner alone
    assert counters.read_text() == written
    assert '"used": 1' in written
    assert counters.stat().st_mode & 0o777 == 0o600


@contextmanager
def _gateway_process(keys_dir: Path, openapi: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """`python -m maas_local.gateway_server` in front of the stand-in handlers, as `up` starts
    it; it is killed when the block ends, if the test has not stopped it."""
    port = free_port()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(FAKE_HANDLERS_ROOT), str(REPO_ROOT)])
    command = [
        sys.executable,
        "-m",
        "maas_local.gateway_server",
        f"--port={port}",
        f"--keys-dir={keys_dir}",
        f"--openapi={openapi}",
        f"--handlers-package={FAKE_HANDLERS}",
    ]
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)  # noqa: S603
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _health(url, process), timeout=TIMEOUT)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=TIMEOUT)


def _health(url: str, process: subprocess.Popen) -> bool:
    assert process.poll() is None, "the gateway exited while starting"
    try:
        return requests.get(f"{url}/_local/health", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["down-and-up", "kill-9"])
def test_a_restarted_gateway_counts_on_and_refuses_past_the_quota(tmp_path, fake_openapi, stop):
    # given a gateway that has answered 2 of a key's 3 requests a day
    keys_dir = _keys(tmp_path, UsagePlan(quota_limit=3))
    create_issuer(keys_dir, "http://127.0.0.1/_local/issuer")
    (key,) = load_api_keys(keys_dir)
    headers = {
        "Authorization": f"Bearer {mint_token(keys_dir, ['maas/invoke'])}",
        "x-api-key": key.value,
    }
    with _gateway_process(keys_dir, fake_openapi) as (first, url):
        codes = [_get(url, headers).status_code for _ in range(2)]

        # when it is stopped (SIGTERM, as `down` stops it) or killed, and started again
        first.send_signal(stop)
        first.wait(timeout=TIMEOUT)
    with _gateway_process(keys_dir, fake_openapi) as (_, url):
        codes.append(_get(url, headers).status_code)
        refused = _get(url, headers)

    # then it answers the third request and refuses the fourth with API Gateway's own body
    assert codes == [200, 200, 200]
    assert refused.status_code == 429
    assert refused.json() == errors.QUOTA_EXCEEDED.body(refused.headers["x-amzn-RequestId"])
    assert refused.headers["x-amzn-ErrorType"] == "TooManyRequestsException"


def _get(url: str, headers: dict[str, str]) -> requests.Response:
    return requests.get(f"{url}/v1/echo/a", headers=headers, timeout=TIMEOUT)
