"""The emulator's model server batches as the AWS PyTorch inference container does.

TorchServe forms batches from the Model's environment: SAGEMAKER_TS_BATCH_SIZE and
SAGEMAKER_TS_MAX_BATCH_DELAY, with the toolkit's defaults of 1 and 100 ms
(sagemaker-pytorch-inference-toolkit ts_environment.py). Without TS_DEFAULT_SERVICE_HANDLER the
SageMaker inference toolkit's entry point takes the batch and runs input_fn, predict_fn and
output_fn once per request, reading request 0's headers for all of them, and one failure fails
the batch (sagemaker-inference-toolkit transformer.py; TorchServe answers 503 when a batch gets
the wrong number of answers, ts/service.py). With it, the model's own function gets the batch.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest

from maas_contract.sagemaker import (
    BATCH_HANDLER_ENV,
    BATCH_SIZE_ENV,
    MAX_BATCH_DELAY_ENV,
    batched_serving_environment,
)
from maas_local.sagemaker.batching import Batcher
from maas_local.sagemaker.model_worker import ModelServer
from maas_local.sagemaker.torchserve import Invocation, Settings, predict

STUB = """
import json

RECORD = {"content_types": [], "predict_rows": [], "batches": [], "loaded": None}


def model_fn(model_dir):
    return "doubler"


def input_fn(body, content_type):
    RECORD["content_types"].append(content_type)
    if content_type != "application/json":
        raise ValueError(f"unsupported content type {content_type}")
    return json.loads(body)


def predict_fn(rows, model):
    RECORD["predict_rows"].append(len(rows))
    if any(v < 0 for row in rows for v in row):
        raise ValueError("negative input")
    return [[2 * v for v in row] for row in rows]


def output_fn(prediction, accept):
    return json.dumps(prediction), "application/json"


def handle(data, context):
    if data is None:
        RECORD["loaded"] = context.system_properties["model_dir"]
        return None
    RECORD["batches"].append(len(data))
    answers = []
    for i, row in enumerate(data):
        rows = json.loads(bytes(row["body"]))
        if any(v < 0 for r in rows for v in r):
            context.set_response_status(400, "Bad Request", idx=i)
            answers.append(json.dumps({"message": "negative input"}))
            continue
        context.set_response_content_type(i, "application/json")
        answers.append(json.dumps([[2 * v for v in r] for r in rows]))
    return answers
"""
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def model_dir(tmp_path, monkeypatch) -> Path:
    """A model whose code/batchstub.py records every call; imported afresh for each test."""
    code = tmp_path / "model" / "code"
    code.mkdir(parents=True)
    (code / "batchstub.py").write_text(STUB)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setitem(sys.modules, "batchstub", None)  # removed again after the test
    return tmp_path / "model"


def record() -> dict:
    return sys.modules["batchstub"].RECORD


def send_together(server: ModelServer, bodies: list[bytes]) -> list:
    replies: list = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def call(i: int) -> None:
        barrier.wait()
        replies[i] = server.invoke(bodies[i], dict(JSON))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return replies


def test_settings_default_to_the_toolkits_values_and_read_the_contracts_names():
    assert Settings.from_environment({}) == Settings(1, 100, 60, None)
    ours = Settings.from_environment(batched_serving_environment())
    assert (ours.batch_size, ours.max_batch_delay_ms) == (8, 5)
    assert ours.handler_module_and_function() == ("inference", "handle")


def test_without_a_handler_a_batch_runs_the_functions_once_per_request(model_dir):
    environment = {"SAGEMAKER_PROGRAM": "batchstub.py", BATCH_SIZE_ENV: "4"}
    server = ModelServer(model_dir, {**environment, MAX_BATCH_DELAY_ENV: "5000"})
    bodies = [json.dumps([[i]] * (i + 1)).encode() for i in range(4)]

    replies = send_together(server, bodies)

    assert (server.batcher.batches, server.batcher.batched_requests) == (1, 4)  # one batch
    assert sorted(record()["predict_rows"]) == [1, 2, 3, 4]  # but a predict_fn call each
    assert [json.loads(r.body) for r in replies] == [[[2 * i]] * (i + 1) for i in range(4)]
    assert [r.status for r in replies] == [200] * 4
    server.close()


def test_without_a_handler_request_0s_headers_serve_the_whole_batch(model_dir):
    server = ModelServer(model_dir, {"SAGEMAKER_PROGRAM": "batchstub.py"})
    csv = Invocation(b"[[1]]", {"content-type": "text/csv"})
    as_json = Invocation(b"[[1]]", dict(JSON))

    replies = predict(server.entry_point, [as_json, csv], str(model_dir), 2)

    assert record()["content_types"] == ["application/json"] * 2
    assert [r.status for r in replies] == [200, 200]

    failing = predict(server.entry_point, [as_json, Invocation(b"[[-1]]", JSON)], "", 2)
    assert [r.status for r in failing] == [503, 503]  # one error body for two requests
    alone = predict(server.entry_point, [Invocation(b"[[-1]]", JSON)], "", 1)[0]
    assert alone.status == 400 and b"negative input" in alone.body
    server.close()


def test_with_the_handler_the_whole_batch_reaches_it_in_one_call(model_dir):
    environment = {BATCH_HANDLER_ENV: "/opt/ml/model/code/batchstub.py:handle"}
    server = ModelServer(
        model_dir, {**environment, BATCH_SIZE_ENV: "4", MAX_BATCH_DELAY_ENV: "5000"}
    )
    assert record()["loaded"] == str(model_dir)  # TorchServe's load-time call

    replies = send_together(server, [b"[[1]]", b"[[-1]]", b"[[2], [3]]", b"[[4]]"])

    assert record()["batches"] == [4] and record()["predict_rows"] == []
    assert [r.status for r in replies] == [200, 400, 200, 200]
    assert [json.loads(r.body) for r in replies] == [
        [[2]],
        {"message": "negative input"},
        [[4], [6]],
        [[8]],
    ]
    server.close()


@pytest.mark.parametrize(
    "handler",
    [lambda data, context: ["one answer"], lambda data, context: "no list", lambda d, c: 1 / 0],
    ids=["too-few-answers", "not-a-list", "raises"],
)
def test_a_batch_the_handler_does_not_answer_in_full_fails_with_503(handler):
    batch = [Invocation(b"[[1]]", dict(JSON)), Invocation(b"[[2]]", dict(JSON))]

    replies = predict(handler, batch, "/opt/ml/model", 2)

    assert [r.status for r in replies] == [503, 503]


def test_a_handler_the_model_does_not_have_fails_the_load(model_dir):
    with pytest.raises(AttributeError, match="no function nothere"):
        ModelServer(model_dir, {BATCH_HANDLER_ENV: "code/batchstub.py:nothere"})
    with pytest.raises(FileNotFoundError, match="code/absent.py"):
        ModelServer(model_dir, {BATCH_HANDLER_ENV: "code/absent.py:handle"})


def test_batch_size_one_sends_each_request_alone_and_failures_reach_every_caller():
    sizes: list[int] = []

    def run(batch: list[int]) -> list[int]:
        sizes.append(len(batch))
        if 0 in batch:
            raise RuntimeError("runner failed")
        return [2 * item for item in batch]

    alone = Batcher(run, max_size=1, max_delay_s=5.0)
    assert [alone.submit(i, 10) for i in (1, 2, 3)] == [2, 4, 6]
    assert sizes == [1, 1, 1] and alone.batches == 0
    with pytest.raises(RuntimeError, match="runner failed"):
        alone.submit(0, 10)
    alone.close()
