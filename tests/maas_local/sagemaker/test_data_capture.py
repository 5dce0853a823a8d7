"""Data capture writes sampled invocations to S3 in SageMaker's JSON Lines format.

"Capture data from real-time endpoint" gives the path layout
`{DestinationS3Uri}/{endpoint-name}/{variant-name}/yyyy/mm/dd/hh/filename.jsonl` and the sample
record below; CaptureContentTypeHeader: "If no headers are specified Amazon SageMaker AI will by
default base64 encode when capturing the data."
https://docs.aws.amazon.com/sagemaker/latest/dg/model-monitor-data-capture-endpoint.html
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DataCaptureConfig.html
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CaptureContentTypeHeader.html
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import re

import pytest

from maas_contract.sagemaker import VARIANT_NAME
from maas_local.sagemaker.capture import DataCapture, Observed
from tests.maas_local.sagemaker.emulator_helpers import (
    BUCKET,
    create_model,
    invoke,
    unique,
    wait_endpoint,
)

# The page's sample record (a text/csv invocation), one line of a capture file.
DOCUMENTED_RECORD = {
    "captureData": {
        "endpointInput": {
            "observedContentType": "text/csv",
            "mode": "INPUT",
            "data": "69,0,153.7,109,194.0,105,256.1,114,14.1,6,1,0,0,0,0,0\n",
            "encoding": "CSV",
        },
        "endpointOutput": {
            "observedContentType": "text/csv; charset=utf-8",
            "mode": "OUTPUT",
            "data": "0.0254181120544672",
            "encoding": "CSV",
        },
    },
    "eventMetadata": {
        "eventId": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "inferenceTime": "2022-02-14T17:25:49Z",
    },
    "eventVersion": "0",
}
WHEN = dt.datetime(2022, 2, 14, 17, 25, 49, tzinfo=dt.UTC)
ROWS = [[0.1, -0.2, 0.0, 0.3]]


def config(percentage: int = 100, modes=("Input", "Output"), **extra) -> dict:
    return {
        "EnableCapture": True,
        "InitialSamplingPercentage": percentage,
        "DestinationS3Uri": f"s3://{BUCKET}/capture/{unique('dest')}",
        "CaptureOptions": [{"CaptureMode": m} for m in modes],
        **extra,
    }


def shape(value):
    """Keys at every depth, with the type of every leaf."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    return type(value).__name__


def csv_capture(**kwargs) -> DataCapture:
    header = {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}
    capture = DataCapture.from_config(config(CaptureContentTypeHeader=header, **kwargs))
    assert capture is not None
    return capture


def test_record_has_the_documented_shape_and_values():
    capture = csv_capture()
    documented = DOCUMENTED_RECORD["captureData"]
    request = documented["endpointInput"]
    response = documented["endpointOutput"]

    record = capture.record(
        Observed(request["observedContentType"], request["data"].encode()),
        Observed(response["observedContentType"], response["data"].encode()),
        inference_id=None,
        when=WHEN,
    )

    assert shape(record) == shape(DOCUMENTED_RECORD)
    assert record["captureData"] == documented
    assert record["eventMetadata"]["inferenceTime"] == "2022-02-14T17:25:49Z"
    assert record["eventVersion"] == "0"


def test_content_types_not_listed_are_base64_encoded():
    capture = DataCapture.from_config(config())  # no CaptureContentTypeHeader
    record = capture.record(
        Observed("application/json", b'{"a": 1}'),
        Observed("text/csv", b"1"),
        inference_id="i-1",
        when=WHEN,
    )
    side = record["captureData"]["endpointInput"]
    assert side["encoding"] == "BASE64"
    assert base64.b64decode(side["data"]) == b'{"a": 1}'
    assert record["eventMetadata"]["inferenceId"] == "i-1"  # InvokeEndpoint's InferenceId


