"""Idempotency-Key for the POST routes that start work (training jobs, versions, deployments).

Powertools Idempotency keeps its records in the registry table, in their own partition. The
record's key is the operation plus the client's Idempotency-Key; the payload is checked too,
so a key reused with a different body is refused instead of silently answered. A replay
answers the first result, stored as JSON and validated back into the operation's model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import (
    PydanticSerializer,
)
from pydantic import BaseModel

from handlers.shared import aws, registry_table
from handlers.shared.errors import bad_request, conflict

HEADER = "Idempotency-Key"
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
RECORD_TTL_S = 24 * 3600

Result = TypeVar("Result", bound=BaseModel)
_persistence: DynamoDBPersistenceLayer | None = None


def _store() -> DynamoDBPersistenceLayer:
    global _persistence
    if _persistence is None:
        _persistence = DynamoDBPersistenceLayer(
            table_name=registry_table.table_name(),
            key_attr=registry_table.PK,
            sort_key_attr=registry_table.SK,
            expiry_attr=registry_table.TTL_ATTRIBUTE,
            boto3_client=aws.dynamodb(),
        )
    return _persistence


def check_key(key: str | None) -> str:
    if not key:
        raise bad_request(f"the {HEADER} header is required", code="IdempotencyKeyMissing")
    if not _KEY_PATTERN.match(key):
        raise bad_request(f"{HEADER} must be 1-255 printable characters", code="ValidationError")
    return key


def run(
    operation: str,
    key: str | None,
    payload: dict[str, Any],
    work: Callable[[], Result],
    result: type[Result],
    context: Any,
) -> Result:
    """Does `work` once per (operation, key); a replay with the same payload answers the first
    result. With the Lambda `context`, a record left in progress by a timed-out invocation
    expires with that invocation instead of blocking the key until the record's TTL."""
    data = {"operation": operation, "key": check_key(key), "payload": payload}
    config = IdempotencyConfig(
        event_key_jmespath="[operation, key]",
        payload_validation_jmespath="payload",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=RECORD_TTL_S,
    )
    config.register_lambda_context(context)
    once = idempotent_function(
        data_keyword_argument="data",
        persistence_store=_store(),
        config=config,
        key_prefix="maas",
        output_serializer=PydanticSerializer(model=result),
    )(lambda data: work())
    try:
        return once(data=data)
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
    """Forgets the persistence layer, so the next call reads the table name afresh."""
    global _persistence
    _persistence = None
