"""Predict and Open Inference Protocol routes through handlers.predict.routes.handler, with the
registry on moto and sagemaker-runtime served by a local HTTP stub.

Every version runs under the one variant name (SageMaker's blue/green updates keep the old
config's variant name: https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html),
so the model server says which version answered in the response's CustomAttributes, and a
pinned version is served only while it alone is live."""

from __future__ import annotations

import json

import numpy as np
import pytest

from handlers.predict import routes as predict
from handlers.predict import service as predict_service
from handlers.shared import registry_table
from handlers.shared.resolver import MAX_BODY_BYTES
from tests.handlers.support import (
    REQUEST_ID,
    Scripted,
    api_event,
    call,
    error_of,
    register,
    runtime_error,
)

PREDICT = "/v1/models/{model}/predict"
SCHEMA = {
    "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 28, 28]}],
    "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}],
}


def predict_event(body='{"instances": [[1, 2]]}', **kwargs):
    return api_event("POST", PREDICT, path_params={"model": "demo"}, body=body, **kwargs)


@pytest.fixture
def demo(aws_backend, lambda_context):
    assert register("demo", lambda_context, schema=SCHEMA).status == 201


def set_model(**attrs):
    """Registry state a deployment would leave (live version, a deployment in progress)."""
    registry_table.update(registry_table.model_key("demo"), attrs)
    predict_service.clear_cache()


def answered_by(version, extra=""):
    return Scripted(
        headers={
            "Content-Type": "application/json",
            "X-Amzn-Invoked-Production-Variant": "AllTraffic",
            "X-Amzn-SageMaker-Custom-Attributes": f"{extra}maas-version={version}",
        }
    )


def oip_event(version):
    request = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1], "data": [1.0]}]}
    return api_event(
        "POST",
        "/v2/models/{model}/versions/{version}/infer",
        path_params={"model": "demo", "version": str(version)},
        body=request,
    )


def test_predict_returns_outputs_version_and_request_id(demo, runtime_stub, lambda_context):
    runtime_stub.default = Scripted(
        body=b'{"predictions": [[0.1, 0.9]]}',
        headers={
            "Content-Type": "application/json",
            "X-Amzn-Invoked-Production-Variant": "AllTraffic",
            "X-Amzn-SageMaker-Custom-Attributes": "trace=abc,maas-version=3",
        },
    )

    reply = call(
        predict,
        predict_event(headers={"X-Amzn-SageMaker-Custom-Attributes": "trace=abc"}),
        lambda_context,
    )

    assert reply.status == 200
    assert reply.body["outputs"] == {"predictions": [[0.1, 0.9]]}
    assert reply.body["version"] == 3
    assert reply.body["request_id"] == REQUEST_ID
    assert reply.body["custom_attributes"] == "trace=abc,maas-version=3"
    sent = runtime_stub.requests[0]
    assert sent["endpoint"] == "maas-test-demo"
    assert sent["body"] == b'{"instances": [[1, 2]]}'
    assert sent["headers"]["content-type"] == "application/json"
    assert sent["headers"]["x-amzn-sagemaker-custom-attributes"] == "trace=abc"


def test_during_a_canary_predict_reports_the_version_that_really_answered(
    demo, runtime_stub, lambda_context
):
    register("demo", lambda_context, key="second")
    set_model(live_version=1, active_deployment="d0123456789ab")
    runtime_stub.script = [answered_by(2), answered_by(1)]

    canary = call(predict, predict_event(), lambda_context)
    old_fleet = call(predict, predict_event(), lambda_context)

    assert (canary.status, canary.body["version"]) == (200, 2)
    assert (old_fleet.status, old_fleet.body["version"]) == (200, 1)


def test_a_pinned_live_version_is_served_without_a_target_variant(
    demo, runtime_stub, lambda_context
):
    set_model(live_version=1)

    reply = call(predict, predict_event(query={"version": "1"}), lambda_context)

    assert (reply.status, reply.body["version"]) == (200, 1)
    assert "x-amzn-sagemaker-target-variant" not in runtime_stub.requests[0]["headers"]


