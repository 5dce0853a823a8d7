"""Idempotency-Key for the POST routes that start work (training jobs, versions, deployments).

Powertools Idempotency keeps its records in the registry table, in their own partition.
The key is the operation plus the client's Idempotency-Key; the payload is checked too,
so a key reused with a different body is refused instead of silently answered.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from handlers import aws, store
from handlers.errors import bad_request, conflict

HEADER = "Idempotency-Key"
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
RECORD_TTL_S = 24 * 3600

Operation = Callable[[dict[str, Any]], dict[str, Any]]
_operations: dict[str, Operation] = {}
_lock = threading.Lock()
_runner: Callable[..., dict[str, Any]] | None = None
_config: IdempotencyConfig | None = None


def operation(name: str) -> Callable[[Operation], Operation]:
    """Registers `fn(payload) -> {"status": int, "body": dict}` as an idempotent operation."""

    def register(fn: Operation) -> Operation:
        _operations[name] = fn
        return fn

    return register


def _dispatch(data: dict[str, Any]) -> dict[str, Any]:
    return _operations[data["operation"]](data["payload"])


def _build_runner(config: IdempotencyConfig) -> Callable[..., dict[str, Any]]:
    persistence = DynamoDBPersistenceLayer(
        table_name=store.table(),
        key_attr="pk",
        sort_key_attr="sk",
        expiry_attr="expiration",
        boto3_client=aws.dynamodb(),
    )
    return idempotent_function(
        data_keyword_argument="data",
        persistence_store=persistence,
        config=config,
        key_prefix="maas",
    )(_dispatch)


def run(name: str, key: str | None, payload: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """Runs operation `name` once per key; a replay answers the first result.

    With the Lambda `context`, a record left in progress by a timed-out invocation expires
    with that invocation instead of blocking the key until the record's TTL.
    """
    if not key:
        raise bad_request(f"the {HEADER} header is required", code="IdempotencyKeyMissing")
    if not _KEY_PATTERN.match(key):
        raise bad_request(f"{HEADER} must be 1-255 printable characters", code="ValidationError")
    global _runner, _config
    with _lock:
        if _runner is None or _config is None:
            _config = IdempotencyConfig(
                event_key_jmespath="[operation, key]",
                payload_validation_jmespath="payload",
                raise_on_no_idempotency_key=True,
                expires_after_seconds=RECORD_TTL_S,
            )
            _runner = _build_runner(_config)
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        _config.register_lambda_context(context)
    try:
        return _runner(data={"operation": name, "key": key, "payload": payload})
    except IdempotencyAlreadyInProgressError as exc:
        raise conflict(
            "a request with this Idempotency-Key is still in progress",
            code="IdempotencyKeyInProgress",
            retry_after=1,
        ) from exc
    except IdempotencyValidationError as exc:
        raise conflict(
            "this Idempotency-Key was used with a different request",
            code="IdempotencyKeyReused",
        ) from exc


def reset() -> None:
    """Forgets the persistence layer (tests switch tables between runs)."""
    global _runner, _config
    with _lock:
        _runner = None
        _config = None
