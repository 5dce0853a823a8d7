"""Open Inference Protocol v2, complete (tracker issue 13 §3) and SageMaker's content
conventions on predict (§4), through handlers.predict.routes.handler with the registry on moto
and sagemaker-runtime served by a local HTTP stub.

The protocol: https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol
Triton's binary tensor data extension:
https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md
"""

from __future__ import annotations

import base64
import json
import struct

import numpy as np
import pytest

from handlers.predict import routes as predict
from handlers.predict import service as predict_service
from handlers.shared import registry_table
from tests.handlers.support import Scripted, api_event, call, error_of, register

INFER = "/v2/models/{model}/infer"
SCHEMA = {
    "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 2]}],
    "outputs": [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
    ],
}
MODEL_ANSWER = {
    "model_name": "demo",
    "outputs": [
        {"name": "label", "datatype": "INT64", "shape": [2], "data": [1, 0]},
        {"name": "probabilities", "datatype": "FP32", "shape": [2, 2], "data": [0, 1, 1, 0]},
    ],
}


@pytest.fixture
def demo(aws_backend, lambda_context, runtime_stub):
    assert register("demo", lambda_context, schema=SCHEMA).status == 201
    registry_table.update(registry_table.model_key("demo"), {"live_version": 1})
    predict_service.clear_cache()
    runtime_stub.default = Scripted(body=json.dumps(MODEL_ANSWER).encode())
    return runtime_stub


def infer_event(body, headers=None, content_type="application/json"):
    event = api_event("POST", INFER, path_params={"model": "demo"}, body=body, headers=headers)
    event["headers"].pop("Content-Type", None)
    if content_type is not None:
        event["headers"]["Content-Type"] = content_type
    return event


def tensor_request(**extra):
    image = {"name": "image", "datatype": "FP32", "shape": [2, 2], "data": [1, 2, 3, 4]}
    return {"inputs": [image], **extra}


def raw_reply(event, lambda_context):
    result = predict.handler(event, lambda_context)
    body = result["body"]
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = values[-1]
    return result["statusCode"], raw, headers


def test_infer_without_a_content_type_is_read_as_json(demo, lambda_context):
    """API Gateway takes a request without a Content-Type to be application/json.
    https://docs.aws.amazon.com/apigateway/latest/developerguide/integration-passthrough-behaviors.html"""
    reply = call(predict, infer_event(tensor_request(), content_type=None), lambda_context)

    assert reply.status == 200
    assert [o["name"] for o in reply.body["outputs"]] == ["label", "probabilities"]


def test_infer_leaves_out_parameters_rather_than_sending_null(demo, lambda_context):
    reply = call(predict, infer_event(tensor_request()), lambda_context)

    assert "parameters" not in reply.body
    assert all("parameters" not in output for output in reply.body["outputs"])


def test_infer_answers_only_the_requested_outputs_in_their_order(demo, lambda_context):
    body = tensor_request(outputs=[{"name": "probabilities"}])

    reply = call(predict, infer_event(body), lambda_context)

    assert [o["name"] for o in reply.body["outputs"]] == ["probabilities"]


@pytest.mark.parametrize(
    "body,named",
    [
        ({"inputs": [{"name": "pixels", "datatype": "FP32", "shape": [1], "data": [1]}]}, "pixels"),
        (tensor_request(outputs=[{"name": "logits"}]), "logits"),
    ],
    ids=["input", "output"],
)
def test_an_unknown_tensor_name_is_the_models_400_before_the_model_is_called(
    demo, lambda_context, body, named
):
    """The request is schema-valid: the model's registered signature, not the API, refuses it,
    and it says so as the model's own refusals do (ModelRejectedInput)."""
    reply = call(predict, infer_event(body), lambda_context)

    assert reply.status == 400
    assert error_of(reply).code == "ModelRejectedInput"
    assert named in error_of(reply).message
    assert demo.calls == 0


def binary_image_header() -> bytes:
    """The JSON of a request whose one input, a 2x2 FP32 image, follows as 16 raw bytes."""
    image = {
        "name": "image",
        "datatype": "FP32",
        "shape": [2, 2],
        "parameters": {"binary_data_size": 16},
    }
    return json.dumps({"inputs": [image]}).encode()


def test_binary_input_tensors_reach_the_model_as_their_values(demo, lambda_context):
    header = binary_image_header()
    body = header + np.array([1, 2, 3, 4], dtype="<f4").tobytes()
    event = infer_event(
        body, headers={"Inference-Header-Content-Length": str(len(header))}, content_type=None
    )

    reply = call(predict, event, lambda_context)

    assert reply.status == 200
    sent = json.loads(demo.requests[0]["body"])
    assert sent["inputs"][0]["data"] == [1.0, 2.0, 3.0, 4.0]
    assert "binary_data_size" not in (sent["inputs"][0].get("parameters") or {})


def test_binary_outputs_follow_the_json_and_the_header_gives_its_length(demo, lambda_context):
    body = tensor_request(
        outputs=[{"name": "label", "parameters": {"binary_data": True}}, {"name": "probabilities"}]
    )

    status, raw, headers = raw_reply(infer_event(body), lambda_context)

    assert status == 200
    assert headers["content-type"] == "application/octet-stream"
    length = int(headers["inference-header-content-length"])
    head = json.loads(raw[:length])
    label, probabilities = head["outputs"]
    assert label["parameters"] == {"binary_data_size": 16} and "data" not in label
    assert np.frombuffer(raw[length:], dtype="<i8").tolist() == [1, 0]
    assert probabilities["data"] == [0, 1, 1, 0]


