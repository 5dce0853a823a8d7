"""A generation endpoint in the emulator: the LMI container's schema behind InvokeEndpoint and
InvokeEndpointWithResponseStream, read with boto3's own event-stream parser.

- InvokeEndpointWithResponseStream (path, X-Amzn-SageMaker-Accept, PayloadPart, errors):
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpointWithResponseStream.html
- LMI request/response schema and its validation error (424):
  https://docs.djl.ai/docs/serving/serving/docs/lmi/user_guides/lmi_input_output_schema.html
- Data capture record: https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from maas_contract import generation as lmi
from maas_contract.sagemaker import VARIANT_NAME
from maas_local.sagemaker import eventstream
from tests.maas_local.sagemaker.emulator_helpers import BUCKET, ROLE, unique, wait_endpoint
from tests.maas_local.sagemaker.generation_support import build_tiny_model, model_tarball

# What the deployments handler sends: the LMI image sagemaker-core resolves, and the
# contract's container environment.
LMI_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.38.0-lmi29.0.0-cu130"
CAPTURE_PREFIX = f"s3://{BUCKET}/generation-capture"


@pytest.fixture(scope="module")
def endpoint(sm, s3, tmp_path_factory) -> str:
    folder = build_tiny_model(tmp_path_factory.mktemp("tiny-gpt2"))
    key = "models/tiny-gpt2/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=model_tarball(folder))
    model = unique("gen")
    sm.create_model(
        ModelName=model,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": LMI_IMAGE,
            "ModelDataUrl": f"s3://{BUCKET}/{key}",
            "Environment": lmi.container_environment(max_rolling_batch_size=4, job_queue_size=8),
        },
    )
    config = unique("gen-cfg")
    sm.create_endpoint_config(
        EndpointConfigName=config,
        ProductionVariants=[
            {
                "VariantName": VARIANT_NAME,
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g5.xlarge",
            }
        ],
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": CAPTURE_PREFIX,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
        },
    )
    name = unique("gen-ep")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    assert wait_endpoint(sm, name, timeout=120)["EndpointStatus"] == "InService"
    return name


def _stream(runtime, endpoint: str, body: dict) -> tuple[dict, list[bytes]]:
    response = runtime.invoke_endpoint_with_response_stream(
        EndpointName=endpoint,
        Body=json.dumps(body),
        ContentType="application/json",
        InferenceId="gen-1",
    )
    parts = [event["PayloadPart"]["Bytes"] for event in response["Body"]]
    return response, parts


@pytest.mark.slow
def test_boto3_reads_the_streamed_lmi_lines(runtime, endpoint: str) -> None:
    body = lmi.build_request("The café", max_new_tokens=6, stream=True, seed=3, temperature=0.8)
    response, parts = _stream(runtime, endpoint, body)
    assert response["ContentType"] == lmi.CONTENT_TYPE_JSONLINES
    assert response["InvokedProductionVariant"] == VARIANT_NAME
    assert len(parts) >= 2  # one part per token line, as the worker writes them
    events = list(lmi.iter_stream(parts))
    tokens = [e for e in events if isinstance(e, lmi.StreamToken)]
    end = events[-1]
    assert isinstance(end, lmi.StreamEnd)
    assert end.completion_tokens == len(tokens) <= 6
    assert end.finish_reason in {"length", "eos_token"}
    assert end.generated_text == "".join(t.token.text for t in tokens)
    last = json.loads(b"".join(parts).splitlines()[-1])
    assert set(last) == {"token", "generated_text", "details"}
    assert set(last["details"]) == {"finish_reason", "generated_tokens", "inputs"}
    assert set(last["token"]) == {"id", "text", "log_prob"}

    # The same seed without streaming gives the same text (non-streamed LMI response).
    plain = runtime.invoke_endpoint(
        EndpointName=endpoint,
        Body=json.dumps({**body, "stream": False}),
        ContentType="application/json",
    )
    assert plain["ContentType"] == lmi.CONTENT_TYPE_JSON
    generated = lmi.parse_response(plain["Body"].read())
    assert generated.text == end.generated_text
    assert generated.completion_tokens == end.completion_tokens


@pytest.mark.slow
def test_a_malformed_request_is_the_containers_424_as_a_model_error(runtime, endpoint) -> None:
    for call in (runtime.invoke_endpoint, runtime.invoke_endpoint_with_response_stream):
        with pytest.raises(ClientError) as caught:
            call(EndpointName=endpoint, Body=b'{"parameters": {}}', ContentType="application/json")
        error = caught.value.response
        assert error["Error"]["Code"] == "ModelError"
        assert error["OriginalStatusCode"] == 424
        assert "inputs" in error["OriginalMessage"]


@pytest.mark.slow
def test_an_unknown_endpoint_is_a_validation_error(runtime) -> None:
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint_with_response_stream(
            EndpointName="no-such-endpoint", Body=b"{}", ContentType="application/json"
        )
    assert caught.value.response["Error"]["Code"] == "ValidationError"


@pytest.mark.slow
def test_streamed_invocations_are_captured_joined(sm, runtime, s3, endpoint) -> None:
    body = lmi.build_request("Models", max_new_tokens=4, stream=True)
    _, parts = _stream(runtime, endpoint, body)
    config = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    sm.delete_endpoint(EndpointName=endpoint)
    prefix = f"generation-capture/{endpoint}/{VARIANT_NAME}/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]]
    lines = [
        json.loads(line)
        for key in keys
        for line in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()
    ]
    streamed = [r for r in lines if r["eventMetadata"].get("inferenceId") == "gen-1"]
    record = streamed[-1]["captureData"]
    assert json.loads(record["endpointInput"]["data"]) == body
    output = record["endpointOutput"]
    assert output["observedContentType"] == lmi.CONTENT_TYPE_JSONLINES
    assert output["encoding"] == "BASE64"  # jsonlines is not among the JSON types listed
    assert config


def test_error_events_are_read_by_botocore_as_stream_errors() -> None:
    import io

    import botocore.session
    from botocore.eventstream import EventStream
    from botocore.exceptions import EventStreamError
    from botocore.parsers import EventStreamJSONParser

    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    output = model.operation_model("InvokeEndpointWithResponseStream").output_shape
    raw = eventstream.payload_part(b'{"token": {}}\n') + eventstream.model_stream_error(
        "the model stopped", "StreamBroken"
    )

    class Raw(io.BytesIO):
        def stream(self):
            yield self.read()

    stream = EventStream(Raw(raw), output.members["Body"], EventStreamJSONParser(), "x")
    events = iter(stream)
    assert next(events)["PayloadPart"] == {"Bytes": b'{"token": {}}\n'}
    with pytest.raises(EventStreamError) as caught:
        next(events)
    assert caught.value.response["Error"] == {
        "Code": "ModelStreamError",
        "Message": "the model stopped",
    }
