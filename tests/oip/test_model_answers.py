"""The model's side of SageMaker's content conventions: output_fn answers JSON or .npy by
Accept, as the SageMaker inference toolkit hands it the request's Accept (JSON for */* and
for no Accept) and sends that type back as the response's Content-Type.
https://github.com/aws/sagemaker-inference-toolkit/blob/master/src/sagemaker_inference/transformer.py
(its PyTorch defaults answer JSON, CSV and NPY alike:
https://github.com/aws/sagemaker-pytorch-inference-toolkit/blob/master/src/sagemaker_pytorch_serving_container/default_pytorch_inference_handler.py)
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

import inference
from maas_training import protocol

PREDICTION = protocol.Prediction(
    "instances",
    "digits",
    {"label": [3, 7], "probabilities": np.array([[0.1, 0.9], [0.8, 0.2]], dtype=np.float32)},
)


def test_accept_npy_answers_one_record_array_with_a_field_per_output():
    body = inference.output_fn(PREDICTION, "application/x-npy")

    table = np.load(io.BytesIO(body), allow_pickle=False)
    assert table["label"].tolist() == [3, 7]
    assert table["probabilities"].shape == (2, 2)
    assert inference.answer_type("application/x-npy") == "application/x-npy"


@pytest.mark.parametrize("accept", ["application/json", "*/*", ""])
def test_json_accepts_answer_json(accept):
    body = inference.output_fn(PREDICTION, accept)

    assert json.loads(body)["predictions"][0]["label"] == 3
    assert inference.answer_type(accept) == "application/json"


def test_an_unsupported_accept_is_refused_naming_what_the_model_answers():
    with pytest.raises(protocol.UnsupportedContentTypeError, match="application/x-npy"):
        inference.output_fn(PREDICTION, "text/csv")
