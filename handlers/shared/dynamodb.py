"""Python values to DynamoDB AttributeValues and back, with boto3's own serializer, and what a
failed condition looks like.

boto3's TypeSerializer refuses floats (a binary float has no exact decimal), so floats go in
as `Decimal(str(x))`: 0.1 is stored as 0.1, the shortest text that reads back as the same
float. TypeSerializer's context then refuses what DynamoDB cannot hold (NaN, infinities,
numbers past 38 digits or its exponent range) rather than rounding it. On the way out,
numbers come back as int or float, as the handlers' pydantic models expect.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from handlers.shared.errors import aws_error_code, not_found

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


def to_attribute(value: Any) -> dict[str, Any]:
    """A Python value as a DynamoDB AttributeValue."""
    return _SERIALIZER.serialize(_with_decimals(value))


def from_attribute(attribute: dict[str, Any]) -> Any:
    """A DynamoDB AttributeValue as plain Python: numbers become int or float."""
    return _plain(_DESERIALIZER.deserialize(attribute))


def serialize(attrs: dict[str, Any]) -> dict[str, Any]:
    """An item (or expression values) for a request; None values are left out."""
    return {k: to_attribute(v) for k, v in attrs.items() if v is not None}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    return {k: from_attribute(v) for k, v in item.items()}


def _with_decimals(value: Any) -> Any:
    if isinstance(value, float | Decimal):
        # TypeSerializer refuses NaN and Infinity but lets -Infinity through.
        if not math.isfinite(value):
            raise TypeError(f"DynamoDB stores no {value}")
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _with_decimals(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_with_decimals(v) for v in value]
    if isinstance(value, set | frozenset):
        return {_with_decimals(v) for v in value}
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, set):
        return {_plain(v) for v in value}
    if isinstance(value, Binary):
        return bytes(value.value)
    return value


def is_condition_failure(exc: ClientError) -> bool:
    """Whether a write failed on its condition (alone, or inside a transaction)."""
    code = aws_error_code(exc)
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons") or []
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons) or (
            not reasons and "ConditionalCheckFailed" in str(exc)
        )
    return False


def encode_token(last_key: dict[str, Any] | None) -> str | None:
    if not last_key:
        return None
    plain = {k: v["S"] for k, v in last_key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode()


def decode_token(token: str | None, expected: dict[str, str]) -> dict[str, Any] | None:
    """A page token back to a key, refusing one that points outside the listed collection."""
    if not token:
        return None
    # A token of the declared form that this listing never issued names no page of it: a 404,
    # as for any identifier the API does not know (a schema-valid request is never a 400).
    unknown = "next_token names no page of this listing; list again without it"
    try:
        plain = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error) as exc:
        raise not_found(unknown) from exc
    valid = isinstance(plain, dict) and all(isinstance(v, str) for v in plain.values())
    if not valid or any(plain.get(k) != v for k, v in expected.items()):
        raise not_found(unknown)
    return {k: {"S": v} for k, v in plain.items()}