def test_input_only_capture_has_no_output():
    capture = csv_capture(modes=("Input",))
    record = capture.record(
        Observed("text/csv", b"1,2"), Observed("text/csv", b"0.5"), inference_id=None, when=WHEN
    )
    assert list(record["captureData"]) == ["endpointInput"]


@pytest.mark.parametrize(("percentage", "expected"), [(0, 0), (100, 500)])
def test_sampling_at_0_and_100_percent_is_exact(percentage, expected):
    capture = csv_capture(percentage=percentage)
    assert sum(capture.sampled() for _ in range(500)) == expected


def test_intermediate_sampling_percentage_holds_statistically():
    capture = DataCapture.from_config(config(percentage=30), rng=random.Random(20260102))
    taken = sum(capture.sampled() for _ in range(2000))
    # Binomial(2000, 0.3): mean 600, sd ~20.5; 5 sd either side.
    assert 497 <= taken <= 703


def test_disabled_capture_captures_nothing():
    assert DataCapture.from_config(config(EnableCapture=False)) is None
    assert DataCapture.from_config(None) is None


def captured(s3, destination: str) -> dict[str, list[dict]]:
    prefix = destination.removeprefix(f"s3://{BUCKET}/") + "/"
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    files = {}
    for obj in listing:
        body = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read().decode()
        files[obj["Key"][len(prefix) :]] = [json.loads(line) for line in body.splitlines()]
    return files


def serve_with_capture(sm, s3, capture: dict) -> tuple[str, str]:
    model = create_model(sm, s3, unique("m"))
    name = unique("cfg")
    spec = {
        "VariantName": VARIANT_NAME,
        "ModelName": model,
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    sm.create_endpoint_config(
        EndpointConfigName=name, ProductionVariants=[spec], DataCaptureConfig=capture
    )
    endpoint = unique("cap")
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=name)
    assert wait_endpoint(sm, endpoint)["EndpointStatus"] == "InService"
    return endpoint, name


@pytest.mark.slow
def test_endpoint_writes_its_capture_under_endpoint_variant_and_hour(sm, runtime, s3):
    header = {"JsonContentTypes": ["application/json"]}
    settings = config(CaptureContentTypeHeader=header, KmsKeyId="alias/maas-capture")
    endpoint, _ = serve_with_capture(sm, s3, settings)
    for i in range(3):
        invoke(runtime, endpoint, ROWS, InferenceId=f"req-{i}")
    sm.delete_endpoint(EndpointName=endpoint)  # flushes what the endpoint buffered

    files = captured(s3, settings["DestinationS3Uri"])
    assert len(files) == 1
    path, records = next(iter(files.items()))
    assert re.fullmatch(
        rf"{endpoint}/{VARIANT_NAME}/\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}/[^/]+\.jsonl", path
    ), path
    hour = dt.datetime.strptime("/".join(path.split("/")[2:6]), "%Y/%m/%d/%H")
    assert abs(dt.datetime.now(dt.UTC).replace(tzinfo=None) - hour) < dt.timedelta(hours=2)
    assert [r["eventMetadata"]["inferenceId"] for r in records] == ["req-0", "req-1", "req-2"]
    sent = records[0]["captureData"]["endpointInput"]
    assert sent["encoding"] == "JSON" and json.loads(sent["data"]) == {"instances": ROWS}
    assert json.loads(records[0]["captureData"]["endpointOutput"]["data"])["predictions"]
    head = s3.head_object(
        Bucket=BUCKET, Key=settings["DestinationS3Uri"].split("/", 3)[3] + "/" + path
    )
    assert head["ServerSideEncryption"] == "aws:kms"


@pytest.mark.slow
def test_endpoint_sampling_at_zero_percent_writes_nothing(sm, runtime, s3):
    settings = config(percentage=0)
    endpoint, _ = serve_with_capture(sm, s3, settings)
    for _ in range(5):
        invoke(runtime, endpoint, ROWS)
    sm.delete_endpoint(EndpointName=endpoint)

    assert captured(s3, settings["DestinationS3Uri"]) == {}
