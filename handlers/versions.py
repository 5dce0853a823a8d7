"""Models and their versions in the registry: reads and the one conditional registration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from handlers import store
from handlers.errors import ApiError, conflict, not_found

_AUTO_NUMBER_ATTEMPTS = 5


def require_model(name: str) -> dict[str, Any]:
    model = store.get_model(name)
    if model is None:
        raise not_found(f"model {name} is not registered")
    return model


def require_version(model: str, version: int) -> dict[str, Any]:
    key = {"pk": {"S": f"MODEL#{model}"}, "sk": {"S": store.version_sk(version)}}
    found = store.get_item(key)
    if found is None:
        raise not_found(f"version {version} of model {model} is not registered")
    return found


def _write(
    model: str,
    endpoint_name: str,
    version: int,
    attrs: dict[str, Any],
    extra: Callable[[int], list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    now = store.now_iso()
    item = {**attrs, "model": model, "version": version, "created_at": now}
    model_values = store.serialize(
        {":v": version, ":name": model, ":ep": endpoint_name, ":now": now, ":g": "MODEL"}
    )
    store.transact(
        [
            {
                "Update": {
                    "TableName": store.table(),
                    "Key": store.model_key(model),
                    "UpdateExpression": (
                        "SET latest_version = :v, #name = :name, updated_at = :now,"
                        " endpoint_name = if_not_exists(endpoint_name, :ep),"
                        " created_at = if_not_exists(created_at, :now), gsi1pk = :g, gsi1sk = :name"
                    ),
                    "ConditionExpression": (
                        "attribute_not_exists(latest_version) OR latest_version < :v"
                    ),
                    "ExpressionAttributeNames": {"#name": "name"},
                    "ExpressionAttributeValues": model_values,
                }
            },
            {
                "Put": {
                    "TableName": store.table(),
                    "Item": {
                        "pk": {"S": f"MODEL#{model}"},
                        "sk": {"S": store.version_sk(version)},
                        **store.serialize(item),
                    },
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            *(extra(version) if extra else []),
        ],
        conflict_message=f"version {version} of {model} exists or is not newer than the latest",
    )
    return item


def register(
    model: str,
    endpoint_name: str,
    attrs: dict[str, Any],
    version: int | None = None,
    extra: Callable[[int], list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Registers a version: the number given, or the next one. Numbers only ever grow.

    `extra(version)` gives transaction items that commit with the registration or not at all.
    """
    if version is not None:
        return _write(model, endpoint_name, version, attrs, extra)
    for _ in range(_AUTO_NUMBER_ATTEMPTS):
        latest = int((store.get_model(model) or {}).get("latest_version", 0))
        try:
            return _write(model, endpoint_name, latest + 1, attrs, extra)
        except ApiError as exc:
            if exc.status != 409:
                raise
    raise conflict("too many concurrent registrations for this model; retry", retry_after=1)
