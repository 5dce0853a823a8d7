"""The registry: one DynamoDB table (handlers/registry_schema.json) for models, versions,
deployments and training jobs. Every write is conditional.

Item layout:
    model       pk=MODEL#{name}  sk=#MODEL            gsi1pk=MODEL  gsi1sk={name}
    version     pk=MODEL#{name}  sk=VERSION#{n:08d}
    deployment  pk=MODEL#{name}  sk=DEPLOYMENT#{id}
    job         pk=JOB#{id}      sk=#JOB              gsi1pk=JOB    gsi1sk={created_at}#{id}
Powertools idempotency records live in their own partition (pk=idempotency#...).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from datetime import UTC, datetime
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from typing import Any

from botocore.exceptions import ClientError

from handlers import aws
from handlers.config import Settings
from handlers.errors import ApiError, aws_error_code, bad_request, conflict

MODEL_SK = "#MODEL"
JOB_SK = "#JOB"
# DynamoDB numbers: 38 significant digits, exponents from -130 to +125. A float that does not
# fit exactly is refused rather than silently rounded.
_NUMBERS = Context(
    prec=38, Emin=-128, Emax=126, traps=[Clamped, Overflow, Inexact, Rounded, Underflow]
)
_MODEL_CACHE_TTL_S = 30.0
_model_cache: dict[str, tuple[float, dict[str, Any]]] = {}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def model_key(name: str) -> dict[str, Any]:
    return {"pk": {"S": f"MODEL#{name}"}, "sk": {"S": MODEL_SK}}


def version_sk(version: int) -> str:
    return f"VERSION#{version:08d}"


def _number(value: int | float | Decimal) -> str:
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite():
        raise TypeError(f"DynamoDB stores no {value}")
    return str(_NUMBERS.create_decimal(number))


def to_attribute(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB AttributeValue. Floats round-trip through their repr, so
    0.1 is stored as 0.1, not as the binary fraction nearest it."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float | Decimal):
        return {"N": _number(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, dict):
        return {"M": {str(k): to_attribute(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute(v) for v in value]}
    if isinstance(value, set | frozenset) and value:
        if all(isinstance(v, str) for v in value):
            return {"SS": sorted(value)}
        if all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in value):
            return {"NS": [_number(v) for v in value]}
        if all(isinstance(v, bytes | bytearray) for v in value):
            return {"BS": [bytes(v) for v in value]}
    raise TypeError(f"no DynamoDB type for {type(value).__name__}: {value!r:.80}")


def _plain_number(text: str) -> int | float:
    number = Decimal(text)
    return int(number) if number == number.to_integral_value() else float(number)


def from_attribute(attribute: dict[str, Any]) -> Any:
    """A DynamoDB AttributeValue as plain Python: numbers become int or float, sets lists."""
    (kind, value), *rest = attribute.items()
    if rest:
        raise ValueError(f"an AttributeValue has one type, not {sorted(attribute)}")
    if kind == "S":
        return value
    if kind == "N":
        return _plain_number(value)
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_attribute(v) for k, v in value.items()}
    if kind == "L":
        return [from_attribute(v) for v in value]
    if kind == "B":
        return bytes(value)
    if kind == "SS":
        return list(value)
    if kind == "NS":
        return [_plain_number(v) for v in value]
    if kind == "BS":
        return [bytes(v) for v in value]
    raise ValueError(f"unknown DynamoDB type {kind}")


def serialize(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: to_attribute(v) for k, v in attrs.items() if v is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    plain = {k: from_attribute(v) for k, v in item.items()}
    for internal in ("pk", "sk", "gsi1pk", "gsi1sk"):
        plain.pop(internal, None)
    return plain


def table() -> str:
    return Settings.from_env().registry_table


def is_condition_failure(exc: ClientError) -> bool:
    code = aws_error_code(exc)
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons") or []
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons) or (
            not reasons and "ConditionalCheckFailed" in str(exc)
        )
    return False


def get_item(key: dict[str, Any], consistent: bool = True) -> dict[str, Any] | None:
    found = aws.dynamodb().get_item(TableName=table(), Key=key, ConsistentRead=consistent)
    return deserialize(found["Item"]) if "Item" in found else None


def get_model(name: str) -> dict[str, Any] | None:
    return get_item(model_key(name))


def get_model_cached(name: str) -> dict[str, Any] | None:
    """The model item, from a short per-process cache: predict reads it on every call."""
    cached = _model_cache.get(name)
    if cached and time.monotonic() - cached[0] < _MODEL_CACHE_TTL_S:
        return cached[1]
    model = get_item(model_key(name), consistent=False)
    if model is not None:
        _model_cache[name] = (time.monotonic(), model)
    return model


def clear_cache() -> None:
    _model_cache.clear()


def encode_token(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    plain = {k: v["S"] for k, v in last_key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode()


def decode_token(token: str | None, expected: dict[str, str]) -> dict[str, Any] | None:
    """A page token back to a key, refusing one that points outside the listed collection."""
    if not token:
        return None
    try:
        plain = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error) as exc:
        raise bad_request("next_token is not a token this API issued") from exc
    valid = isinstance(plain, dict) and all(isinstance(v, str) for v in plain.values())
    if not valid or any(plain.get(k) != v for k, v in expected.items()):
        raise bad_request("next_token is not a token this API issued")
    return {k: {"S": v} for k, v in plain.items()}


def query_page(
    *,
    key_condition: str,
    values: dict[str, Any],
    limit: int,
    token: str | None,
    expected: dict[str, str],
    index: str | None = None,
    newest_first: bool = False,
) -> tuple[list[dict[str, Any]], str | None]:
    params: dict[str, Any] = {
        "TableName": table(),
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": serialize(values),
        "Limit": limit,
        "ScanIndexForward": not newest_first,
    }
    if index:
        params["IndexName"] = index
    start = decode_token(token, expected)
    if start:
        params["ExclusiveStartKey"] = start
    page = aws.dynamodb().query(**params)
    items = [deserialize(item) for item in page.get("Items", [])]
    return items, encode_token(page.get("LastEvaluatedKey"))


def transact(items: list[dict[str, Any]], conflict_message: str) -> None:
    """All or nothing; a failed condition becomes 409 with `conflict_message`."""
    try:
        aws.dynamodb().transact_write_items(TransactItems=items)
    except ClientError as exc:
        if is_condition_failure(exc):
            raise conflict(conflict_message) from exc
        raise


def update(
    key: dict[str, Any],
    set_attrs: dict[str, Any],
    *,
    condition: str | None = None,
    condition_values: dict[str, Any] | None = None,
    remove: tuple[str, ...] = (),
) -> dict[str, Any]:
    """SET the given attributes (and REMOVE others), conditionally; returns the new item."""
    set_attrs = {k: v for k, v in set_attrs.items() if v is not None}
    names = {f"#{k}": k for k in [*set_attrs, *remove]}
    values = {f":{k}": v for k, v in set_attrs.items()}
    values.update(condition_values or {})
    expression = "SET " + ", ".join(f"#{k} = :{k}" for k in set_attrs) if set_attrs else ""
    if remove:
        expression += " REMOVE " + ", ".join(f"#{k}" for k in remove)
    params: dict[str, Any] = {
        "TableName": table(),
        "Key": key,
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": serialize(values),
        "ReturnValues": "ALL_NEW",
    }
    if condition:
        params["ConditionExpression"] = condition
    try:
        return deserialize(aws.dynamodb().update_item(**params)["Attributes"])
    except ClientError as exc:
        if is_condition_failure(exc):
            raise ApiError(409, "Conflict", "the item changed under this request") from exc
        raise
