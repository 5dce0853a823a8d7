"""Through the front door (local gateway -> the real predict handler -> the emulator's
InvokeEndpoint -> the model server), batching on answers as batching off does.

Benchmark 8 (bench/front_door_batching.py) times these very paths; this checks they answer
alike, with no timing. The model is the packaged MiniLM with a seeded head, served by PyTorch
fp32, whose batched answers are exact (tests/bench/test_fast_paths.py).

AWS behaviour relied on:
- The PyTorch inference toolkit reads SAGEMAKER_TS_BATCH_SIZE (and the other SAGEMAKER_TS_*
  names) from the Model's environment and writes them into TorchServe's model config:
  https://github.com/aws/sagemaker-pytorch-inference-toolkit/pull/106
- DescribeModel answers the PrimaryContainer's Environment as CreateModel was given it:
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeModel.html
- InvokeEndpoint passes the body to the model container as-is:
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.bench.sentences import SENTENCES

pytestmark = pytest.mark.slow

TOLERANCE = 1e-5  # PyTorch fp32: a padded batch against one text per call


def _environment(sm, endpoint: str) -> dict[str, str]:
    config = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    (variant,) = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
    return sm.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]["Environment"]


def test_front_door_answers_alike_with_batching_on_and_off(minilm_dir):
    from bench.front_door_batching import (
        MODELS,
        differing,
        direct_callers,
        gateway_callers,
        load,
        stood_up,
    )
    from maas_contract.sagemaker import BATCH_SIZE_ENV, SERVING_BATCH_SIZE

    bodies = [json.dumps({"instances": [s]}).encode() for s in SENTENCES]
    with stood_up(minilm_dir, lambda line: None) as (door, endpoints):
        sm = door.aws("sagemaker")
        environments = {mode: _environment(sm, e) for mode, e in endpoints.items()}
        # One request per client, all sent together: the on endpoint can form batches.
        runs = {
            "on": load(gateway_callers(door, MODELS["on"], len(bodies)), bodies, 1),
            "off": load(gateway_callers(door, MODELS["off"], len(bodies)), bodies, 1),
            "direct": load(direct_callers(door, endpoints["on"], len(bodies)), bodies, 1),
        }

    # The two deployments really differ in what they ask of the model server.
    assert environments["on"][BATCH_SIZE_ENV] == str(SERVING_BATCH_SIZE)
    assert BATCH_SIZE_ENV not in environments["off"]
    for mode, run in runs.items():
        assert run.errors == [], mode
        assert sorted(run.answers) == list(range(len(bodies))), mode
    on, off, direct = (runs[m].answers for m in ("on", "off", "direct"))
    order = range(len(bodies))
    assert [on[i]["label"] for i in order] == [off[i]["label"] for i in order]
    np.testing.assert_allclose(
        [on[i]["probabilities"] for i in order],
        [off[i]["probabilities"] for i in order],
        atol=TOLERANCE,
        rtol=0,
    )
    # The benchmark's own comparison agrees, and the gateway changes nothing in the answer.
    assert differing(on, off) == (0, len(bodies))
    assert differing(on, direct) == (0, len(bodies))
    labels = {on[i]["label"] for i in order}
    assert labels == {"negative", "positive"}  # the seeded head answers both ways here
