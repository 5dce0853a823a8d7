"""Registration reads the model's signature from its signature.json, never from the archive.

A caller's version: the file beside its model.tar.gz. A training job's version: the file
train.py wrote into its checkpoint folder, which SageMaker uploads to the job's
CheckpointConfig.S3Uri ("SageMaker AI saves checkpoints to Amazon S3 and syncs your training
job with the checkpoint S3 bucket",
https://docs.aws.amazon.com/sagemaker/latest/dg/model-checkpoints-enable.html), and which
DescribeTrainingJob names
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeTrainingJob.html).
Either way the file is copied beside the pinned artifact.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from handlers.events import routes as events
from handlers.predict import routes as predict
from handlers.registry import routes as registry
from maas_contract.artifacts import SIGNATURE_MAX_BYTES
from tests.handlers.support import (
    ADMIN,
    ARTIFACTS,
    api_event,
    call,
    error_of,
    put_artifact,
    session,
)
from tests.handlers.test_events import described, job_event, start_job

SIGNATURE = {
    "inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1]}],
    "outputs": [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
    ],
    "labels": ["negative", "positive"],
}


def put(uri: str, body: bytes) -> None:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    session().client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def read(uri: str) -> Any:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return json.loads(session().client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def register(context, uri: str, **extra) -> Any:
    body = {"artifact_uri": uri, "recipe": "text-transformer", **extra}
    event = api_event(
        "POST",
        "/v1/models/{model}/versions",
        path_params={"model": "demo"},
        body=body,
        headers={"Idempotency-Key": hashlib.sha256(json.dumps(body).encode()).hexdigest()},
        scopes=ADMIN,
    )
    return call(registry, event, context)


def metadata(context) -> Any:
    event = api_event("GET", "/v2/models/{model}", path_params={"model": "demo"})
    return call(predict, event, context)


def test_the_signature_beside_the_artifact_becomes_the_versions_schema(aws_backend, lambda_context):
    uri = put_artifact(f"s3://{ARTIFACTS}/uploads/sst2/model.tar.gz", b"sst2 weights")
    put(f"s3://{ARTIFACTS}/uploads/sst2/signature.json", json.dumps(SIGNATURE).encode())

    reply = register(lambda_context, uri)

    assert reply.status == 201, reply.body
    assert reply.body["input_schema"] == SIGNATURE
    beside_pinned = reply.body["pinned_uri"].replace("model.tar.gz", "signature.json")
    assert read(beside_pinned) == SIGNATURE
    shown = metadata(lambda_context).body
    assert shown["inputs"] == SIGNATURE["inputs"] and shown["outputs"] == SIGNATURE["outputs"]


def test_a_schema_in_the_request_wins_over_the_file(aws_backend, lambda_context):
    uri = put_artifact(f"s3://{ARTIFACTS}/uploads/own/model.tar.gz", b"own weights")
    put(f"s3://{ARTIFACTS}/uploads/own/signature.json", json.dumps(SIGNATURE).encode())
    own = {"inputs": [{"name": "review", "datatype": "BYTES", "shape": [-1]}], "outputs": []}

    reply = register(lambda_context, uri, input_schema=own)

    assert reply.status == 201, reply.body
    assert reply.body["input_schema"]["inputs"] == own["inputs"]


def test_no_signature_file_registers_an_empty_schema(aws_backend, lambda_context):
    uri = put_artifact(f"s3://{ARTIFACTS}/uploads/bare/model.tar.gz", b"bare weights")
    reply = register(lambda_context, uri)
    assert reply.status == 201, reply.body
    assert reply.body["input_schema"] == {"inputs": [], "outputs": [], "labels": []}


def test_a_broken_signature_file_is_a_400_and_registers_nothing(aws_backend, lambda_context):
    base = f"s3://{ARTIFACTS}/uploads/broken"
    uri = put_artifact(f"{base}/model.tar.gz", b"broken weights")
    for body, says in (
        (b"not json", "not a JSON object"),
        (json.dumps({"inputs": [{"name": "x"}]}).encode(), "not a model signature: inputs.0"),
        (b" " * (SIGNATURE_MAX_BYTES + 1), f"at most {SIGNATURE_MAX_BYTES}"),
    ):
        put(f"{base}/signature.json", body)
        reply = register(lambda_context, uri)
        assert reply.status == 400, reply.body
        assert says in error_of(reply).message
    listing = call(
        registry,
        api_event("GET", "/v1/models/{model}/versions", path_params={"model": "demo"}),
        lambda_context,
    )
    assert listing.status == 404  # no version was written


def test_a_jobs_version_takes_the_signature_from_its_checkpoint_folder(
    sagemaker_calls, lambda_context
):
    job_id = start_job(lambda_context)
    checkpoints = f"s3://{ARTIFACTS}/checkpoints/demo/{job_id}"
    put(f"{checkpoints}/signature.json", json.dumps(SIGNATURE).encode())
    sagemaker_calls.answers["DescribeTrainingJob"] = described(
        job_id, CheckpointConfig={"S3Uri": checkpoints, "LocalPath": "/opt/ml/checkpoints"}
    )

    assert events.handler(job_event(job_id), lambda_context)["action"] == "completed"

    listing = call(
        registry,
        api_event("GET", "/v1/models/{model}/versions", path_params={"model": "demo"}),
        lambda_context,
    ).body
    (version,) = listing["items"]
    assert version["input_schema"] == SIGNATURE
    assert read(version["pinned_uri"].replace("model.tar.gz", "signature.json")) == SIGNATURE
