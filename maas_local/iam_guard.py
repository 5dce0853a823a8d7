"""Every AWS call a handler makes locally is authorised against its function's policy.

In the cloud each Lambda function runs under its own role. Locally the handlers share one
process, so the guard tracks which function is running (`acting_as`, set by the invoker for
each invocation) and checks each botocore call against that function's policy from the
synthesised template (maas_local.cloud_template): the action, the resource ARN, and the
condition keys maas relies on (`iam:PassedToService` for PassRole). A denied call answers as
AWS does: a 400 `AccessDeniedException` naming the action and the resource, raised by
botocore as the ClientError the handler would get in the cloud.

The guard hooks botocore, the layer every boto3 and botocore client is made from (the
handlers' own clients and Powertools' idempotency client alike), through its documented
event system: `before-parameter-build` sees the call's parameters, `before-call` may answer
in place of the service.

Every decision goes to the audit log (one JSON line each, as CloudTrail keeps), from which
the IAM contract test lists each (function, action, resource) triple the end-to-end flow
made; the latest ones are also kept in memory, in `calls`.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import botocore.handlers
from botocore.awsrequest import AWSResponse

from maas_local.iam_policy import Policy, Request, denial_message

_acting: contextvars.ContextVar[str | None] = contextvars.ContextVar("maas_function", default=None)
_DECISION_KEY = "maas_iam_denial"
SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"
KEPT_DECISIONS = 10_000


@contextlib.contextmanager
def acting_as(function: str) -> Iterator[None]:
    """AWS calls made inside this block are made by Lambda function `function` (route group)."""
    token = _acting.set(function)
    try:
        yield
    finally:
        _acting.reset(token)


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


@dataclass
class Decision:
    function: str
    request: Request
    decision: str


@dataclass
class IamGuard:
    """Holds each function's policy and checks every call made while a function is acting."""

    policies: dict[str, Policy]
    place: Place
    bucket_keys: dict[str, str] = field(default_factory=dict)  # bucket -> default KMS key
    audit_log: Path | None = None  # one JSON line per decision, as CloudTrail would keep
    # The latest decisions only: the gateway runs for days, and the audit log keeps them all.
    calls: deque[Decision] = field(default_factory=lambda: deque(maxlen=KEPT_DECISIONS))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _audit: IO[str] | None = None

    @classmethod
    def from_file(cls, path: Path, audit_log: Path | None = None) -> IamGuard:
        """The guard for the policies file the supervisor writes at `maas local up`."""
        document = json.loads(path.read_text())
        policies = {f: Policy(s) for f, s in document["functions"].items()}
        role = document.get("execution_role")
        if role:
            policies[role["arn"]] = Policy(role["statements"])
        return cls(
            policies=policies,
            place=Place(document["region"], document["account"]),
            bucket_keys=document.get("bucket_keys", {}),
            audit_log=audit_log,
        )

    def check(self, function: str, requests: list[Request]) -> Decision | None:
        """The first denial among `requests`, or None when all are allowed."""
        policy = self.policies.get(function)
        denied = None
        for request in requests:
            decision = policy.decide(request) if policy is not None else "ImplicitDeny"
            self._record(Decision(function, request, decision))
            if decision != "Allow" and denied is None:
                denied = Decision(function, request, decision)
        return denied

    def _record(self, decision: Decision) -> None:
        with self._lock:
            self.calls.append(decision)
            if self.audit_log is not None:
                line = {
                    "function": decision.function,
                    "action": decision.request.action,
                    "resource": decision.request.resource,
                    "context": dict(decision.request.context or {}),
                    "decision": decision.decision,
                }
                if self._audit is None:  # opened once, line-buffered: one write per call
                    self._audit = self.audit_log.open("a", buffering=1)
                self._audit.write(json.dumps(line) + "\n")

    def principal(self, function: str) -> str:
        if function.startswith("arn:aws:iam::"):  # a role SageMaker assumed for a job
            role_name = function.rsplit("/", 1)[-1]
            return f"arn:aws:sts::{self.place.account}:assumed-role/{role_name}/SageMaker"
        # Locally a function's role has no name of its own: it is named after the function.
        return f"arn:aws:sts::{self.place.account}:assumed-role/{function}/{function}"

    # -- botocore hooks ----------------------------------------------------------------
    def before_parameter_build(self, params: dict, model: Any, context: dict, **_: Any) -> None:
        function = _acting.get()
        if function is None:
            return  # not a handler's call: the stack's own set-up and tests
        service = model.service_model.service_name
        requests = requests_for(service, model.name, params, self.place, self.bucket_keys)
        denied = self.check(function, requests)
        if denied is not None:
            context[_DECISION_KEY] = denied

    def before_call(self, model: Any, context: dict, **_: Any) -> tuple[AWSResponse, dict] | None:
        denied: Decision | None = context.get(_DECISION_KEY)
        if denied is None:
            return None
        message = denial_message(self.principal(denied.function), denied.request, denied.decision)
        # S3 answers 403 AccessDenied; the JSON services answer 400 AccessDeniedException.
        s3 = model.service_model.service_name == "s3"
        code, status = ("AccessDenied", 403) if s3 else ("AccessDeniedException", 400)
        http = AWSResponse(url="", status_code=status, headers={}, raw=None)
        parsed = {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}},
        }
        return http, parsed

    def bind(self, client: Any, principal: str) -> None:
        """Every call of `client` is made as `principal` (a role ARN the guard holds a
        policy for): SageMaker reading and writing S3 with a job's or model's role."""

        def check(params: dict, model: Any, context: dict, **_: Any) -> None:
            service = model.service_model.service_name
            requests = requests_for(service, model.name, params, self.place, self.bucket_keys)
            denied = self.check(principal, requests)
            if denied is not None:
                context[_DECISION_KEY] = denied

        client.meta.events.register("before-parameter-build", check)
        client.meta.events.register("before-call", self.before_call)

    def install(self) -> None:
        """From now on, every botocore session made in this process carries the guard.
        Sessions made earlier are unaffected, so install before the handlers load."""
        botocore.handlers.BUILTIN_HANDLERS.extend(
            [
                ("before-parameter-build", self.before_parameter_build),
                ("before-call", self.before_call),
            ]
        )

    def uninstall(self) -> None:
        for entry in list(botocore.handlers.BUILTIN_HANDLERS):
            if getattr(entry[1], "__self__", None) is self:
                botocore.handlers.BUILTIN_HANDLERS.remove(entry)
