"""What `cdk deploy` would create, made in moto's server at start-up, and the handlers' env."""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config

from maas_contract import token_usage
from maas_contract.registry import key_schema
from maas_contract.settings import HandlerSettings
from maas_local.config import (
    FAKE_CREDENTIALS,
    REGION,
    REPO_ROOT,
    RESOURCE_PREFIX,
    read_json,
    write_private_json,
)

TRAINING_DIR = REPO_ROOT / "training"
# Deep Learning Container images, as infra resolves them; nothing pulls them locally.
DLC_REGISTRY = f"763104351884.dkr.ecr.{REGION}.amazonaws.com"
TRAINING_IMAGE = f"{DLC_REGISTRY}/pytorch-training:2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker"
INFERENCE_IMAGE = f"{DLC_REGISTRY}/pytorch-inference:2.5.1-gpu-py311-cu124-ubuntu22.04-sagemaker"
INFERENCE_IMAGE_CPU = f"{DLC_REGISTRY}/pytorch-inference:2.5.1-cpu-py311-ubuntu22.04-sagemaker"
_SAGEMAKER_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


@dataclass(frozen=True)
class PlatformResources:
    registry_table: str
    artifact_bucket: str
    data_bucket: str
    capture_bucket: str
    kms_key_arn: str
    role_arn: str
    alarm_topic_arn: str
    source_dir_s3_uri: str
    # The OpenAI-compatible function's token counts (TOKEN_USAGE_TABLE).
    token_usage_table: str = ""


CREDENTIALS_FILE = "aws_credentials.json"
_KEY_ALPHABET = string.ascii_uppercase + string.digits


def issue_credentials(keys_dir: Path) -> dict[str, str]:
    """The access key the local stack's AWS endpoints accept, made afresh at each `up` and
    kept owner-only in the state directory (never on a command line)."""
    credentials = {
        "AWS_ACCESS_KEY_ID": "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16)),
        "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
    }
    write_private_json(keys_dir / CREDENTIALS_FILE, credentials)
    return credentials


def stack_credentials(keys_dir: Path) -> dict[str, str]:
    """The credentials the running local stack issued (see issue_credentials)."""
    found = read_json(keys_dir / CREDENTIALS_FILE)
    if not found:
        raise FileNotFoundError(f"no local stack credentials in {keys_dir}: `maas local up`")
    return dict(found)


def local_client(
    service: str,
    endpoint_url: str,
    credentials: dict[str, str] | None = None,
    config: Config | None = None,
):
    """A boto3 client for a service of the local stack. The stack's moto and SageMaker emulator
    accept only the credentials the stack issued (`stack_credentials`); the stand-ins are for a
    moto started without checks (tests, the bench). They are always given explicitly: boto3's
    default session keeps whatever it resolved first."""
    chosen = credentials or FAKE_CREDENTIALS
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=chosen["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=chosen["AWS_SECRET_ACCESS_KEY"],
        config=config,
    )


def _create_table(dynamodb, name: str) -> None:
    """The registry table, with the key schema infra gives the cloud's."""
    schema = key_schema()
    dynamodb.create_table(**schema.create_table_request(name))
    dynamodb.update_time_to_live(**schema.time_to_live_request(name))


def _create_token_usage_table(dynamodb, name: str) -> None:
    """As infra builds the cloud's, from the contract's key schema."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": a, "KeyType": k} for a, k in token_usage.KEYS],
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"} for a, _ in token_usage.KEYS
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": token_usage.TTL_ATTRIBUTE},
    )


def _platform_key(kms, description: str) -> str:
    """The platform's KMS key: the one a saved state already holds, or a new one."""
    for page in kms.get_paginator("list_keys").paginate():
        for key in page["Keys"]:
            meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
            if meta["Description"] == description and meta["KeyState"] == "Enabled":
                return meta["Arn"]
    key_arn = kms.create_key(Description=description)["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=key_arn)
    return key_arn


def _create_bucket(s3, name: str, kms_key_arn: str, *, exists: bool = False) -> None:
    if not exists:
        s3.create_bucket(Bucket=name)
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": kms_key_arn,
                    }
                }
            ]
        },
    )


