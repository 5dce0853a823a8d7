"""maas_training.batching: joinable inputs share one model call, and answers never change."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from maas_training.batching import concat, groups, predict_joined, split


@dataclass
class Req:
    values: object
    protocol: str
    request_id: str | None = None


class RowModel:
    """Doubles rows; refuses negative numbers; records the rows of every call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, data: np.ndarray) -> np.ndarray:
        self.calls.append(len(data))
        if (data < 0).any():
            raise ValueError("negative input")
        return data * 2


def rows(*shape: int, value: float = 1.0) -> np.ndarray:
    return np.full(shape, value, dtype=np.float32)


def test_joinable_inputs_are_predicted_in_one_call_and_split_back():
    model = RowModel()
    items = [rows(i + 1, 2, value=i) for i in range(4)]

    outcomes = predict_joined(items, model)

    assert model.calls == [1 + 2 + 3 + 4]
    for i, outcome in enumerate(outcomes):
        assert outcome.error is None
        np.testing.assert_array_equal(outcome.value, rows(i + 1, 2, value=2 * i))


def test_a_bad_input_fails_alone_after_the_joined_call_fails():
    model = RowModel()

    outcomes = predict_joined([rows(1, 2), rows(1, 2, value=-1), rows(1, 2, value=3)], model)

    assert model.calls == [3, 1, 1, 1]  # tried together first, then one by one
    assert isinstance(outcomes[1].error, ValueError)
    np.testing.assert_array_equal(outcomes[0].value, rows(1, 2, value=2))
    np.testing.assert_array_equal(outcomes[2].value, rows(1, 2, value=6))


def test_inputs_of_different_shapes_form_their_own_groups():
    model = RowModel()
    items = [rows(1, 2), rows(2, 3), rows(3, 2), ["a text"]]

    assert groups(items) == [[0, 2], [1], [3]]
    outcomes = predict_joined(items[:3], model)

    assert sorted(model.calls) == [2, 4]  # the two (N, 2) inputs joined, the (N, 3) alone
    assert [o.value.shape for o in outcomes] == [(1, 2), (2, 3), (3, 2)]


def test_inputs_that_join_with_nothing_are_predicted_alone():
    model = RowModel()
    items = [np.ones(()), np.ones(())]  # no rows to join along

    assert groups(items) == [[0], [1]]
    predict_joined(items, lambda x: model(x.reshape(1)))
    assert model.calls == [1, 1]


def test_records_of_arrays_and_texts_concatenate_and_split():
    joined, sizes = concat([Req(np.zeros((2, 3)), "json"), Req(np.ones((1, 3)), "json")])
    assert joined.values.shape == (3, 3) and joined.protocol == "json" and sizes == [2, 1]
    texts, sizes = concat([["a", "b"], ["c"]])
    assert texts == ["a", "b", "c"] and sizes == [2, 1]
    parts = split({"label": ["x", "y", "z"], "model": "m", "p": np.arange(3)}, [2, 1])
    assert parts[0]["label"] == ["x", "y"] and parts[1]["model"] == "m"
    assert list(parts[1]["p"]) == [2]


@pytest.mark.parametrize(
    "items",
    [
        [Req(np.zeros((1, 3)), "json", "a"), Req(np.zeros((1, 3)), "json", "b")],
        [np.zeros((1, 3)), np.zeros((1, 3), dtype=np.int64)],
        [np.zeros(()), np.zeros(())],
        [{"x": 1}, {"x": 1}],
    ],
)
def test_inputs_that_differ_beyond_their_rows_neither_group_nor_concatenate(items):
    assert concat(items) is None
    assert all(len(group) == 1 for group in groups(items))


def test_prediction_that_is_not_row_aligned_is_not_split():
    assert split(np.zeros(5), [2, 2]) is None
    assert split({"summary": 3.0}, [1, 1]) is None


def test_a_joined_answer_that_does_not_split_is_predicted_one_by_one():
    calls: list[int] = []

    def summary(data: np.ndarray) -> dict[str, float]:
        calls.append(len(data))
        return {"summary": float(data.sum())}

    outcomes = predict_joined([rows(1, 2), rows(2, 2)], summary)

    assert calls == [3, 1, 2]
    assert [o.value for o in outcomes] == [{"summary": 2.0}, {"summary": 4.0}]
