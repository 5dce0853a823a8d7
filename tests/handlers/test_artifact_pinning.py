"""Registration pins the artifact: it must exist and be a model, and what is registered is a
copy under its SHA-256 that later writes to the original never reach.

S3 computes the digest during CopyObject with ChecksumAlgorithm=SHA256
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html), base64 in
CopyObjectResult.ChecksumSHA256; a single CopyObject copies at most 5 GB.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from handlers.registry import routes as registry
from handlers.shared import artifacts
from maas_contract.artifacts import COPY_MAX_BYTES
from tests.handlers.support import (
    ADMIN,
    ARTIFACTS,
    api_event,
    call,
    error_of,
    put_artifact,
    session,
)


def register(uri: str, context: Any, key: str = "k") -> Any:
    event = api_event(
        "POST",
        "/v1/models/{model}/versions",
        path_params={"model": "demo"},
        body={"artifact_uri": uri, "recipe": "image-cnn"},
        headers={"Idempotency-Key": key},
        scopes=ADMIN,
    )
    return call(registry, event, context)


def keys() -> list[str]:
    listed = session().client("s3").list_objects_v2(Bucket=ARTIFACTS).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def read(uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return session().client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def test_a_registered_version_names_a_copy_under_its_sha256(aws_backend, lambda_context):
    body = b"weights v1"
    uri = put_artifact(f"s3://{ARTIFACTS}/uploads/model.tar.gz", body)

    reply = register(uri, lambda_context)

    digest = hashlib.sha256(body).hexdigest()
    assert reply.status == 201, reply.body
    assert reply.body["artifact_uri"] == uri
    assert reply.body["artifact_sha256"] == digest
    assert reply.body["pinned_uri"] == f"s3://{ARTIFACTS}/pinned/sha256/{digest}/model.tar.gz"
    assert read(reply.body["pinned_uri"]) == body
    # The staging copy that gave the digest is gone.
    assert keys() == sorted(["uploads/model.tar.gz", f"pinned/sha256/{digest}/model.tar.gz"])


def test_overwriting_the_original_after_registration_changes_nothing_served(
    aws_backend, lambda_context
):
    uri = put_artifact(f"s3://{ARTIFACTS}/uploads/model.tar.gz", b"weights v1")
    pinned = register(uri, lambda_context).body["pinned_uri"]

    put_artifact(uri, b"someone else's weights")

    assert read(pinned) == b"weights v1"


def test_the_same_bytes_registered_twice_share_one_pinned_copy(aws_backend, lambda_context):
    first = put_artifact(f"s3://{ARTIFACTS}/a/model.tar.gz", b"same")
    second = put_artifact(f"s3://{ARTIFACTS}/b/model.tar.gz", b"same")

    one = register(first, lambda_context, key="one").body
    two = register(second, lambda_context, key="two").body

    assert one["pinned_uri"] == two["pinned_uri"]
    assert [k for k in keys() if k.startswith("pinned/")] == [
        one["pinned_uri"].split(f"{ARTIFACTS}/")[1]
    ]


def test_a_missing_artifact_is_a_404_and_registers_nothing(aws_backend, lambda_context):
    reply = register(f"s3://{ARTIFACTS}/nowhere/model.tar.gz", lambda_context)

    assert reply.status == 404
    assert error_of(reply).message == (
        f"artifact s3://{ARTIFACTS}/nowhere/model.tar.gz does not exist"
    )
    model = call(
        registry,
        api_event("GET", "/v1/models/{model}", path_params={"model": "demo"}),
        lambda_context,
    )
    assert model.status == 404
    assert keys() == []


@pytest.mark.parametrize(
    "key", ["code/sourcedir.tar.gz", "code/other.tar.gz", "jobs/x/source/sourcedir.tar.gz"]
)
def test_training_code_is_not_a_model(aws_backend, lambda_context, key):
    uri = put_artifact(f"s3://{ARTIFACTS}/{key}", b"code")

    reply = register(uri, lambda_context)

    assert reply.status == 400
    assert "training code" in error_of(reply).message


def test_the_staging_prefix_is_not_a_model(aws_backend, lambda_context):
    uri = put_artifact(f"s3://{ARTIFACTS}/pinned/staging/x.tar.gz", b"half")

    reply = register(uri, lambda_context)

    assert reply.status == 400
    assert "pinned/" in error_of(reply).message


def test_an_artifact_too_large_for_one_copy_is_a_400(aws_backend, lambda_context, monkeypatch):
    uri = put_artifact(f"s3://{ARTIFACTS}/big/model.tar.gz", b"x")
    real_head = artifacts._head

    def huge(bucket: str, key: str) -> dict[str, Any] | None:
        found = real_head(bucket, key)
        return {**found, "ContentLength": COPY_MAX_BYTES + 1} if found else None

    monkeypatch.setattr(artifacts, "_head", huge)

    reply = register(uri, lambda_context)

    assert reply.status == 400
    assert str(COPY_MAX_BYTES) in error_of(reply).message
