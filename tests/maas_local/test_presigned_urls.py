"""The local stack's S3 takes presigned URLs as S3 does: a valid one lets anyone holding it make
that one request, and anything else is refused with S3's own error.

Query-string auth: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
(X-Amz-Expires at most 604800 s); errors:
https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import boto3
import pytest
import requests
from botocore.config import Config

from bench.upload_memory import MotoProcess
from maas_local import presigned

BUCKET = "presigned-test"


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    folder = tmp_path_factory.mktemp("moto")
    process = MotoProcess(folder / "state", folder / "moto.log")
    process.start()
    process.s3().create_bucket(Bucket=BUCKET)
    yield process
    process.stop()


def presign(moto, method: str, key: str, expires: int = 300) -> str:
    s3 = boto3.client(
        "s3",
        endpoint_url=moto.url,
        region_name="us-east-1",
        aws_access_key_id=moto.key,
        aws_secret_access_key=moto.secret,
        config=Config(signature_version="s3v4"),
    )
    operation = {"PUT": "put_object", "GET": "get_object"}[method]
    return s3.generate_presigned_url(
        operation, Params={"Bucket": BUCKET, "Key": key}, ExpiresIn=expires, HttpMethod=method
    )


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit((*parts[:3], urlencode(query), ""))


def error(answer: requests.Response) -> tuple[int, str]:
    code = re.search(r"<Code>([^<]+)</Code>", answer.text)
    return answer.status_code, code.group(1) if code else answer.text


def test_a_presigned_put_and_get_need_no_credentials(moto):
    put = requests.put(presign(moto, "PUT", "uploads/a/model.tar.gz"), data=b"weights", timeout=10)
    assert put.status_code == 200, put.text
    got = requests.get(presign(moto, "GET", "uploads/a/model.tar.gz"), timeout=10)
    assert (got.status_code, got.content) == (200, b"weights")
    stored = moto.s3().get_object(Bucket=BUCKET, Key="uploads/a/model.tar.gz")["Body"].read()
    assert stored == b"weights"


def test_a_url_for_one_key_does_not_open_another(moto):
    url = presign(moto, "PUT", "uploads/b/model.tar.gz")
    other = url.replace("uploads/b/", "uploads/c/")
    assert error(requests.put(other, data=b"x", timeout=10)) == (403, "SignatureDoesNotMatch")
    assert error(requests.get(url, timeout=10)) == (403, "SignatureDoesNotMatch")  # PUT only


def test_a_changed_expiry_or_a_foreign_key_is_refused(moto):
    url = presign(moto, "PUT", "uploads/d/model.tar.gz")
    longer = with_query(url, **{"X-Amz-Expires": "3600"})
    assert error(requests.put(longer, data=b"x", timeout=10)) == (403, "SignatureDoesNotMatch")
    credential = dict(parse_qsl(urlsplit(url).query))["X-Amz-Credential"]
    foreign = with_query(
        url, **{"X-Amz-Credential": "AKIAOTHER" + credential[credential.index("/") :]}
    )
    assert error(requests.put(foreign, data=b"x", timeout=10)) == (403, "InvalidAccessKeyId")
    a_month = with_query(url, **{"X-Amz-Expires": str(presigned.MAX_EXPIRES_S + 1)})
    assert error(requests.put(a_month, data=b"x", timeout=10)) == (
        400,
        "AuthorizationQueryParametersError",
    )
    unsigned = with_query(url, **{"X-Amz-Signature": "0" * 64})
    assert error(requests.put(unsigned, data=b"x", timeout=10)) == (403, "SignatureDoesNotMatch")
    listed = moto.s3().list_objects_v2(Bucket=BUCKET, Prefix="uploads/d/")
    assert listed.get("KeyCount", 0) == 0  # nothing refused was written


def test_an_expired_url_is_refused(moto):
    url = presign(moto, "PUT", "uploads/e/model.tar.gz", expires=60)
    verifier = presigned.Verifier(moto.key, moto.secret)
    parts = urlsplit(url)
    host = {"host": parts.netloc}
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61)
    assert verifier.verify("PUT", url, host).service == "s3"
    with pytest.raises(presigned.Refusal) as refused:
        verifier.verify("PUT", url, host, now=later)
    assert (refused.value.status, refused.value.code, refused.value.message) == (
        403,
        "AccessDenied",
        "Request has expired",
    )