def test_pinning_a_version_that_is_not_live_is_a_409_naming_the_live_version(
    demo, runtime_stub, lambda_context
):
    register("demo", lambda_context, key="second")
    set_model(live_version=2)

    reply = call(predict, predict_event(query={"version": "1"}), lambda_context)

    assert reply.status == 409
    assert reply.body == {
        "error": "version 1 of demo is not live; the live version is 2",
        "code": "VersionNotLive",
        "request_id": REQUEST_ID,
    }
    assert runtime_stub.calls == 0


def test_pinning_a_version_while_none_is_live_is_a_409(demo, runtime_stub, lambda_context):
    reply = call(predict, predict_event(query={"version": "1"}), lambda_context)

    assert reply.status == 409
    assert error_of(reply).message == "version 1 of demo is not live; no version is live"
    assert runtime_stub.calls == 0


def test_pinning_the_live_version_during_a_canary_is_a_409(demo, runtime_stub, lambda_context):
    set_model(live_version=1, active_deployment="d0123456789ab")

    reply = call(predict, predict_event(query={"version": "1"}), lambda_context)

    assert reply.status == 409
    assert "d0123456789ab is in progress; the live version is 1" in error_of(reply).message
    assert runtime_stub.calls == 0


def test_a_pinned_call_that_another_version_answered_is_a_409(demo, runtime_stub, lambda_context):
    set_model(live_version=1)  # a deployment began after the registry was read
    runtime_stub.default = answered_by(2)

    reply = call(predict, predict_event(query={"version": "1"}), lambda_context)

    assert reply.status == 409
    assert error_of(reply).message == "version 1 of demo is not live; version 2 answered"


def test_a_pin_refused_from_a_stale_cache_is_checked_against_the_table(
    demo, runtime_stub, lambda_context
):
    set_model(live_version=1, active_deployment="d0123456789ab")
    assert call(predict, predict_event(query={"version": "1"}), lambda_context).status == 409
    # The deployment ends; this process's cached model item still shows it in progress.
    registry_table.update(
        registry_table.model_key("demo"), {"live_version": 1}, remove=("active_deployment",)
    )

    reply = call(predict, predict_event(query={"version": "1"}), lambda_context)

    assert reply.status == 200


def test_a_binary_npy_body_passes_through_with_its_content_type(demo, runtime_stub, lambda_context):
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.zeros((1, 1, 4, 4), dtype=np.float32))
    payload = buffer.getvalue()

    reply = call(
        predict,
        predict_event(body=payload, headers={"Content-Type": "application/x-npy"}),
        lambda_context,
    )

    assert reply.status == 200
    assert runtime_stub.requests[0]["body"] == payload
    assert runtime_stub.requests[0]["headers"]["content-type"] == "application/x-npy"


def test_an_unsupported_content_type_is_a_415(demo, runtime_stub, lambda_context):
    reply = call(predict, predict_event(headers={"Content-Type": "image/png"}), lambda_context)

    assert reply.status == 415
    assert runtime_stub.calls == 0


@pytest.mark.parametrize("attributes", ["a" * 1025, "caf\u00e9"])
def test_custom_attributes_past_sagemakers_limit_are_a_400_before_the_model_is_called(
    demo, runtime_stub, lambda_context, attributes
):
    """CustomAttributes: at most 1024 characters of \\p{ASCII}
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html)."""
    event = predict_event(headers={"X-Amzn-SageMaker-Custom-Attributes": attributes})

    reply = call(predict, event, lambda_context)

    assert reply.status == 400
    assert "1024 ASCII characters" in error_of(reply).message
    assert runtime_stub.calls == 0


def test_a_body_of_exactly_the_limit_is_accepted(demo, runtime_stub, lambda_context):
    reply = call(
        predict,
        predict_event(body="x" * MAX_BODY_BYTES, headers={"Content-Type": "text/plain"}),
        lambda_context,
    )

    assert reply.status == 200
    assert len(runtime_stub.requests[0]["body"]) == MAX_BODY_BYTES


def test_a_body_one_byte_over_the_limit_is_a_413(demo, runtime_stub, lambda_context):
    reply = call(
        predict,
        predict_event(body="x" * (MAX_BODY_BYTES + 1), headers={"Content-Type": "text/plain"}),
        lambda_context,
    )

    assert reply.status == 413
    assert reply.body == {
        "error": f"body is {MAX_BODY_BYTES + 1} bytes; the limit is {MAX_BODY_BYTES}",
        "code": "PayloadTooLarge",
        "request_id": REQUEST_ID,
    }
    assert runtime_stub.calls == 0


