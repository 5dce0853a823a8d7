"""The registry's own DynamoDB AttributeValue codec against boto3's, which it replaces in the
handlers so that they never load boto3 (and s3transfer) at cold start."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from handlers import store

VALUES = [
    None,
    True,
    False,
    0,
    -7,
    10**37,
    0.1,
    1e-05,
    -2.5e20,
    0.9777,
    Decimal("3.14"),
    "",
    "digits",
    "ünïcödé",
    b"\x00\xff",
    [],
    [1, "a", None, [2.5, {"k": False}]],
    {},
    {"metrics": {"validation:accuracy": 0.9832, "train:loss": 0.002815}, "n": 3},
    {"a", "b"},
    {1, 2.5},
]


def _boto3_plain(value):
    """What the handlers used to read back: boto3's value, with numbers as int or float."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _boto3_plain(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_boto3_plain(v) for v in value]
    if hasattr(value, "value") and isinstance(value.value, bytes):
        return value.value
    return value


def _boto3_input(value):
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _boto3_input(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_boto3_input(v) for v in value]
    if isinstance(value, set):
        return {_boto3_input(v) for v in value}
    return value


def _canonical(attribute):
    """Sets have no order: compare them sorted."""
    ((kind, value),) = attribute.items()
    if kind in ("SS", "NS", "BS"):
        return {kind: sorted(value)}
    if kind == "M":
        return {kind: {k: _canonical(v) for k, v in value.items()}}
    if kind == "L":
        return {kind: [_canonical(v) for v in value]}
    return attribute


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_writes_what_boto3_writes_and_reads_back_what_it_read(value):
    ours = store.to_attribute(value)
    theirs = TypeSerializer().serialize(_boto3_input(value))
    assert _canonical(ours) == _canonical(theirs)
    back = store.from_attribute(ours)
    expected = _boto3_plain(TypeDeserializer().deserialize(theirs))
    if isinstance(value, set):
        assert sorted(back) == sorted(expected)
    else:
        assert back == expected


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**40, 1e200, object(), set()])
def test_refuses_what_dynamodb_cannot_hold(value):
    with pytest.raises((TypeError, ArithmeticError)):
        store.to_attribute(value)


def test_reads_an_item_without_its_keys():
    item = {
        "pk": {"S": "MODEL#digits"},
        "sk": {"S": "#MODEL"},
        "latest_version": {"N": "2"},
        "metrics": {"M": {"accuracy": {"N": "0.98"}}},
    }
    assert store.deserialize(item) == {"latest_version": 2, "metrics": {"accuracy": 0.98}}


def test_refuses_an_attribute_value_with_two_types():
    with pytest.raises(ValueError):
        store.from_attribute({"S": "a", "N": "1"})