def test_binary_data_output_sends_every_output_as_bytes(demo, lambda_context):
    body = tensor_request(parameters={"binary_data_output": True})

    status, raw, headers = raw_reply(infer_event(body), lambda_context)

    length = int(headers["inference-header-content-length"])
    sizes = [o["parameters"]["binary_data_size"] for o in json.loads(raw[:length])["outputs"]]
    assert (status, sizes, len(raw) - length) == (200, [16, 16], 32)


@pytest.mark.parametrize(
    "tail,problem",
    [(b"\x00" * 15, "passes the end"), (b"\x00" * 17, "belong to no input")],
    ids=["short", "long"],
)
def test_binary_inputs_of_the_wrong_size_are_a_400(demo, lambda_context, tail, problem):
    header = binary_image_header()
    event = infer_event(
        header + tail, headers={"Inference-Header-Content-Length": str(len(header))}
    )

    reply = call(predict, event, lambda_context)

    assert reply.status == 400
    assert problem in error_of(reply).message


def test_binary_bytes_inputs_are_length_prefixed_strings(demo, lambda_context):
    texts = [b"hello", b"world!"]
    tail = b"".join(struct.pack("<I", len(t)) + t for t in texts)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "datatype": "BYTES",
                    "shape": [2],
                    "parameters": {"binary_data_size": len(tail)},
                }
            ]
        }
    ).encode()
    event = infer_event(
        header + tail, headers={"Inference-Header-Content-Length": str(len(header))}
    )

    call(predict, event, lambda_context)

    assert json.loads(demo.requests[0]["body"])["inputs"][0]["data"] == ["hello", "world!"]


def test_an_unsupported_infer_content_type_is_a_415_listing_the_accepted_types(
    demo, lambda_context
):
    reply = call(predict, infer_event(tensor_request(), content_type="text/csv"), lambda_context)

    assert reply.status == 415
    assert error_of(reply).message == (
        "content type must be one of application/json, application/octet-stream"
    )


def test_server_metadata_names_the_binary_tensor_extension(aws_backend, lambda_context):
    reply = call(predict, api_event("GET", "/v2"), lambda_context)

    assert reply.status == 200
    assert reply.body["name"] == "maas"
    assert reply.body["extensions"] == ["binary_tensor_data"]


def test_version_metadata_is_that_versions_registered_schema(demo, lambda_context):
    path = "/v2/models/{model}/versions/{version}"
    reply = call(
        predict,
        api_event("GET", path, path_params={"model": "demo", "version": "1"}),
        lambda_context,
    )
    missing = call(
        predict,
        api_event("GET", path, path_params={"model": "demo", "version": "9"}),
        lambda_context,
    )

    assert (reply.status, reply.body["inputs"]) == (200, SCHEMA["inputs"])
    assert missing.status == 404


def test_a_version_is_ready_only_while_it_is_live_and_serving(
    demo, sagemaker_calls, lambda_context
):
    register("demo", lambda_context, key="second")
    sagemaker_calls.answers["DescribeEndpoint"] = {"EndpointStatus": "InService"}
    path = "/v2/models/{model}/versions/{version}/ready"

    def ready(version):
        event = api_event("GET", path, path_params={"model": "demo", "version": version})
        return call(predict, event, lambda_context)

    live, other = ready("1"), ready("2")

    assert (live.status, live.body) == (200, {"name": "demo", "ready": True})
    assert other.status == 503
    assert error_of(other) == (
        "ModelNotReady",
        "version 2 of demo is not live; the live version is 1",
    )


def test_predict_415_lists_the_accepted_types_as_text(demo, lambda_context):
    event = api_event(
        "POST",
        "/v1/models/{model}/predict",
        path_params={"model": "demo"},
        body="x",
        headers={"Content-Type": "image/png"},
    )

    reply = call(predict, event, lambda_context)

    assert error_of(reply) == (
        "UnsupportedMediaType",
        "content type must be one of application/json, application/x-npy, text/plain",
    )


@pytest.mark.parametrize("accept", ["text/html", "application/xml, image/*;q=0.5"])
def test_predict_with_an_accept_it_cannot_answer_is_a_406(demo, lambda_context, accept):
    event = api_event(
        "POST",
        "/v1/models/{model}/predict",
        path_params={"model": "demo"},
        body='{"instances": [[1, 2]]}',
        headers={"Accept": accept},
    )

    reply = call(predict, event, lambda_context)

    assert error_of(reply).code == "NotAcceptable"
    assert reply.status == 406
    assert demo.calls == 0


def test_predict_with_accept_npy_answers_the_models_npy(demo, lambda_context):
    demo.default = Scripted(
        body=b"\x93NUMPY-bytes",
        headers={
            "Content-Type": "application/x-npy",
            "X-Amzn-SageMaker-Custom-Attributes": "maas-version=1",
        },
    )
    event = api_event(
        "POST",
        "/v1/models/{model}/predict",
        path_params={"model": "demo"},
        body='{"instances": [[1, 2]]}',
        headers={"Accept": "application/x-npy"},
    )

    status, raw, headers = raw_reply(event, lambda_context)

    assert (status, raw, headers["content-type"]) == (200, b"\x93NUMPY-bytes", "application/x-npy")
    assert demo.requests[0]["headers"]["accept"] == "application/x-npy"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_in_infer_data_are_a_400_naming_them(demo, lambda_context, constant):
    body = '{"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [%s]}]}'

    reply = call(predict, infer_event(body % constant), lambda_context)

    assert reply.status == 400
    assert constant in error_of(reply).message
    assert demo.calls == 0