def test_a_base64_body_over_the_limit_is_a_413(demo, runtime_stub, lambda_context):
    reply = call(
        predict,
        predict_event(
            body=b"\0" * (MAX_BODY_BYTES + 1), headers={"Content-Type": "application/x-npy"}
        ),
        lambda_context,
    )

    assert reply.status == 413


def test_an_unknown_model_is_a_404_without_calling_sagemaker(
    aws_backend, runtime_stub, lambda_context
):
    reply = call(predict, predict_event(), lambda_context)

    assert reply.status == 404
    assert runtime_stub.calls == 0


def test_predict_without_a_scope_is_a_403(demo, runtime_stub, lambda_context):
    reply = call(predict, predict_event(scopes="openid"), lambda_context)

    assert reply.status == 403
    assert runtime_stub.calls == 0


@pytest.mark.parametrize(
    "status,code",
    [(500, "InternalFailure"), (503, "ServiceUnavailable"), (400, "ThrottlingException")],
)
def test_transient_failures_are_retried_then_succeed(
    demo, runtime_stub, lambda_context, status, code
):
    runtime_stub.script = [
        runtime_error(status, code, "transient"),
        runtime_error(status, code, "transient"),
    ]

    reply = call(predict, predict_event(), lambda_context)

    assert reply.status == 200
    assert runtime_stub.calls == 3


def test_throttling_that_outlasts_the_retries_is_a_503_with_retry_after(
    demo, runtime_stub, lambda_context
):
    runtime_stub.default = runtime_error(400, "ThrottlingException", "slow down")

    reply = call(predict, predict_event(), lambda_context)

    assert reply.status == 503
    assert reply.headers["Retry-After"] == "1"
    assert runtime_stub.calls == 3


def test_a_model_error_is_a_502_with_the_models_message_and_not_retried(
    demo, runtime_stub, lambda_context
):
    runtime_stub.default = runtime_error(
        424,
        "ModelError",
        "Received server error (500) from primary",
        OriginalStatusCode=500,
        OriginalMessage="CUDA out of memory",
        LogStreamArn="arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/x",
    )

    reply = call(predict, predict_event(), lambda_context)

    assert reply.status == 502
    assert error_of(reply) == ("ModelError", "CUDA out of memory")
    assert runtime_stub.calls == 1


def test_a_model_that_rejects_its_input_is_a_400_with_the_models_message(
    demo, runtime_stub, lambda_context
):
    runtime_stub.default = runtime_error(
        424,
        "ModelError",
        "Received client error (400)",
        OriginalStatusCode=400,
        OriginalMessage='expected {"instances": [...]}',
    )

    reply = call(predict, predict_event(), lambda_context)

    assert reply.status == 400
    assert error_of(reply).message == 'expected {"instances": [...]}'
    assert runtime_stub.calls == 1


def test_a_sagemaker_validation_error_is_a_400_and_not_retried(demo, runtime_stub, lambda_context):
    runtime_stub.default = runtime_error(400, "ValidationError", "bad CustomAttributes")

    reply = call(predict, predict_event(), lambda_context)

    assert reply.status == 400
    assert runtime_stub.calls == 1


def test_a_model_that_is_not_ready_is_a_503_with_retry_after(demo, runtime_stub, lambda_context):
    runtime_stub.default = runtime_error(429, "ModelNotReadyException", "loading")

    reply = call(predict, predict_event(), lambda_context)

    assert reply.status == 503
    assert error_of(reply).code == "ModelNotReady"
    assert int(reply.headers["Retry-After"]) > 0


def test_a_model_slower_than_the_read_timeout_is_a_504(demo, runtime_stub, lambda_context):
    runtime_stub.default = Scripted(delay_s=1.0)  # the stub fixture sets a 0.5 s read timeout

    reply = call(predict, predict_event(), lambda_context)

    assert reply.status == 504
    assert error_of(reply).code == "Timeout"


