"""The bad-input corpus: each request gets its 4xx with a message naming the problem, and
nothing is registered, started or deployed (the registry and the emulator are unchanged)."""

from __future__ import annotations

import pytest

from maas_contract.errors import is_error_body
from tests.reliability.bad_input_corpus import CORPUS, BadInput
from tests.reliability.reliability_helpers import DIGITS, quiesce, snapshot, tally

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def quiet_stack(stack, digits_model):
    quiesce(stack)
    return stack


@pytest.mark.parametrize("bad", CORPUS, ids=lambda bad: bad.name)
def test_bad_input_gets_a_4xx_naming_the_problem_and_changes_nothing(quiet_stack, bad: BadInput):
    stack = quiet_stack
    before = snapshot(stack)

    response = stack.call(
        bad.method,
        bad.path.replace("{model}", DIGITS),
        data=bad.body,
        headers={
            "Content-Type": bad.content_type,
            **({} if bad.idempotency_key else {"Idempotency-Key": None}),
        },
    )

    body = response.json()
    assert response.status_code == bad.status, body
    assert is_error_body(body), body  # handler or gateway: the one error body
    message = body["error"]
    assert all(word in message.lower() for word in bad.mentions), message
    assert body["request_id"] == response.headers["x-amzn-RequestId"]
    assert snapshot(stack) == before
    tally("bad inputs refused, nothing changed")
