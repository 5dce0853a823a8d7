"""Triton's own Python HTTP client (tritonclient[http]) against the local gateway and the
trained digits model: health, server and model metadata, readiness, and inference with JSON
tensors and with binary tensors (the client's default), checked against the true labels.

The client sends no Content-Type, JSON or binary; API Gateway reads a request without one as
application/json, and the API's binaryMediaTypes (*/*) let the binary tensors through intact.
https://docs.aws.amazon.com/apigateway/latest/developerguide/integration-passthrough-behaviors.html
https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-payload-encodings.html
"""

from __future__ import annotations

from urllib.parse import urlsplit

import numpy as np
import pytest
import tritonclient.http as triton

from tests.reliability.reliability_helpers import DIGITS

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(120)]
ROWS = 64
MIN_ACCURACY = 0.9  # the training job's own threshold (demo_steps.training_request)


@pytest.fixture(scope="module")
def client(stack):
    parts = urlsplit(stack.api_url)
    with triton.InferenceServerClient(f"{parts.netloc}{parts.path}", network_timeout=60) as made:
        yield made


def _infer(client, stack, images, version, binary):
    image = triton.InferInput("image", list(images.shape), "FP32")
    image.set_data_from_numpy(images, binary_data=binary)
    outputs = [triton.InferRequestedOutput(name, binary_data=binary) for name in ("label",)]
    return client.infer(
        DIGITS, [image], model_version=version, outputs=outputs, headers=stack.headers("invoke")
    )


def test_server_health_and_metadata(client, stack, digits_model):
    headers = stack.headers("invoke")

    assert client.is_server_live(headers=headers)
    assert client.is_server_ready(headers=headers)
    server = client.get_server_metadata(headers=headers)
    assert server["name"] == "maas"
    assert "binary_tensor_data" in server["extensions"]


@pytest.mark.parametrize("pinned", [False, True])
def test_model_metadata_and_readiness(client, stack, digits_model, pinned):
    version = str(digits_model[0]) if pinned else ""
    headers = stack.headers("invoke")

    metadata = client.get_model_metadata(DIGITS, version, headers=headers)

    assert metadata["name"] == DIGITS
    assert metadata["versions"] == [str(digits_model[0])]
    # The job asked for no input_schema: this is the signature train.py wrote.
    assert metadata["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]
    assert metadata["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
    ]
    assert client.is_model_ready(DIGITS, version, headers=headers)


def test_a_version_that_is_not_live_is_not_ready(client, stack, digits_model):
    assert not client.is_model_ready(
        DIGITS, str(digits_model[0] + 1), headers=stack.headers("invoke")
    )


@pytest.mark.parametrize("binary", [False, True], ids=["json-tensors", "binary-tensors"])
@pytest.mark.parametrize("pinned", [False, True], ids=["latest", "pinned"])
def test_infer_predicts_the_true_digits(client, stack, digits_model, binary, pinned):
    version, held = digits_model
    images = np.ascontiguousarray(held.x[:ROWS], dtype=np.float32)  # (N, 1, 8, 8)

    result = _infer(client, stack, images, str(version) if pinned else "", binary)

    labels = result.as_numpy("label")
    assert labels.shape == (ROWS,)
    assert result.get_response()["model_version"] == str(version)
    assert float(np.mean(labels.astype(int) == held.y[:ROWS])) >= MIN_ACCURACY
    assert result.as_numpy("probabilities") is None  # only the requested output came back
    sent_as = (result.get_output("label").get("parameters") or {}).get("binary_data_size")
    assert (sent_as == labels.nbytes) if binary else sent_as is None
