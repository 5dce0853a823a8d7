"""The registry table: every key, condition and expression the handlers use on it, and nowhere
else. Its key schema is maas_contract.registry's; what the keys hold is decided here:

    model       pk=MODEL#{name}  sk=#MODEL            gsi1pk=MODEL  gsi1sk={name}
    version     pk=MODEL#{name}  sk=VERSION#{n:08d}
    deployment  pk=MODEL#{name}  sk=DEPLOYMENT#{id}
    job         pk=JOB#{id}      sk=#JOB              gsi1pk=JOB    gsi1sk={created_at}#{id}

Powertools' idempotency records live in their own partition (pk=idempotency#...). Every
write is conditional, so a retried or duplicated request changes nothing twice.
A deployment's lock, removals and the holds between them are registry_lifecycle's.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from handlers.shared import aws
from handlers.shared.dynamodb import (
    decode_token,
    deserialize,
    encode_token,
    is_condition_failure,
    serialize,
)
from handlers.shared.errors import ApiError, conflict
from maas_contract import settings
from maas_contract.registry import key_schema

_SCHEMA = key_schema()
PK, SK = _SCHEMA.partition_key.name, _SCHEMA.sort_key.name
LISTING = _SCHEMA.index("gsi1")
TTL_ATTRIBUTE = _SCHEMA.ttl_attribute
MODEL_SK = "#MODEL"
JOB_SK = "#JOB"

Key = dict[str, Any]
Item = dict[str, Any]
Page = tuple[list[Item], str | None]  # the items, and the token of the next page


def table_name() -> str:
    return settings.read("registry_table")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _key(pk: str, sk: str) -> Key:
    return {PK: {"S": pk}, SK: {"S": sk}}


def model_key(name: str) -> Key:
    return _key(f"MODEL#{name}", MODEL_SK)


def version_key(model: str, version: int) -> Key:
    return _key(f"MODEL#{model}", f"VERSION#{version:08d}")


def deployment_key(model: str, deployment_id: str) -> Key:
    return _key(f"MODEL#{model}", f"DEPLOYMENT#{deployment_id}")


def job_key(job_id: str) -> Key:
    return _key(f"JOB#{job_id}", JOB_SK)


def plain(item: dict[str, Any]) -> Item:
    found = deserialize(item)
    for internal in _SCHEMA.key_attributes:
        found.pop(internal, None)
    return found


def get_item(key: Key, consistent: bool = True) -> Item | None:
    found = aws.dynamodb().get_item(TableName=table_name(), Key=key, ConsistentRead=consistent)
    return plain(found["Item"]) if "Item" in found else None


def get_model(name: str, consistent: bool = True) -> Item | None:
    return get_item(model_key(name), consistent)


def get_version(model: str, version: int) -> Item | None:
    return get_item(version_key(model, version))


def get_deployment(model: str, deployment_id: str) -> Item | None:
    return get_item(deployment_key(model, deployment_id))


def get_job(job_id: str) -> Item | None:
    return get_item(job_key(job_id))


def list_models(limit: int, token: str | None) -> Page:
    return _listing("MODEL", limit, token, newest_first=False)


def list_jobs(limit: int, token: str | None) -> Page:
    return _listing("JOB", limit, token, newest_first=True)


def list_versions(model: str, limit: int, token: str | None) -> Page:
    """A model's versions, newest first."""
    return _query(
        {
            "KeyConditionExpression": f"{PK} = :pk AND begins_with({SK}, :v)",
            "ExpressionAttributeValues": serialize({":pk": f"MODEL#{model}", ":v": "VERSION#"}),
            "ScanIndexForward": False,
        },
        limit,
        token,
        expected={PK: f"MODEL#{model}"},
    )


def _listing(kind: str, limit: int, token: str | None, *, newest_first: bool) -> Page:
    return _query(
        {
            "IndexName": LISTING.name,
            "KeyConditionExpression": f"{LISTING.partition_key.name} = :kind",
            "ExpressionAttributeValues": serialize({":kind": kind}),
            "ScanIndexForward": not newest_first,
        },
        limit,
        token,
        expected={LISTING.partition_key.name: kind},
    )


def _query(params: dict[str, Any], limit: int, token: str | None, expected: dict) -> Page:
    start = decode_token(token, expected)
    if start:
        params["ExclusiveStartKey"] = start
    page = aws.dynamodb().query(TableName=table_name(), Limit=limit, **params)
    items = [plain(item) for item in page.get("Items", [])]
    return items, encode_token(page.get("LastEvaluatedKey"))


def transact(items: list[dict[str, Any]], conflict_message: str) -> None:
    """All or nothing; a failed condition becomes 409 with `conflict_message`."""
    try:
        aws.dynamodb().transact_write_items(TransactItems=items)
    except ClientError as exc:
        if is_condition_failure(exc):
            raise conflict(conflict_message) from exc
        raise


