"""Only the stack's owner gets in: every local AWS endpoint checks SigV4 against the credentials
made at `up`, no server answers a web page or a foreign Host, internals need the owner's
signature, and no secret is on any process's command line.

AWS refuses an unsigned call with MissingAuthenticationToken (403) in the common errors of its
APIs (https://docs.aws.amazon.com/IAM/latest/APIReference/CommonErrors.html), and S3 refuses an
anonymous write to a private bucket with AccessDenied (403,
https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html).
"""

from __future__ import annotations

import json
import secrets

import boto3
import psutil
import pytest
import requests
from botocore.exceptions import ClientError

from maas_local import lifecycle
from maas_local.aws_resources import local_client, stack_credentials
from maas_local.config import StackPaths, read_json
from maas_local.sagemaker.sigv4 import signed_get_headers
from maas_local.stack import StackOptions
from maas_local.tokens import APP_CLIENT_FILE

pytestmark = pytest.mark.slow
PARTS = ("moto", "sagemaker", "gateway")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    paths = StackPaths(tmp_path_factory.mktemp("maas-home"))
    try:
        assert lifecycle.up(paths, foreground=False, options=StackOptions()) == 0
        yield paths, read_json(paths.state_file)
    finally:
        lifecycle.down(paths, quiet=True)


def _url(state: dict, part: str) -> str:
    return state["parts"][part]["url"]


def _sourcedir(state: dict, s3) -> tuple[str, str]:
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("cdk-"))
    key = s3.list_objects_v2(Bucket=bucket)["Contents"][0]["Key"]
    return bucket, key


def test_an_unsigned_write_cannot_replace_the_training_code(stack):
    paths, state = stack
    s3 = local_client("s3", _url(state, "moto"), stack_credentials(paths.keys))
    bucket, key = _sourcedir(state, s3)
    before = s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    answer = requests.put(f"{_url(state, 'moto')}/{bucket}/{key}", data=b"attacker", timeout=10)

    assert answer.status_code == 403
    assert b"<Code>AccessDenied</Code>" in answer.content
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == before


def test_moto_answers_only_the_stacks_own_signature(stack):
    paths, state = stack
    issued = stack_credentials(paths.keys)
    unsigned = requests.post(
        _url(state, "moto"),
        headers={
            "X-Amz-Target": "DynamoDB_20120810.Scan",
            "Content-Type": "application/x-amz-json-1.0",
        },
        data=json.dumps({"TableName": "maas-local-registry"}),
        timeout=10,
    )
    assert unsigned.status_code == 403
    assert unsigned.json()["__type"] == "MissingAuthenticationTokenException"

    forged = {**issued, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    for service, call in (
        ("s3", lambda c: c.list_buckets()),
        ("dynamodb", lambda c: c.scan(TableName="maas-local-registry")),
    ):
        with pytest.raises(ClientError) as refused:
            call(local_client(service, _url(state, "moto"), forged))
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    stranger = boto3.client(
        "dynamodb",
        endpoint_url=_url(state, "moto"),
        region_name="us-east-1",
        # Another user's key: well formed, made here, never issued by the stack.
        aws_access_key_id="AKIA" + secrets.token_hex(8).upper(),
        aws_secret_access_key=secrets.token_urlsafe(30),
    )
    with pytest.raises(ClientError):
        stranger.list_tables()
    assert local_client("dynamodb", _url(state, "moto"), issued).list_tables()["TableNames"]


def test_an_unsigned_emulator_call_is_refused(stack):
    _, state = stack
    answer = requests.post(
        _url(state, "sagemaker"),
        headers={
            "X-Amz-Target": "SageMaker.CreateModel",
            "Content-Type": "application/x-amz-json-1.1",
            "Authorization": "AWS4-HMAC-SHA256 anything",
        },
        data=json.dumps({"ModelName": "attacker", "ExecutionRoleArn": "arn:aws:iam::1:role/x"}),
        timeout=10,
    )
    assert answer.status_code == 400
    assert answer.json()["__type"] == "IncompleteSignatureException"
    bare = requests.post(
        _url(state, "sagemaker"),
        headers={"X-Amz-Target": "SageMaker.ListModels"},
        data="{}",
        timeout=10,
    )
    assert bare.status_code == 403
    assert bare.json()["__type"] == "MissingAuthenticationTokenException"


def test_internals_need_the_owners_signature_or_are_not_served(stack):
    paths, state = stack
    issued = stack_credentials(paths.keys)
    endpoints = f"{_url(state, 'sagemaker')}/_emulator/endpoints"

    assert requests.get(endpoints, timeout=10).status_code == 403
    signed = signed_get_headers(
        endpoints, issued["AWS_ACCESS_KEY_ID"], issued["AWS_SECRET_ACCESS_KEY"], "us-east-1"
    )
    assert requests.get(endpoints, headers=signed, timeout=10).json() == {}
    for path in ("/moto-api/", "/moto-api/data.json", "/moto-api/reset"):
        assert requests.get(_url(state, "moto") + path, timeout=10).status_code == 403
    health = requests.get(_url(state, "sagemaker") + "/_emulator/health", timeout=10).json()
    assert "pid" not in json.dumps(health)


@pytest.mark.parametrize("part", PARTS)
@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://attacker.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Host": "attacker.example"},
        {"Host": "attacker.example:80", "Origin": "http://attacker.example:80"},
    ],
    ids=["origin", "null-origin", "fetch-metadata", "rebound-host", "rebound-same-origin"],
)
def test_no_server_answers_a_web_page_or_a_foreign_host(stack, part, headers):
    _, state = stack
    health = state["parts"][part]["health"]
    assert requests.get(health, timeout=10).status_code == 200

    refused = requests.get(health, headers=headers, timeout=10)
    options = requests.options(health, headers={**headers, "Access-Control-Request-Method": "PUT"})

    assert refused.status_code == 403
    assert options.status_code == 403
    assert "access-control-allow-origin" not in {h.lower() for h in refused.headers}


def test_no_secret_is_on_any_command_line(stack):
    paths, state = stack
    gateway = psutil.Process(state["parts"]["gateway"]["pid"])
    secrets = {
        "AWS secret": stack_credentials(paths.keys)["AWS_SECRET_ACCESS_KEY"],
        "API key": state["api_key"],
        "app client secret": read_json(paths.keys / APP_CLIENT_FILE)["client_secret"],
        "event-sink token": gateway.environ()["MAAS_EVENT_SINK_TOKEN"],
    }
    supervisor = psutil.Process(state["supervisor"]["pid"])
    processes = [supervisor, *supervisor.children(recursive=True)]
    assert len(processes) >= 1 + len(PARTS)

    for process in processes:
        command_line = " ".join(process.cmdline())
        for name, secret in secrets.items():
            assert secret not in command_line, f"the {name} is on {process.pid}'s command line"


def test_the_gateway_writes_an_access_line_per_request_without_the_event_secret(stack):
    from maas import Client

    paths, state = stack
    assert Client.local(paths.home).live()
    requests.post(f"{state['api_url']}/_local/events/not-the-token", data=b"{}", timeout=10)

    lines = [
        json.loads(line.split(" access ", 1)[1])
        for line in paths.log_for("gateway").read_text().splitlines()
        if " access {" in line
    ]
    live = [a for a in lines if a["path"] == "/v2/health/live"]
    assert live and live[-1]["method"] == "GET" and live[-1]["status"] == 200
    assert live[-1]["request_id"] and live[-1]["latency_ms"] >= 0
    assert any(a["path"] == "/_local/events/***" for a in lines)
    assert "not-the-token" not in paths.log_for("gateway").read_text()
