"""The emulator's SigV4 check: what a real botocore client signs is accepted, and each way a
request can fail authentication answers as AWS's JSON services do.

References: "Signature Version 4 signing" (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html)
and the SageMaker API Reference "Common Errors"
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/CommonErrors.html).
"""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from maas_local.sagemaker.sigv4 import Refusal, Verifier

KEY, SECRET = "LOCALSTACKTESTKEY001", "local-secret-made-at-up"
URL = "http://127.0.0.1:8123/endpoints/maas-local-digits/invocations"
BODY = b'{"instances": [[0.0]]}'


def _signed(secret: str = SECRET, key: str = KEY, body: bytes = BODY) -> AWSRequest:
    request = AWSRequest(
        method="POST", url=URL, data=body, headers={"Content-Type": "application/json"}
    )
    SigV4Auth(Credentials(key, secret), "sagemaker", "us-east-1").add_auth(request)
    return request


def _verify(request: AWSRequest, body: bytes | None = None, **kwargs) -> None:
    Verifier(KEY, SECRET).verify(
        request.method, request.url, dict(request.headers), body or request.body, **kwargs
    )


def test_a_request_signed_with_the_issued_credentials_is_accepted():
    _verify(_signed())


def test_an_unsigned_request_is_refused_as_missing_authentication():
    request = AWSRequest(method="POST", url=URL, data=BODY, headers={})

    with pytest.raises(Refusal) as refused:
        _verify(request)

    assert (refused.value.status, refused.value.code) == (
        403,
        "MissingAuthenticationTokenException",
    )


def test_any_header_that_merely_starts_like_sigv4_is_refused():
    request = AWSRequest(
        method="POST", url=URL, data=BODY, headers={"Authorization": "AWS4-HMAC-SHA256 anything"}
    )

    with pytest.raises(Refusal) as refused:
        _verify(request)

    assert refused.value.code == "IncompleteSignatureException"


def test_another_secret_fails_the_signature():
    with pytest.raises(Refusal) as refused:
        _verify(_signed(secret="testing"))

    assert (refused.value.status, refused.value.code) == (403, "InvalidSignatureException")
    assert "does not match the signature you provided" in refused.value.message


def test_an_access_key_the_stack_did_not_issue_is_unrecognised():
    with pytest.raises(Refusal) as refused:
        _verify(_signed(key="testing"))

    assert refused.value.code == "UnrecognizedClientException"


def test_a_body_changed_after_signing_fails_the_signature():
    with pytest.raises(Refusal) as refused:
        _verify(_signed(), body=b'{"instances": [[1.0]]}')

    assert refused.value.code == "InvalidSignatureException"


def test_a_signature_older_than_fifteen_minutes_has_expired():
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=16)

    with pytest.raises(Refusal) as refused:
        _verify(_signed(), now=later)

    assert refused.value.code == "InvalidSignatureException"
    assert refused.value.message.startswith("Signature expired")


def test_the_running_emulator_refuses_a_client_with_other_credentials(emulator):
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    stranger = boto3.client(
        "sagemaker",
        endpoint_url=emulator.url,
        region_name="us-east-1",
        aws_access_key_id="EMULATORTESTSKEY0001",
        aws_secret_access_key="not-the-issued-secret",  # noqa: S106
        config=config,
    )

    with pytest.raises(ClientError) as refused:
        stranger.list_endpoints()

    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_the_running_emulator_refuses_an_unsigned_request(emulator):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        emulator.url + "/",
        data=b"{}",
        headers={
            "X-Amz-Target": "SageMaker.ListEndpoints",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310 - a loopback test server

    assert refused.value.code == 403
    assert refused.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
