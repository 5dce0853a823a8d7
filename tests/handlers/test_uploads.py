"""POST /v1/models/{model}/uploads: presigned PUT URLs for a model's files, signed by the
registry's role (SigV4 query-string auth, at most 604800 s:
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html). The full round
trip, a client with no AWS credentials uploading through them and registering, runs against
two local stacks in tests/reliability/test_promote.py."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from handlers.registry import routes as registry
from maas_contract.artifacts import UPLOAD_URL_TTL_S
from tests.handlers.support import ADMIN, ARTIFACTS, api_event, call, error_of


def uploads(context, scopes: str = ADMIN, model: str = "demo"):
    event = api_event(
        "POST", "/v1/models/{model}/uploads", path_params={"model": model}, scopes=scopes
    )
    return call(registry, event, context)


def test_each_upload_gets_its_own_folder_and_presigned_put_urls(aws_backend, lambda_context):
    first, second = uploads(lambda_context), uploads(lambda_context)

    assert (first.status, second.status) == (201, 201), first.body
    body = first.body
    folder = re.fullmatch(
        rf"s3://{ARTIFACTS}/(uploads/demo/[0-9a-f]{{32}})/model\.tar\.gz", body["artifact_uri"]
    )
    assert folder, body["artifact_uri"]
    assert body["signature_uri"] == f"s3://{ARTIFACTS}/{folder.group(1)}/signature.json"
    assert second.body["artifact_uri"] != body["artifact_uri"]
    assert body["expires_in"] == UPLOAD_URL_TTL_S
    for url, key in (
        (body["upload_url"], f"{folder.group(1)}/model.tar.gz"),
        (body["signature_upload_url"], f"{folder.group(1)}/signature.json"),
    ):
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        assert parts.path.endswith(f"/{key}") or parts.path == f"/{ARTIFACTS}/{key}", url
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert query["X-Amz-Expires"] == [str(UPLOAD_URL_TTL_S)]
        assert query["X-Amz-SignedHeaders"] == ["host"]


def test_only_an_admin_gets_upload_urls(aws_backend, lambda_context):
    refused = uploads(lambda_context, scopes="maas/invoke")
    assert refused.status == 403
    assert error_of(refused).code


def test_a_model_name_that_is_not_one_is_a_400(aws_backend, lambda_context):
    assert uploads(lambda_context, model="Not A Name!").status == 400