def create_platform(
    moto_url: str,
    progress: Callable[[str], None] = print,
    *,
    credentials: dict[str, str] | None = None,
    storage_url: str | None = None,
) -> PlatformResources:
    """storage_url, when given, serves S3 and KMS (the LocalStack backend); moto does the rest.
    `credentials`: the stack's own (moto answers only them); None for a moto without checks."""
    prefix = RESOURCE_PREFIX
    kms = local_client("kms", storage_url or moto_url, credentials)
    key_arn = _platform_key(kms, f"{prefix} platform key")
    iam = local_client("iam", moto_url, credentials)
    role_name = f"{prefix}-sagemaker-execution"
    try:
        role_arn = iam.get_role(RoleName=role_name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role_arn = iam.create_role(
            RoleName=role_name, AssumeRolePolicyDocument=json.dumps(_SAGEMAKER_TRUST)
        )["Role"]["Arn"]
    progress("KMS key and SageMaker execution role ready")
    s3 = local_client("s3", storage_url or moto_url, credentials)
    buckets = {kind: f"{prefix}-{kind}" for kind in ("artifacts", "data", "capture")}
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for name in buckets.values():
        _create_bucket(s3, name, key_arn, exists=name in existing)
    table = f"{prefix}-registry"
    dynamodb = local_client("dynamodb", moto_url, credentials)
    token_usage = f"{prefix}-token-usage"
    tables = dynamodb.list_tables()["TableNames"]
    if table not in tables:
        _create_table(dynamodb, table)
    if token_usage not in tables:
        _create_token_usage_table(dynamodb, token_usage)
    kept = "from the saved state" if existing & set(buckets.values()) else "created"
    progress(f"buckets {', '.join(buckets.values())}, tables {table}, {token_usage}: {kept}")
    topic = local_client("sns", moto_url, credentials).create_topic(
        Name=f"{prefix}-alarms", Attributes={"KmsMasterKeyId": key_arn}
    )["TopicArn"]
    progress(f"created alarm topic {topic}")
    return PlatformResources(
        registry_table=table,
        artifact_bucket=buckets["artifacts"],
        data_bucket=buckets["data"],
        capture_bucket=buckets["capture"],
        kms_key_arn=key_arn,
        role_arn=role_arn,
        alarm_topic_arn=topic,
        # The training code is published where the template's policies say: see
        # maas_local.stack, which fills this in from the synthesised CDK asset.
        source_dir_s3_uri="",
        token_usage_table=token_usage,
    )


def publish_file(
    moto_url: str,
    path: Path,
    bucket: str,
    key: str,
    kms_key_arn: str,
    *,
    credentials: dict[str, str] | None = None,
    storage_url: str | None = None,
) -> None:
    """Uploads a deployment asset as `cdk deploy` does, creating its bucket on first use."""
    s3 = local_client("s3", storage_url or moto_url, credentials)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        _create_bucket(s3, bucket, kms_key_arn)
    s3.upload_file(str(path), bucket, key)


# The services the LocalStack backend takes over from moto, by their endpoint variables.
LOCALSTACK_SERVICES = ("S3", "SQS", "EVENTBRIDGE", "KMS")


def aws_env(
    moto_url: str,
    sagemaker_url: str | None,
    localstack_url: str | None = None,
    credentials: dict[str, str] | None = None,
) -> dict[str, str]:
    """Endpoints and credentials (the stack's own; stand-ins for a moto without checks): every
    AWS call of the stack stays on 127.0.0.1."""
    env = dict(FAKE_CREDENTIALS)
    if credentials:  # the stack's long-term key: no session token
        env.pop("AWS_SESSION_TOKEN")
        env.update(credentials)
    env["AWS_ENDPOINT_URL"] = moto_url
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    if sagemaker_url:
        env["AWS_ENDPOINT_URL_SAGEMAKER"] = sagemaker_url
        env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = sagemaker_url
    if localstack_url:
        for service in LOCALSTACK_SERVICES:
            env[f"AWS_ENDPOINT_URL_{service}"] = localstack_url
    return env


def handler_env(
    resources: PlatformResources,
    moto_url: str,
    sagemaker_url: str,
    localstack_url: str | None = None,
    credentials: dict[str, str] | None = None,
    *,
    generation_image_uri: str | None = None,
    token_quotas: dict[str, dict] | None = None,
) -> dict[str, str]:
    """The environment infra gives the Lambda functions, pointed at the local services.
    `token_quotas`: each app client id's name and token limits (TOKEN_QUOTAS)."""
    metrics = json.loads((TRAINING_DIR / "metric_definitions.json").read_text())
    env = aws_env(moto_url, sagemaker_url, localstack_url, credentials)
    env.update(
        HandlerSettings(
            registry_table=resources.registry_table,
            resource_prefix=RESOURCE_PREFIX,
            artifact_bucket=resources.artifact_bucket,
            data_bucket=resources.data_bucket,
            capture_bucket=resources.capture_bucket,
            kms_key_arn=resources.kms_key_arn,
            sagemaker_role_arn=resources.role_arn,
            training_image_uri=TRAINING_IMAGE,
            inference_image_uri=INFERENCE_IMAGE,
            inference_image_uri_cpu=INFERENCE_IMAGE_CPU,
            source_dir_s3_uri=resources.source_dir_s3_uri,
            training_instance_type="ml.g5.xlarge",
            metric_definitions=tuple(metrics),
            alarm_topic_arn=resources.alarm_topic_arn,
            generation_image_uri=generation_image_uri,
            token_usage_table=resources.token_usage_table or None,
            token_quotas=json.dumps(token_quotas, sort_keys=True) if token_quotas else None,
        ).to_env()
    )
    # No X-Ray daemon runs locally, so the tracer stays off; logs at INFO as in the cloud.
    env.update(POWERTOOLS_TRACE_DISABLED="true", POWERTOOLS_LOG_LEVEL="INFO")
    return env
