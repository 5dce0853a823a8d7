"""moto's server, with DynamoDB's consistency: every table operation runs alone.

DynamoDB applies a conditional write, and a whole TransactWriteItems, atomically: two callers
that race for the same version number cannot both succeed, and no reader sees a transaction
half-applied ("TransactWriteItems is a synchronous and idempotent write operation that groups
up to 100 write actions in a single all-or-nothing operation",
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
moto's server is threaded and its backend takes no lock: it checks a transaction's conditions,
then writes, and on a failure restores a copy of the whole table, so concurrent handlers (one
per Lambda execution environment) could both win a race that DynamoDB lets only one win, and a
failed transaction could undo another's write. Serialising the backend's table operations
closes both, at the cost of some parallelism inside one table, which a laptop does not need.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

_OPERATIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "get_item",
    "query",
    "scan",
    "batch_write_item",
    "batch_get_item",
    "transact_write_items",
    "transact_get_items",
)
_LOCK = threading.RLock()


def _serialised(operation: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(operation)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return operation(*args, **kwargs)

    locked.__dict__["maas_serialised"] = True
    return locked


def serialise_dynamodb() -> None:
    """Makes moto's DynamoDB table operations run one at a time, in this process."""
    for name in _OPERATIONS:
        operation = getattr(DynamoDBBackend, name)
        if not getattr(operation, "maas_serialised", False):
            setattr(DynamoDBBackend, name, _serialised(operation))


def main(argv: list[str] | None = None) -> None:
    serialise_dynamodb()
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main()
