"""cdk-nag acknowledgements and checkov skips. Each is made on the one construct it concerns,
next to the code that causes it, and carries the reason a reviewer needs. IAM5 is acknowledged
per exact finding (the `[Action::...]` or `[Resource::...]` part), never for a whole rule."""

from __future__ import annotations

from aws_cdk import Acknowledgment, CfnResource, Stack, Token, Validations
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

S3_ACTION_GROUPS = ("s3:GetBucket*", "s3:GetObject*", "s3:List*", "s3:Abort*", "s3:DeleteObject*")
KMS_ACTION_GROUPS = ("kms:GenerateDataKey*", "kms:ReEncrypt*")
GRANT_REASON = (
    "Action group written by CDK's grant_* helpers; every statement that carries it "
    "is limited to this stack's own buckets, table or single KMS key."
)


def acknowledge(scope: IConstruct, rule: str, reason: str, applies_to: str | None = None) -> None:
    pack = rule.split("-", 1)[0]
    finding = f"{pack}::{rule}" + (f"[{applies_to}]" if applies_to else "")
    Validations.of(scope).acknowledge(Acknowledgment(id=finding, reason=reason))


def skip_checkov(scope: IConstruct, check_id: str, reason: str) -> None:
    """Skips one checkov check on one resource, recorded in its template metadata."""
    resource = scope.node.default_child or scope
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{scope.node.path} has no CloudFormation resource to annotate")
    metadata = resource.get_metadata("checkov") or {"skip": []}
    metadata["skip"].append({"id": check_id, "comment": reason})
    resource.add_metadata("checkov", metadata)


def acknowledge_iam5(scope: IConstruct, findings: dict[str, str]) -> None:
    for applies_to, reason in findings.items():
        acknowledge(scope, "AwsSolutions-IAM5", reason, applies_to)


def grant_action_findings(*, s3_actions: tuple[str, ...] = S3_ACTION_GROUPS) -> dict[str, str]:
    actions = [*s3_actions, *KMS_ACTION_GROUPS]
    return {f"Action::{action}": GRANT_REASON for action in actions}


def bucket_objects_finding(bucket: s3.IBucket, what: str) -> dict[str, str]:
    logical_id = Stack.of(bucket).get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
    return {
        f"Resource::<{logical_id}.Arn>/*": f"Objects of the {what} bucket, and only that bucket."
    }


def scoped_arn_finding(stack: Stack, service: str, path: str, what: str) -> dict[str, str]:
    """The finding for an ARN built with `stack.format_arn`, in cdk-nag's spelling: the
    account is a literal when the stage names one in cdk.json, a token otherwise."""
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    arn = f"arn:<AWS::Partition>:{service}:{stack.region}:{account}:{path}"
    return {f"Resource::{arn}": what}
