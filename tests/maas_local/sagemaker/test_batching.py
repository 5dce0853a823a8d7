"""Adaptive batching: concurrent requests share one predict_fn call, and answers never change."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import numpy as np
import pytest

from maas_local.sagemaker.batching import Batcher, concat, split


class RowModel:
    """input_fn -> (N, 2) array; predict_fn doubles rows and refuses negative numbers."""

    def __init__(self) -> None:
        self.model = None
        self.predict_sizes: list[int] = []

    def input_fn(self, body: bytes, content_type: str):
        return np.asarray(json.loads(body), dtype=np.float32)

    def predict_fn(self, data, model):
        self.predict_sizes.append(len(data))
        if (data < 0).any():
            raise ValueError("negative input")
        return data * 2

    def output_fn(self, prediction, accept):
        return json.dumps(prediction.tolist())


def submit_together(batcher: Batcher, bodies: list[bytes]) -> list:
    results: list = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def call(i: int) -> None:
        barrier.wait()
        try:
            results[i] = batcher.submit(bodies[i], "application/json", "application/json", 30)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_concurrent_requests_are_predicted_in_one_batch_and_split_back():
    model = RowModel()
    batcher = Batcher(model, max_size=4, max_wait_s=5.0)
    bodies = [json.dumps([[i, i]] * (i + 1)).encode() for i in range(4)]

    results = submit_together(batcher, bodies)

    assert model.predict_sizes == [1 + 2 + 3 + 4]
    assert [json.loads(r) for r in results] == [[[2 * i, 2 * i]] * (i + 1) for i in range(4)]
    batcher.close()


def test_batch_size_one_disables_batching():
    model = RowModel()
    batcher = Batcher(model, max_size=1, max_wait_s=5.0)

    results = submit_together(batcher, [b"[[1, 1]]"] * 3)

    assert model.predict_sizes == [1, 1, 1]
    assert all(json.loads(r) == [[2, 2]] for r in results)
    batcher.close()


def test_one_bad_request_fails_alone_when_the_batch_falls_back():
    model = RowModel()
    batcher = Batcher(model, max_size=3, max_wait_s=5.0)

    results = submit_together(batcher, [b"[[1, 1]]", b"[[-1, 1]]", b"[[3, 3]]"])

    assert sorted(map(str, results)).count("negative input") == 1
    assert json.loads(results[0]) == [[2, 2]] and json.loads(results[2]) == [[6, 6]]
    assert model.predict_sizes[0] == 3  # tried together first, then one by one


def test_inputs_that_do_not_stack_are_predicted_one_by_one():
    model = RowModel()
    batcher = Batcher(model, max_size=2, max_wait_s=5.0)

    results = submit_together(batcher, [b"[[1, 1]]", b"[[1, 1, 1]]"])

    assert sorted(model.predict_sizes) == [1, 1]
    assert sorted(json.loads(r) for r in results) == [[[2, 2]], [[2, 2, 2]]]


@dataclass
class Req:
    values: object
    protocol: str
    request_id: str | None = None


def test_records_of_arrays_and_texts_concatenate_and_split():
    joined, sizes = concat([Req(np.zeros((2, 3)), "json"), Req(np.ones((1, 3)), "json")])
    assert joined.values.shape == (3, 3) and joined.protocol == "json" and sizes == [2, 1]
    texts, sizes = concat([["a", "b"], ["c"]])
    assert texts == ["a", "b", "c"] and sizes == [2, 1]
    rows = split({"label": ["x", "y", "z"], "model": "m", "p": np.arange(3)}, [2, 1])
    assert rows[0]["label"] == ["x", "y"] and rows[1]["model"] == "m"
    assert list(rows[1]["p"]) == [2]


@pytest.mark.parametrize(
    "items",
    [
        [Req(np.zeros((1, 3)), "json", "a"), Req(np.zeros((1, 3)), "json", "b")],
        [np.zeros((1, 3)), np.zeros((1, 3), dtype=np.int64)],
        [np.zeros(()), np.zeros(())],
        [{"x": 1}, {"x": 1}],
    ],
)
def test_inputs_that_differ_beyond_their_rows_are_not_batched(items):
    assert concat(items) is None


def test_prediction_that_is_not_row_aligned_is_not_split():
    assert split(np.zeros(5), [2, 2]) is None
    assert split({"summary": 3.0}, [1, 1]) is None
