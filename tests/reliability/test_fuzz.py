"""Schemathesis against the committed openapi.json and the running local gateway.

Every operation gets schema-valid (positive) and schema-breaking (negative) cases, seeded
(hypothesis `derandomize`), so a run is repeatable. The prediction routes get a second round
aimed at the trained digits model, so the bodies reach the real model code. A case passes when
the answer is not a 5xx, its status is documented for the operation, and its body and content
type match what the document says for that status.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.reliability.reliability_helpers import DIGITS, FIGURES, OPENAPI

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

POSITIVE_PER_OPERATION = 50
NEGATIVE_PER_OPERATION = 20
AIMED_AT_DIGITS = 40  # extra positive and negative cases per prediction route, on a real model
MIN_CASES = 1000
# The caller is always authenticated: the auth matrix covers refusals, so every case
# reaches the handlers instead of stopping at a generated, invalid API key.
FUZZ_CONFIG = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
NEGATIVE = [*CONFORMANCE, negative_data_rejection]


def _rounds(operation) -> list[tuple[str, object, int, dict]]:
    rounds = [
        ("positive", schemathesis.GenerationMode.POSITIVE, POSITIVE_PER_OPERATION, {}),
        ("negative", schemathesis.GenerationMode.NEGATIVE, NEGATIVE_PER_OPERATION, {}),
    ]
    if operation.method.upper() == "POST" and operation.tags and operation.tags[0] == "predict":
        pinned = {"path_parameters": {"model": DIGITS}}
        rounds += [
            ("positive@digits", schemathesis.GenerationMode.POSITIVE, AIMED_AT_DIGITS, pinned),
            ("negative@digits", schemathesis.GenerationMode.NEGATIVE, AIMED_AT_DIGITS // 2, pinned),
        ]
    return rounds


def _fuzz(operation, mode, examples: int, fixed: dict, send) -> None:
    @settings(
        max_examples=examples,
        derandomize=True,  # the seed is the test itself: the same cases on every run
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time, first failure
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    def run(case) -> None:
        send(case, mode)

    run()


def test_generated_requests_get_documented_answers_and_never_a_5xx(stack, digits_model):
    schema = schemathesis.openapi.from_path(str(OPENAPI), config=FUZZ_CONFIG)
    operations = [result.ok() for result in schema.get_all_operations()]
    headers = stack.headers("invoke,admin")
    statuses: Counter = Counter()
    failures: list[str] = []

    def send(case, mode) -> None:
        checks = NEGATIVE if mode == schemathesis.GenerationMode.NEGATIVE else CONFORMANCE
        response = case.call(
            base_url=stack.api_url, session=stack.session, headers=headers, timeout=60
        )
        statuses[response.status_code] += 1
        case.validate_response(response, checks=checks)

    for operation in operations:
        for name, mode, examples, fixed in _rounds(operation):
            try:
                _fuzz(operation, mode, examples, fixed, send)
            except Unsatisfiable:  # no parameter or body left to make invalid
                assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as failure:  # report every failing operation
                failures.append(f"{operation.label} [{name}]:\n{failure}")

    tried = sum(statuses.values())
    FIGURES["fuzz"] = {"operations": len(operations), "cases": tried, "statuses": dict(statuses)}
    print(f"\nfuzz: {len(operations)} operations, {tried} cases, statuses {dict(statuses)}")
    assert len(operations) == len([m for item in schema.raw_schema["paths"].values() for m in item])
    assert not failures, "\n\n".join(failures)
    assert tried >= MIN_CASES
    assert not [s for s in statuses if s >= 500]
