"""The gateway runs each function in execution environments of its own, as Lambda does: one
request at a time per environment, up to the function's concurrency, warm ones reused, a timed-out
one replaced. Lambda's concurrency model:
https://docs.aws.amazon.com/lambda/latest/dg/lambda-concurrency.html
"""

from __future__ import annotations

import os
import threading
import time

import psutil
import pytest
import requests

from maas_local.gateway import GatewaySettings
from maas_local.invoker import FunctionError, IntegrationTimeout
from maas_local.tokens import mint_token

TIMEOUT = 30


def _get(gw, path: str) -> requests.Response:
    token = mint_token(gw.keys_dir, ["maas/invoke"])
    headers = {"Authorization": f"Bearer {token}", "x-api-key": gw.key.value}
    return requests.get(f"{gw.url}{path}", headers=headers, timeout=TIMEOUT)


def _wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_a_function_runs_in_a_warm_process_of_its_own_with_its_own_name(running_gateway):
    gw = running_gateway

    first, second = (_get(gw, "/v1/echo/a").json() for _ in range(2))

    assert first["pid"] == second["pid"] != os.getpid()
    assert first["function_name"] == "maas-local-echo"
    assert 0 < first["remaining_ms"] <= 500  # the context follows the integration timeout


def test_a_slow_function_stalls_neither_other_functions_nor_its_own_spare_environments(
    start_gateway,
):
    gw = start_gateway(GatewaySettings(integration_timeout_s=20, function_concurrency=4))
    slow: list[requests.Response] = []
    threads = [
        threading.Thread(target=lambda: slow.append(_get(gw, "/v1/slow?seconds=4")))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    pool = gw.server.gateway.invoker.pool("slow")
    _wait_until(lambda: pool.size == 2)  # both slow requests hold an environment each
    started = time.monotonic()

    other_function = _get(gw, "/v1/echo/a")
    same_function = _get(gw, "/v1/slow?seconds=0")

    elapsed = time.monotonic() - started
    assert other_function.status_code == 200 and same_function.status_code == 200
    assert all(thread.is_alive() for thread in threads), "the slow requests are still running"
    assert elapsed < 3, f"{elapsed:.1f} s: the prompt requests waited on the slow ones"
    for thread in threads:
        thread.join(timeout=TIMEOUT)
    assert [r.status_code for r in slow] == [200, 200]
    pids = {r.text for r in slow} | {same_function.text}
    assert len(pids) == 3, "each in-flight request had an environment of its own"


def test_a_timed_out_environment_is_killed_and_replaced(running_gateway):
    gw = running_gateway
    before = _get(gw, "/v1/slow?seconds=0")
    assert before.status_code == 200
    warm_pid = int(before.text)

    timed_out = _get(gw, "/v1/slow?seconds=5")  # served by the warm environment, past 0.5 s

    assert timed_out.status_code == 504
    _wait_until(lambda: not psutil.pid_exists(warm_pid))
    after = _get(gw, "/v1/slow?seconds=0")
    assert after.status_code == 200 and int(after.text) != warm_pid


def test_a_request_that_finds_every_environment_busy_waits_within_its_timeout(fake_invoker):
    invoker = fake_invoker(concurrency=1)
    slow_event = {"queryStringParameters": {"seconds": "3"}}
    quick_event = {"queryStringParameters": {"seconds": "0"}}
    holder = threading.Thread(target=invoker.invoke, args=("slow", slow_event, "a", 20))
    holder.start()
    _wait_until(lambda: invoker.pool("slow").size == 1)
    started = time.monotonic()

    with pytest.raises(IntegrationTimeout):
        invoker.invoke("slow", quick_event, "b", 0.5)

    waited = time.monotonic() - started
    assert 0.4 < waited < 2.5, f"waited {waited:.1f} s for a 0.5 s timeout"
    assert invoker.pool("slow").size == 1, "no environment beyond the concurrency"
    holder.join(timeout=TIMEOUT)
    reply = invoker.invoke("slow", quick_event, "c", 10)  # the environment is free again
    assert reply["statusCode"] == 200


def test_a_handler_that_cannot_load_fails_as_lambdas_import_module_error(fake_invoker):
    invoker = fake_invoker()

    with pytest.raises(FunctionError, match="Runtime.ImportModuleError"):
        invoker.invoke("no_such_function", {}, "r", 5)

    assert invoker.pool("no_such_function").size == 0, "a failed environment is not kept"


def test_a_result_json_cannot_carry_fails_as_lambdas_marshal_error(fake_invoker):
    invoker = fake_invoker()

    with pytest.raises(FunctionError, match="Runtime.MarshalError"):
        invoker.invoke("broken", {"queryStringParameters": {"mode": "unserialisable"}}, "r", 5)
    reply = invoker.invoke("broken", {"queryStringParameters": {"mode": "malformed"}}, "r", 5)

    assert reply == {"body": "no status"}, "the environment stays warm after a handler error"
