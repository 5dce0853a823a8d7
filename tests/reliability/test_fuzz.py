"""Schemathesis against the document the local gateway serves and the gateway itself.

Every operation gets schema-valid (positive) and schema-breaking (negative) cases, seeded
(hypothesis `derandomize`), so a run is repeatable. The prediction routes get a second round
aimed at the trained digits model, so the bodies reach the real model code. A case passes when
the answer is not a 5xx, its status is documented for the operation, its body and content type
match what the document says for that status, a schema-breaking case is refused, and a
schema-valid one is not refused with 400 (a refusal that depends on state is a 404 or 409).

The document is the one the stage serves (GET /v1/openapi.json), which names the stage's own
buckets. The few rules that JSON Schema cannot say (a relation between two fields, the binary
tensor body's layout) are in the document's descriptions; positive cases that break them are
left out here (`documented_rules_hold`), and the negative corpus and handler tests cover them.
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
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.reliability.reliability_helpers import DIGITS, FIGURES

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

POSITIVE_PER_OPERATION = 30
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
POSITIVE = [*CONFORMANCE, positive_data_acceptance]
BINARY_TENSORS = "application/octet-stream"


def documented_rules_hold(case) -> bool:
    """Whether a generated case keeps the rules the document states only in words."""
    body = case.body if isinstance(case.body, dict) else {}
    deployment = body.get("deployment") if isinstance(body.get("deployment"), dict) else body
    if "instance_count" in deployment or "min_instances" in deployment:
        low, count = deployment.get("min_instances", 1), deployment.get("instance_count", 1)
        high = deployment.get("max_instances")
        if not low <= count or (high is not None and not (count <= high and low <= high)):
            return False
    if case.path == "/v1/training-jobs" and case.method.upper() == "POST":
        gated = body.get("deployment") and body.get("metric_threshold")
        if body.get("auto_deploy") and not gated:
            return False
        wait = body.get("max_wait_seconds")
        if wait is not None and (
            not body.get("spot", True) or wait < body.get("max_runtime_seconds", 14_400)
        ):
            return False
    if "Inference-Header-Content-Length" in (case.headers or {}):
        return False  # it must be where the JSON ends: a length the generator cannot know
    if case.path.endswith("/infer"):
        # A tensor's values come in `data`, or, only under the binary extension (its own media
        # type, and the header naming where the JSON ends), as raw bytes after the JSON.
        inputs = body.get("inputs") or []
        if any(isinstance(t, dict) and t.get("data") is None for t in inputs):
            return False
    # A binary tensor body is JSON, then raw bytes at the offsets the JSON names.
    return case.media_type != BINARY_TENSORS


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
    strategy = operation.as_strategy(generation_mode=mode, **fixed)
    if mode == schemathesis.GenerationMode.POSITIVE:
        strategy = strategy.filter(documented_rules_hold)

    @settings(
        max_examples=examples,
        derandomize=True,  # the seed is the test itself: the same cases on every run
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time, first failure
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case) -> None:
        send(case, mode)

    run()


def test_generated_requests_get_documented_answers_and_never_a_5xx(stack, digits_model, tmp_path):
    served = stack.call("GET", "/v1/openapi.json")
    assert served.status_code == 200, served.text
    (tmp_path / "openapi.json").write_text(served.text)
    schema = schemathesis.openapi.from_path(str(tmp_path / "openapi.json"), config=FUZZ_CONFIG)
    operations = [result.ok() for result in schema.get_all_operations()]
    headers = stack.headers("invoke,admin")
    statuses: Counter = Counter()
    failures: list[str] = []

    def send(case, mode) -> None:
        checks = NEGATIVE if mode == schemathesis.GenerationMode.NEGATIVE else POSITIVE
        if case.path == "/v1/models/{model}/predict" or case.path.endswith("/infer"):
            # The values are whatever the model's inference.py takes: the model, not the
            # document, says which are acceptable (400 ModelRejectedInput for the others).
            checks = NEGATIVE if checks is NEGATIVE else CONFORMANCE
        response = case.call(
            base_url=stack.api_url, session=stack.session, headers=headers, timeout=60
        )
        statuses[response.status_code] += 1
        case.validate_response(response, checks=checks)

    before = {job["id"] for job in stack.call("GET", "/v1/training-jobs").json()["items"]}
    try:
        for operation in operations:
            for name, mode, examples, fixed in _rounds(operation):
                try:
                    _fuzz(operation, mode, examples, fixed, send)
                except Unsatisfiable:  # no parameter or body left to make invalid
                    assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label
                except (Exception, BaseExceptionGroup) as failure:  # every failing operation
                    failures.append(f"{operation.label} [{name}]:\n{failure}")
    finally:
        # Schema-valid job requests start real jobs: stop them, so that no later test shares
        # the CPU with them.
        for job in stack.call("GET", "/v1/training-jobs?limit=100").json()["items"]:
            if job["id"] not in before and job["status"] == "InProgress":
                stack.call("DELETE", f"/v1/training-jobs/{job['id']}")

    tried = sum(statuses.values())
    FIGURES["fuzz"] = {"operations": len(operations), "cases": tried, "statuses": dict(statuses)}
    print(f"\nfuzz: {len(operations)} operations, {tried} cases, statuses {dict(statuses)}")
    assert len(operations) == len([m for item in schema.raw_schema["paths"].values() for m in item])
    assert not failures, "\n\n".join(failures)
    assert tried >= MIN_CASES
    assert not [s for s in statuses if s >= 500]
