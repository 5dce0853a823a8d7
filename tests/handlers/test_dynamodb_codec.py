"""The registry's AttributeValue codec: boto3's TypeSerializer and TypeDeserializer, with floats
going in as `Decimal(str(x))` (TypeSerializer refuses floats) and numbers coming back as int
or float.
https://boto3.amazonaws.com/v1/documentation/api/latest/_modules/boto3/dynamodb/types.html"""

from __future__ import annotations

import decimal
import math
from decimal import Decimal

import pytest

from handlers.shared.dynamodb import deserialize, from_attribute, serialize, to_attribute

ROUND_TRIPS = [
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


def _stable_id(value) -> str:
    """repr, but a set's in sorted order: pytest-xdist's workers must name every test alike,
    and a set's repr follows the process's string hash seed."""
    if isinstance(value, set):
        return "{" + ", ".join(sorted(map(repr, value))) + "}"
    return repr(value)


@pytest.mark.parametrize("value", ROUND_TRIPS, ids=_stable_id)
def test_a_value_reads_back_as_it_was_written(value):
    assert from_attribute(to_attribute(value)) == value


@pytest.mark.parametrize(
    ("value", "stored"),
    [(0.1, {"N": "0.1"}), (0.9777, {"N": "0.9777"}), (1e-05, {"N": "0.00001"}), (3, {"N": "3"})],
)
def test_a_float_is_stored_as_its_shortest_decimal_text_not_its_binary_fraction(value, stored):
    assert to_attribute(value) == stored


def test_numbers_come_back_as_int_or_float_never_decimal():
    back = from_attribute({"M": {"n": {"N": "2"}, "x": {"N": "0.98"}, "s": {"NS": ["1", "1.5"]}}})

    assert back == {"n": 2, "x": 0.98, "s": {1, 1.5}}
    assert type(back["n"]) is int and type(back["x"]) is float
    assert not any(isinstance(v, Decimal) for v in back["s"])


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e200, 10**40, object()])
def test_what_dynamodb_cannot_hold_is_refused_not_rounded(value):
    with pytest.raises((TypeError, decimal.DecimalException)):
        to_attribute(value)


def test_an_item_leaves_out_none_and_reads_back_whole():
    item = serialize({"version": 2, "metrics": {"accuracy": 0.98}, "description": None})

    assert set(item) == {"version", "metrics"}
    assert deserialize(item) == {"version": 2, "metrics": {"accuracy": 0.98}}