def test_oip_infer_answers_in_the_protocols_shape(demo, runtime_stub, lambda_context):
    runtime_stub.default = Scripted(
        body=json.dumps(
            {
                "outputs": [
                    {
                        "name": "probabilities",
                        "datatype": "FP32",
                        "shape": [1, 2],
                        "data": [0.2, 0.8],
                    }
                ]
            }
        ).encode(),
        headers={
            "Content-Type": "application/json",
            "X-Amzn-Invoked-Production-Variant": "AllTraffic",
            "X-Amzn-SageMaker-Custom-Attributes": "maas-version=1",
        },
    )
    request = {
        "id": "req-7",
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 2], "data": [0.5, 0.5]}],
    }

    reply = call(
        predict,
        api_event("POST", "/v2/models/{model}/infer", path_params={"model": "demo"}, body=request),
        lambda_context,
    )

    assert reply.status == 200
    assert reply.body["model_name"] == "demo"
    assert reply.body["model_version"] == "1"
    assert reply.body["id"] == "req-7"
    assert reply.body["outputs"][0]["data"] == [0.2, 0.8]
    assert json.loads(runtime_stub.requests[0]["body"]) == request


def test_oip_versioned_infer_serves_the_live_version(demo, runtime_stub, lambda_context):
    set_model(live_version=1)
    runtime_stub.default = answered_by(1)
    runtime_stub.default.body = b'{"outputs": []}'

    reply = call(predict, oip_event(1), lambda_context)

    assert (reply.status, reply.body["model_version"]) == (200, "1")
    assert "x-amzn-sagemaker-target-variant" not in runtime_stub.requests[0]["headers"]


def test_oip_versioned_infer_on_a_version_that_is_not_live_is_a_409(
    demo, runtime_stub, lambda_context
):
    register("demo", lambda_context, key="second")
    set_model(live_version=1)

    reply = call(predict, oip_event(2), lambda_context)

    assert reply.status == 409
    assert error_of(reply).message == "version 2 of demo is not live; the live version is 1"
    assert runtime_stub.calls == 0


def test_oip_infer_without_inputs_is_a_400_whose_error_is_a_string(
    demo, runtime_stub, lambda_context
):
    """The Open Inference Protocol answers errors with `{"error": $string}`; the one error body
    keeps `error` a string, with code and request id beside it.
    https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol"""
    reply = call(
        predict,
        api_event(
            "POST", "/v2/models/{model}/infer", path_params={"model": "demo"}, body={"inputs": []}
        ),
        lambda_context,
    )

    assert reply.status == 400
    assert "inputs" in error_of(reply).message


def test_oip_metadata_comes_from_the_registered_input_schema(demo, lambda_context):
    reply = call(
        predict,
        api_event("GET", "/v2/models/{model}", path_params={"model": "demo"}),
        lambda_context,
    )

    assert reply.status == 200
    assert reply.body["inputs"] == SCHEMA["inputs"]
    assert reply.body["outputs"] == SCHEMA["outputs"]


def test_oip_health_routes_answer(aws_backend, lambda_context):
    live = call(predict, api_event("GET", "/v2/health/live"), lambda_context)
    ready = call(predict, api_event("GET", "/v2/health/ready"), lambda_context)

    assert (live.status, live.body) == (200, {"live": True})
    assert (ready.status, ready.body) == (200, {"ready": True})


def test_oip_model_ready_is_a_503_while_the_endpoint_does_not_exist(demo, lambda_context):
    reply = call(
        predict,
        api_event("GET", "/v2/models/{model}/ready", path_params={"model": "demo"}),
        lambda_context,
    )

    assert reply.status == 503
    assert error_of(reply).code == "ModelNotReady"


@pytest.mark.parametrize(
    "status,ready",
    [
        ("InService", True),
        ("Updating", True),
        ("SystemUpdating", True),
        ("RollingBack", True),
        ("UpdateRollbackFailed", True),
        ("Creating", False),
        ("Failed", False),
        ("OutOfService", False),
    ],
)
def test_oip_model_ready_follows_whether_the_endpoint_still_serves(
    demo, sagemaker_calls, lambda_context, status, ready
):
    """DescribeEndpoint's EndpointStatus: during SystemUpdating and RollingBack the endpoint
    keeps serving, and UpdateRollbackFailed is "in service with a mix of the old and new
    endpoint configurations".
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html"""
    sagemaker_calls.answers["DescribeEndpoint"] = {"EndpointStatus": status}

    reply = call(
        predict,
        api_event("GET", "/v2/models/{model}/ready", path_params={"model": "demo"}),
        lambda_context,
    )

    assert reply.status == (200 if ready else 503)
