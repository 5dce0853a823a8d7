"""The IAM requests AWS evaluates for one API call, per the Service Authorization Reference
(https://docs.aws.amazon.com/service-authorization/latest/reference/): the action, each
resource the call names, and the condition keys maas's policies use. maas_local.iam_guard
checks them against the calling function's policy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from maas_local.iam_policy import Request

SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"


@dataclass(frozen=True)
class Place:
    region: str
    account: str

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region, account = (self.region, self.account) if regional else ("", "")
        return f"arn:aws:{service}:{region}:{account}:{resource}"


def _sagemaker(op: str, p: dict[str, Any], at: Place) -> list[Request]:
    def arn(kind: str, name: str) -> str:
        return at.arn("sagemaker", f"{kind}/{name.lower()}")

    requests: list[Request] = []
    by_param = {
        "TrainingJobName": "training-job",
        "ModelName": "model",
        "EndpointConfigName": "endpoint-config",
        "EndpointName": "endpoint",
    }
    for param, kind in by_param.items():
        if param in p and not op.startswith("List"):
            requests.append(Request(f"sagemaker:{op}", arn(kind, str(p[param]))))
    if "ResourceArn" in p:
        requests.append(Request(f"sagemaker:{op}", str(p["ResourceArn"])))
    if not requests:
        requests.append(Request(f"sagemaker:{op}", "*"))
    for role_param in ("RoleArn", "ExecutionRoleArn"):
        if role_param in p:  # passing a role is its own permission, checked on the role
            requests.append(
                Request(
                    "iam:PassRole",
                    str(p[role_param]),
                    {"iam:PassedToService": SAGEMAKER_SERVICE},
                )
            )
    return requests


_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _dynamodb(op: str, p: dict[str, Any], at: Place) -> list[Request]:
    def table(name: str, index: str | None = None) -> str:
        resource = f"table/{name}" + (f"/index/{index}" if index else "")
        return at.arn("dynamodb", resource)

    if op in ("TransactWriteItems", "TransactGetItems"):
        # Each item of a transaction is authorised as its own single-item action.
        requests = []
        for item in p.get("TransactItems", []):
            for kind, body in item.items():
                requests.append(
                    Request(f"dynamodb:{_TRANSACT_ACTIONS[kind]}", table(body["TableName"]))
                )
        return requests
    if op in ("BatchGetItem", "BatchWriteItem"):
        return [Request(f"dynamodb:{op}", table(name)) for name in p.get("RequestItems", {})]
    if "TableName" in p:
        return [Request(f"dynamodb:{op}", table(p["TableName"], p.get("IndexName")))]
    return [Request(f"dynamodb:{op}", "*")]


def _cloudwatch(op: str, p: dict[str, Any], at: Place) -> list[Request]:
    if op == "PutMetricAlarm":
        context = {"cloudwatch:AlarmActions": list(p.get("AlarmActions", []))}
        alarm = at.arn("cloudwatch", f"alarm:{p['AlarmName']}")
        return [Request("cloudwatch:PutMetricAlarm", alarm, context)]
    if op in ("DescribeAlarms", "DeleteAlarms") and p.get("AlarmNames"):
        return [
            Request(f"cloudwatch:{op}", at.arn("cloudwatch", f"alarm:{name}"))
            for name in p["AlarmNames"]
        ]
    context = {"cloudwatch:namespace": p["Namespace"]} if "Namespace" in p else {}
    return [Request(f"cloudwatch:{op}", "*", context)]


def _autoscaling(op: str, p: dict[str, Any], at: Place) -> list[Request]:
    action = f"application-autoscaling:{op}"
    if "ResourceId" not in p:
        return [Request(action, "*")]
    # A scalable target's ARN ends in an id the service makes; the policy can only name it
    # with a wildcard and hold it with the namespace and dimension condition keys.
    target_id = hashlib.sha256(str(p["ResourceId"]).encode()).hexdigest()[:32]
    context = {
        "application-autoscaling:service-namespace": str(p.get("ServiceNamespace", "")),
        "application-autoscaling:scalable-dimension": str(p.get("ScalableDimension", "")),
    }
    resource = at.arn("application-autoscaling", f"scalable-target/{target_id}")
    return [Request(action, resource, context)]


def requests_for(
    service: str,
    op: str,
    params: dict[str, Any],
    at: Place,
    bucket_keys: dict[str, str] | None = None,
) -> list[Request]:
    """The IAM requests AWS evaluates for one API call, per the Service Authorization
    Reference (https://docs.aws.amazon.com/service-authorization/latest/reference/):
    the action, each resource it names, and the condition keys maas's policies use."""
    if service == "sagemaker":
        return _sagemaker(op, params, at)
    if service == "sagemaker-runtime":
        return [
            Request(
                f"sagemaker:{op}", at.arn("sagemaker", f"endpoint/{params['EndpointName'].lower()}")
            )
        ]
    if service == "dynamodb":
        return _dynamodb(op, params, at)
    if service == "cloudwatch":
        return _cloudwatch(op, params, at)
    if service == "application-autoscaling":
        return _autoscaling(op, params, at)
    if service == "s3" and "Bucket" in params:
        return _s3(op, params, bucket_keys or {})
    return [Request(f"{service}:{op}", "*")]


# S3 operations and the IAM action each is authorised as ("Amazon S3 API operations and
# permissions": https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html).
_S3_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "DeleteObject": "s3:DeleteObject",
}


