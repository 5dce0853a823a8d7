"""Pinning a model artifact: S3 access for the registry, in one place.

`pin(uri)` checks that the object exists and is a model, then copies it to its
content-addressed key (maas_contract.artifacts) and answers that key and its SHA-256.
S3 computes the digest during a server-side CopyObject with `ChecksumAlgorithm=SHA256`, so
the function never downloads the model. The key must hold the digest, and the digest is
known only after a copy, so the object is copied twice: to a staging key (which gives the
digest), then to its pinned key, and the staging copy is deleted. An artifact already pinned
under that digest is not copied again.

Calls and permissions (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html):
HeadObject is s3:GetObject (a missing key answers 404 only with s3:ListBucket on the bucket,
else 403); CopyObject is s3:GetObject on the source and s3:PutObject on the destination, and
with SSE-KMS kms:Decrypt and kms:GenerateDataKey on the bucket's key.

A model's signature (maas_contract.artifacts.SIGNATURE_FILE) is the one object the registry
reads: `signature(uri)` gets it (a few KiB at most), and `pin_signature` copies it beside the
pinned model.tar.gz.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from handlers.shared import aws
from handlers.shared.errors import ApiError, aws_error_code, bad_request, not_found
from maas_contract import artifacts

_MISSING = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True)
class Pinned:
    uri: str
    sha256: str
    size: int


def split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _head(bucket: str, key: str) -> dict[str, Any] | None:
    try:
        return dict(aws.s3().head_object(Bucket=bucket, Key=key))
    except ClientError as exc:
        if aws_error_code(exc) in _MISSING:
            return None
        raise


def _digest(copied: dict[str, Any]) -> str:
    encoded = (copied.get("CopyObjectResult") or {}).get("ChecksumSHA256")
    try:
        raw = base64.b64decode(encoded or "", validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ApiError(502, "ArtifactChecksumMissing", "S3 answered the copy without a SHA-256")
    return raw.hex()


def pin(uri: str) -> Pinned:
    """The artifact at `uri`, copied to its content-addressed key in the same bucket.

    Raises:
        ApiError: 400 when the key cannot be a model or is too large to copy; 404 when no
            object is there.
    """
    bucket, key = split(uri)
    why = artifacts.refusal(key)
    if why:
        raise bad_request(f"artifact_uri {uri} {why}")
    head = _head(bucket, key)
    if head is None:
        raise not_found(f"artifact {uri} does not exist")
    size = int(head.get("ContentLength", 0))
    if size > artifacts.COPY_MAX_BYTES:
        raise bad_request(
            f"artifact {uri} is {size} bytes; the registry pins artifacts of up to "
            f"{artifacts.COPY_MAX_BYTES} bytes (one S3 CopyObject)"
        )
    already = artifacts.PINNED_KEY.match(key)
    if already:
        return Pinned(uri, already.group(1), size)
    staging = f"{artifacts.STAGING_PREFIX}{uuid.uuid4().hex}.tar.gz"
    s3 = aws.s3()
    try:
        try:
            copied = s3.copy_object(
                Bucket=bucket,
                Key=staging,
                CopySource={"Bucket": bucket, "Key": key},
                ChecksumAlgorithm="SHA256",
            )
        except ClientError as exc:
            if aws_error_code(exc) in _MISSING:  # deleted since the HeadObject
                raise not_found(f"artifact {uri} does not exist") from exc
            raise
        digest = _digest(copied)
        final = artifacts.pinned_key(digest)
        if _head(bucket, final) is None:
            s3.copy_object(
                Bucket=bucket,
                Key=final,
                CopySource={"Bucket": bucket, "Key": staging},
                ChecksumAlgorithm="SHA256",
            )
    finally:
        _forget(bucket, staging)
    return Pinned(f"s3://{bucket}/{final}", digest, size)


def _forget(bucket: str, key: str) -> None:
    try:
        aws.s3().delete_object(Bucket=bucket, Key=key)
    except ClientError:
        pass  # the bucket's lifecycle rule expires what is left (infra/artifact_store.py)


def signature(uri: str) -> dict[str, Any] | None:
    """The JSON object at `uri` (a signature file), or None when there is none.

    Raises:
        ApiError: 400 when it is larger than a signature can be, or not a JSON object.
    """
    bucket, key = split(uri)
    head = _head(bucket, key)
    if head is None:
        return None
    if int(head.get("ContentLength", 0)) > artifacts.SIGNATURE_MAX_BYTES:
        raise bad_request(
            f"{uri} is {head['ContentLength']} bytes; a model's signature is at most "
            f"{artifacts.SIGNATURE_MAX_BYTES}"
        )
    try:
        body = aws.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if aws_error_code(exc) in _MISSING:
            return None
        raise
    try:
        found = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        found = None
    if not isinstance(found, dict):
        raise bad_request(f"{uri} is not a JSON object with inputs, outputs and labels")
    return found


def pin_signature(uri: str, pinned: Pinned) -> str:
    """Copies the signature at `uri` beside the pinned model.tar.gz; answers its new URI."""
    source_bucket, source_key = split(uri)
    bucket, pinned_key = split(pinned.uri)
    final = artifacts.signature_key(pinned_key)
    if (source_bucket, source_key) != (bucket, final):
        aws.s3().copy_object(
            Bucket=bucket,
            Key=final,
            CopySource={"Bucket": source_bucket, "Key": source_key},
        )
    return f"s3://{bucket}/{final}"


@dataclass(frozen=True)
class Upload:
    artifact_uri: str
    upload_url: str
    signature_uri: str
    signature_upload_url: str
    expires_in: int


def upload(bucket: str, model: str) -> Upload:
    """Presigned PUT URLs for a new model.tar.gz and its signature.json, in a folder of their
    own under uploads/. A presigned URL carries its signer's authority (this function's role,
    which may put objects under uploads/ and nowhere else outside pinned/) for `expires_in`
    seconds, for that one key and method; S3 takes at most 5 GB in one PUT
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/ShareObjectPreSignedURL.html)."""
    folder = artifacts.upload_folder(model, uuid.uuid4().hex)
    keys = (f"{folder}/model{artifacts.ARCHIVE_SUFFIX}", f"{folder}/{artifacts.SIGNATURE_FILE}")
    urls = [
        aws.s3().generate_presigned_url(
            "put_object",
            Params={"Bucket": bucket, "Key": key},
            ExpiresIn=artifacts.UPLOAD_URL_TTL_S,
            HttpMethod="PUT",
        )
        for key in keys
    ]
    return Upload(
        artifact_uri=f"s3://{bucket}/{keys[0]}",
        upload_url=urls[0],
        signature_uri=f"s3://{bucket}/{keys[1]}",
        signature_upload_url=urls[1],
        expires_in=artifacts.UPLOAD_URL_TTL_S,
    )
