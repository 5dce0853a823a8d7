"""Batched serving in the local serving path answers exactly as batching off does.

Requests carry one sentence each (as online callers send them) and are sent together; the
model server forms a TorchServe batch from the Model's environment, and the real
training/inference.py's `handle` (TS_DEFAULT_SERVICE_HANDLER) joins them into one predict_fn
call, as it does in the AWS PyTorch inference container.
"""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.bench.sentences import SENTENCES

pytestmark = pytest.mark.slow

TOLERANCE = 1e-5  # PyTorch fp32, batch of padded texts against one text per call


def send_together(call, bodies: list[bytes]) -> list:
    results: list = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(bodies[i])
        except Exception as exc:  # the assertion below shows it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def bodies() -> list[bytes]:
    return [json.dumps({"instances": [s]}).encode() for s in SENTENCES]


def probabilities(answers: list) -> list[list[float]]:
    return [json.loads(a)["predictions"][0]["probabilities"] for a in answers]


def labels(answers: list) -> list[str]:
    return [json.loads(a)["predictions"][0]["label"] for a in answers]


@pytest.fixture(scope="module")
def torch_only_dir(minilm_dir, tmp_path_factory) -> Path:
    """The model dir as a training job writes it: weights, no ONNX (PyTorch serves it)."""
    out = tmp_path_factory.mktemp("torch-only") / "model"
    shutil.copytree(minilm_dir, out, ignore=shutil.ignore_patterns("*.onnx"))
    return out


def test_worker_joins_concurrent_requests_and_answers_as_one_by_one(torch_only_dir):
    from maas_contract.sagemaker import batched_serving_environment
    from maas_local.sagemaker.model_worker import ModelServer

    on = batched_serving_environment(batch_size=len(SENTENCES), max_batch_delay_ms=2000)
    batched = ModelServer(torch_only_dir, on)
    single = ModelServer(torch_only_dir, batched_serving_environment(batch_size=1))
    handle = batched.entry_point
    predict_calls: list[int] = []
    predict_fn = handle.__globals__["predict_fn"]

    def counted(data, model):
        predict_calls.append(len(data.values))
        return predict_fn(data, model)

    handle.__globals__["predict_fn"] = counted
    headers = {"Content-Type": "application/json"}
    try:
        together = send_together(lambda b: batched.invoke(b, headers), bodies())
        joined_calls = list(predict_calls)
        alone = [single.invoke(b, headers) for b in bodies()]
    finally:
        handle.__globals__["predict_fn"] = predict_fn
        batched.close()
        single.close()

    assert batched.batcher.batches >= 1  # TorchServe-style batches really formed
    assert len(joined_calls) < len(SENTENCES) and sum(joined_calls) == len(SENTENCES)
    assert all(r.status == 200 for r in together + alone)
    answers = [r.body for r in together], [r.body for r in alone]
    assert labels(answers[0]) == labels(answers[1])
    np.testing.assert_allclose(probabilities(answers[0]), probabilities(answers[1]), atol=TOLERANCE)


def test_emulator_endpoint_with_batching_answers_as_one_without(emulator, torch_only_dir, tmp_path):
    import boto3

    from bench.adaptive_batching import BUCKET, deploy, signed_client, wait_in_service
    from maas_contract.sagemaker import batched_serving_environment
    from maas_training.artifacts import package

    sm = signed_client("sagemaker", emulator.url, None)
    runtime = signed_client("sagemaker-runtime", emulator.url, None)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.upload_file(
        str(package(torch_only_dir, tmp_path / "model.tar.gz")), BUCKET, "t/model.tar.gz"
    )
    uri = f"s3://{BUCKET}/t/model.tar.gz"
    on_env = batched_serving_environment(batch_size=16, max_batch_delay_ms=200)
    on = deploy(sm, uri, "test-batching-on", on_env)
    off = deploy(sm, uri, "test-batching-off", batched_serving_environment(batch_size=1))
    wait_in_service(sm, [on, off])

    def invoker(endpoint: str):
        def call(body: bytes) -> bytes:
            reply = runtime.invoke_endpoint(
                EndpointName=endpoint, Body=body, ContentType="application/json"
            )
            return reply["Body"].read()

        return call

    with_batching = send_together(invoker(on), bodies())
    without = [invoker(off)(b) for b in bodies()]

    assert labels(with_batching) == labels(without)
    np.testing.assert_allclose(probabilities(with_batching), probabilities(without), atol=TOLERANCE)
