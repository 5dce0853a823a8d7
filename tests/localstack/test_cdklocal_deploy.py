"""`cdklocal deploy` puts the ArtifactStore on LocalStack, and the deployed resources carry the
settings the cloud stack promises: KMS encryption, versioning, blocked public access, TLS only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

pytestmark = pytest.mark.localstack

REPO = Path(__file__).resolve().parents[2]
CDKLOCAL = REPO / "node_modules" / ".bin" / "cdklocal"


def cdklocal(*args: str, outdir) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CDK_DISABLE_VERSION_CHECK": "1",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
        "CDK_OUTDIR": str(outdir),
    }
    app = f"{sys.executable} -m infra.localstack_app"
    command = [str(CDKLOCAL), *args, "--app", app, "--output", str(outdir), "--no-notices"]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def deployed_outputs(localstack, tmp_path_factory):
    # Module-scoped: the environment is set by hand here, as monkeypatch is function-scoped.
    saved = dict(os.environ)
    os.environ.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=localstack.url,
        AWS_ENDPOINT_URL_S3=localstack.url,
    )
    try:
        outdir = tmp_path_factory.mktemp("cdk.out")
        boot = cdklocal("bootstrap", "aws://000000000000/us-east-1", outdir=outdir)
        assert boot.returncode == 0, boot.stderr[-3000:]
        deploy = cdklocal("deploy", "--require-approval", "never", outdir=outdir)
        assert deploy.returncode == 0, deploy.stderr[-3000:]
        cfn = boto3.client("cloudformation", endpoint_url=localstack.url)
        stack = cfn.describe_stacks(StackName="maas-localstack-store")["Stacks"][0]
        yield {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_cdklocal_deploys_every_bucket_and_the_key(deployed_outputs):
    assert {"DataBucket", "ArtifactBucket", "CaptureBucket", "AccessLogBucket", "KeyArn"} <= set(
        deployed_outputs
    )


def test_deployed_stack_encrypts_buckets_with_the_platform_key(deployed_outputs, localstack_env):
    # LocalStack's S3 resource provider does not apply BucketEncryption (a bucket created from
    # it reports AES256), so this reads the template LocalStack deployed, not the bucket.
    cfn = boto3.client("cloudformation")
    template = json.loads(
        json.dumps(cfn.get_template(StackName="maas-localstack-store")["TemplateBody"])
    )
    if isinstance(template, str):
        template = json.loads(template)
    resources = template["Resources"]
    key_ids = [k for k, v in resources.items() if v["Type"] == "AWS::KMS::Key"]
    encrypted = []
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::S3::Bucket":
            continue
        rule = resource["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        default = rule["ServerSideEncryptionByDefault"]
        if default["SSEAlgorithm"] == "aws:kms":
            assert default["KMSMasterKeyID"] == {"Fn::GetAtt": [key_ids[0], "Arn"]}
            encrypted.append(logical_id)
    # data, artifacts and capture; the access-log bucket must stay SSE-S3 for log delivery
    assert len(encrypted) == 3, encrypted


def test_deployed_key_rotates(deployed_outputs, localstack_env):
    kms = boto3.client("kms")
    key_id = deployed_outputs["KeyArn"].rsplit("/", 1)[-1]
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True


def test_deployed_buckets_block_public_access_and_are_versioned(deployed_outputs, localstack_env):
    s3 = boto3.client("s3")
    for name in ("DataBucket", "ArtifactBucket", "CaptureBucket", "AccessLogBucket"):
        bucket = deployed_outputs[name]
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values()), (name, block)
        assert s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled", name


def test_deployed_bucket_policies_deny_plain_http(deployed_outputs, localstack_env):
    s3 = boto3.client("s3")
    for name in ("DataBucket", "ArtifactBucket", "CaptureBucket"):
        policy = json.loads(s3.get_bucket_policy(Bucket=deployed_outputs[name])["Policy"])
        denies_http = [
            statement
            for statement in policy["Statement"]
            if statement["Effect"] == "Deny"
            and statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        ]
        assert denies_http, (name, policy)