def _s3(op: str, p: dict[str, Any], bucket_keys: dict[str, str]) -> list[Request]:
    """The S3 action on its bucket or object, plus the KMS action SSE-KMS makes on the
    caller's behalf: GenerateDataKey to write, Decrypt to read ("Protecting data with
    server-side encryption using AWS KMS keys", permissions:
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html)."""
    bucket, key = p["Bucket"], p.get("Key")
    if op == "CopyObject":
        return _s3_copy(p, bucket_keys)
    action = _S3_ACTIONS.get(op, f"s3:{op}")
    if action == "s3:ListBucket":
        context = {"s3:prefix": str(p.get("Prefix", ""))}
        return [Request(action, f"arn:aws:s3:::{bucket}", context)]
    requests = [Request(action, f"arn:aws:s3:::{bucket}" + (f"/{key}" if key else ""))]
    kms_key = p.get("SSEKMSKeyId") or bucket_keys.get(bucket)
    if kms_key and action == "s3:PutObject" and op != "UploadPart":
        requests.append(Request("kms:GenerateDataKey", kms_key))
    elif kms_key and op == "GetObject":
        requests.append(Request("kms:Decrypt", kms_key))
    return requests


def _copy_source(source: Any) -> tuple[str, str]:
    """CopySource as botocore takes it: {"Bucket", "Key"} or "bucket/key" (URL-quoted)."""
    if isinstance(source, dict):
        return str(source["Bucket"]), str(source["Key"])
    bucket, _, key = unquote(str(source)).lstrip("/").partition("/")
    return bucket, key.split("?versionId=")[0]


def _s3_copy(p: dict[str, Any], bucket_keys: dict[str, str]) -> list[Request]:
    """CopyObject reads the source and writes the destination: s3:GetObject on one and
    s3:PutObject on the other, and with SSE-KMS kms:Decrypt on the source's key and
    kms:GenerateDataKey on the destination's
    (https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html)."""
    source_bucket, source_key = _copy_source(p["CopySource"])
    requests = [
        Request("s3:GetObject", f"arn:aws:s3:::{source_bucket}/{source_key}"),
        Request("s3:PutObject", f"arn:aws:s3:::{p['Bucket']}/{p['Key']}"),
    ]
    if bucket_keys.get(source_bucket):
        requests.append(Request("kms:Decrypt", bucket_keys[source_bucket]))
    destination_key = p.get("SSEKMSKeyId") or bucket_keys.get(p["Bucket"])
    if destination_key:
        requests.append(Request("kms:GenerateDataKey", destination_key))
    return requests