def update_request(
    key: Key,
    attrs: dict[str, Any],
    *,
    remove: Collection[str] = (),
    condition: str = f"attribute_exists({PK})",
    values: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """UpdateItem's parameters: SET `attrs` (None ones skipped), REMOVE `remove`, each attribute
    through a placeholder; `condition` may use `#status` and its own `values`."""
    attrs = {k: v for k, v in attrs.items() if v is not None}
    expression = "SET " + ", ".join(f"#{k} = :{k}" for k in attrs) if attrs else ""
    if remove:
        expression += " REMOVE " + ", ".join(f"#{k}" for k in remove)
    names = {f"#{k}": k for k in [*attrs, *remove]}
    if "#status" in condition:
        names["#status"] = "status"
    request = {
        "TableName": table_name(),
        "Key": key,
        "UpdateExpression": expression.strip(),
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
    }
    placeholders = {f":{k}": v for k, v in attrs.items()} | (values or {})
    if placeholders:  # DynamoDB refuses an empty map
        request["ExpressionAttributeValues"] = serialize(placeholders)
    return request


def update(key: Key, attrs: dict[str, Any], *, remove: Collection[str] = ()) -> Item:
    """Sets `attrs` and removes `remove` on an item that exists; returns the new item."""
    return apply_update(update_request(key, attrs, remove=remove))


def apply_update(request: dict[str, Any]) -> Item:
    try:
        answer = aws.dynamodb().update_item(ReturnValues="ALL_NEW", **request)
    except ClientError as exc:
        if is_condition_failure(exc):
            raise ApiError(409, "Conflict", "the item changed under this request") from exc
        raise
    return plain(answer["Attributes"])


def register_version(model: str, endpoint_name: str, item: Item, also: list[dict]) -> None:
    """Writes version `item["version"]` and moves the model's latest_version to it, together
    with the transaction items `also`; 409 when that version exists or is not the newest."""
    version = item["version"]
    values = {":v": version, ":name": model, ":ep": endpoint_name, ":now": item["created_at"]}
    model_update = {
        "TableName": table_name(),
        "Key": model_key(model),
        "UpdateExpression": (
            "SET latest_version = :v, #name = :name, updated_at = :now,"
            " endpoint_name = if_not_exists(endpoint_name, :ep),"
            f" created_at = if_not_exists(created_at, :now), {LISTING.partition_key.name} = :kind,"
            f" {LISTING.sort_key.name} = :name"
        ),
        "ConditionExpression": (
            "(attribute_not_exists(latest_version) OR latest_version < :v)"
            " AND attribute_not_exists(deleting_since)"
        ),
        "ExpressionAttributeNames": {"#name": "name"},
        "ExpressionAttributeValues": serialize({**values, ":kind": "MODEL"}),
    }
    transact(
        [{"Update": model_update}, {"Put": put_new(version_key(model, version), item)}, *also],
        conflict_message=f"version {version} of {model} exists or is not newer than the latest",
    )


def put_new(key: Key, item: Item) -> dict[str, Any]:
    """A Put of an item that must not exist yet."""
    return {
        "TableName": table_name(),
        "Item": {**key, **serialize(item)},
        "ConditionExpression": f"attribute_not_exists({PK})",
    }


def partition(model: str, sort_prefix: str | None = None) -> Iterator[dict[str, Any]]:
    """The model's raw items (those whose sort key starts with `sort_prefix`), every page.
    DynamoDB refuses an empty string in a key condition, so no prefix means no condition."""
    values = {":pk": f"MODEL#{model}"} | ({":prefix": sort_prefix} if sort_prefix else {})
    condition = f"{PK} = :pk" + (f" AND begins_with({SK}, :prefix)" if sort_prefix else "")
    params: dict[str, Any] = {
        "TableName": table_name(),
        "KeyConditionExpression": condition,
        "ExpressionAttributeValues": serialize(values),
    }
    while True:
        page = aws.dynamodb().query(**params)
        yield from page.get("Items", [])
        if not page.get("LastEvaluatedKey"):
            return
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def list_deployments(model: str) -> Iterator[Item]:
    """Every deployment of a model, a page at a time."""
    return (plain(item) for item in partition(model, "DEPLOYMENT#"))


def guarded(key: Key, condition: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """A transaction's ConditionCheck or Delete of the item at `key`, under `condition`."""
    check = {"TableName": table_name(), "Key": key, "ConditionExpression": condition}
    return check | ({"ExpressionAttributeValues": serialize(values)} if values else {})


def put_job(job: Item) -> None:
    """Records a new training job, listed newest first."""
    listed = {
        LISTING.partition_key.name: "JOB",
        LISTING.sort_key.name: f"{job['created_at']}#{job['id']}",
    }
    aws.dynamodb().put_item(**put_new(job_key(job["id"]), {**job, **listed}))


def _unless_ended(job_id: str, attrs: dict[str, Any], terminal: Collection[str]) -> dict[str, Any]:
    ended = {f":ended{i}": state for i, state in enumerate(sorted(terminal))}
    return update_request(
        job_key(job_id), attrs, condition=f"NOT #status IN ({', '.join(ended)})", values=ended
    )


def end_job(job_id: str, attrs: dict[str, Any], terminal: Collection[str]) -> bool:
    """Moves a job into a `terminal` state once; False when an earlier event already did."""
    try:
        apply_update(_unless_ended(job_id, attrs, terminal))
    except ApiError as exc:
        if exc.status == 409:
            return False
        raise
    return True


def job_completion(job_id: str, attrs: dict[str, Any], terminal: Collection[str]) -> dict:
    """`end_job` as a transaction item, for `register_version(also=...)`."""
    return {"Update": _unless_ended(job_id, attrs, terminal)}
