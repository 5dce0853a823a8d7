"""Our own template checks for what cdk-nag does not cover. Each takes a synthesised template
(the JSON dict) and returns the offending logical IDs or statements; empty means compliant."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from maas_contract.sagemaker import volume_kms_allowed

WILDCARD_ALLOW_LIST = Path(__file__).with_name("wildcard_resources.json")
_SERVICE_WILDCARD = re.compile(r"^[a-z0-9-]+:\*$")


def _resources(template: dict, kind: str) -> Iterator[tuple[str, dict]]:
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") == kind:
            yield logical_id, resource.get("Properties", {})


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def iam_statements(template: dict) -> Iterator[tuple[str, dict]]:
    """Allow statements of identity policies: AWS::IAM::Policy, ::ManagedPolicy and inline
    role policies. Resource policies (KMS key, bucket, queue) are not identity grants."""
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for logical_id, props in _resources(template, kind):
            for statement in props.get("PolicyDocument", {}).get("Statement", []):
                yield logical_id, statement
    for logical_id, props in _resources(template, "AWS::IAM::Role"):
        for policy in props.get("Policies", []):
            for statement in policy.get("PolicyDocument", {}).get("Statement", []):
                yield logical_id, statement


def endpoint_config_kms_violations(template: dict) -> list[str]:
    """Endpoint configs whose volume key breaks SageMaker's rule: KmsKeyId must be set when
    every variant's instance type takes a volume key, and must be absent when any has local
    storage ("the call to CreateEndpointConfig fails").
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html"""
    found = []
    for logical_id, props in _resources(template, "AWS::SageMaker::EndpointConfig"):
        variants = props.get("ProductionVariants", [])
        types = [v["InstanceType"] for v in variants if "InstanceType" in v]
        allowed = bool(types) and volume_kms_allowed(types)
        if allowed != bool(props.get("KmsKeyId")):
            found.append(logical_id)
    return found


def models_without_network_isolation(template: dict) -> list[str]:
    return [
        i
        for i, p in _resources(template, "AWS::SageMaker::Model")
        if p.get("EnableNetworkIsolation") is not True
    ]


def wildcard_actions(template: dict) -> list[str]:
    found = []
    for logical_id, statement in iam_statements(template):
        for action in _as_list(statement.get("Action", [])):
            if isinstance(action, str) and (action == "*" or _SERVICE_WILDCARD.match(action)):
                found.append(f"{logical_id}: {action}")
    return found


def unlisted_wildcard_resources(
    template: dict, allow_list: dict[str, str] | None = None
) -> list[str]:
    allowed = allow_list if allow_list is not None else json.loads(WILDCARD_ALLOW_LIST.read_text())
    found = []
    for logical_id, statement in iam_statements(template):
        if statement.get("Effect") == "Allow" and "*" in _as_list(statement.get("Resource", [])):
            found += [
                f"{logical_id}: {a}"
                for a in _as_list(statement.get("Action", []))
                if a not in allowed
            ]
    return found


def flatten_arn(value: Any) -> str:
    """Renders a template ARN (a string or an Fn::Join of strings and Refs) as one string."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(flatten_arn(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    return json.dumps(value)


def training_job_scope_violations(template: dict, resource_prefix: str) -> list[str]:
    """Statements that allow sagemaker:CreateTrainingJob on anything but our prefix."""
    ours = re.compile(
        r"^arn:(aws|<AWS::Partition>):sagemaker:[a-z0-9-]+:(\d{12}|<AWS::AccountId>)"
        rf":training-job/{re.escape(resource_prefix)}-\*$"
    )
    found = []
    for logical_id, statement in iam_statements(template):
        actions = _as_list(statement.get("Action", []))
        if statement.get("Effect") != "Allow" or not any(
            a in ("sagemaker:CreateTrainingJob", "sagemaker:*", "*") for a in actions
        ):
            continue
        for resource in _as_list(statement.get("Resource", [])):
            if not ours.match(flatten_arn(resource)):
                found.append(f"{logical_id}: {flatten_arn(resource)}")
    return found


def pass_role_without_service(template: dict) -> list[str]:
    """Statements that allow iam:PassRole without an iam:PassedToService condition, so the
    role could be handed to any service that accepts one.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_iam-condition-keys.html#ck_PassedToService"""
    found = []
    for logical_id, statement in iam_statements(template):
        actions = _as_list(statement.get("Action", []))
        if statement.get("Effect") != "Allow" or not any(
            a in ("iam:PassRole", "iam:*", "*") for a in actions
        ):
            continue
        conditions = statement.get("Condition", {})
        if not any("iam:PassedToService" in keys for keys in conditions.values()):
            found.append(logical_id)
    return found
