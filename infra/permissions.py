"""What each Lambda may do: exactly the calls its handlers make (handlers/ never touches S3 or
CloudWatch alarms directly), on this stage's resources only. SageMaker resources are reached
through the `{RESOURCE_PREFIX}-` name prefix that every maas-created resource carries."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

from infra.artifact_store import ArtifactStore
from infra.nag import acknowledge_iam5, grant_action_findings, scoped_arn_finding
from infra.training_platform import TrainingPlatform

DEPLOY_ACTIONS = (
    "sagemaker:CreateModel",
    "sagemaker:DescribeModel",
    "sagemaker:CreateEndpointConfig",
    "sagemaker:DescribeEndpointConfig",
    "sagemaker:CreateEndpoint",
    "sagemaker:UpdateEndpoint",
    "sagemaker:DescribeEndpoint",
    "sagemaker:DeleteEndpoint",
    "sagemaker:AddTags",
)
TRAIN_ACTIONS = (
    "sagemaker:CreateTrainingJob",
    "sagemaker:DescribeTrainingJob",
    "sagemaker:StopTrainingJob",
    "sagemaker:AddTags",
)
# (actions, SageMaker resource kinds) per function; `meta` only serves openapi.json.
SAGEMAKER_ACCESS: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "predict": [(("sagemaker:InvokeEndpoint",), ("endpoint",))],
    "deployments": [(DEPLOY_ACTIONS, ("model", "endpoint-config", "endpoint"))],
    "training_jobs": [(TRAIN_ACTIONS, ("training-job",))],
    "events": [
        (DEPLOY_ACTIONS, ("model", "endpoint-config", "endpoint")),
        (("sagemaker:DescribeTrainingJob",), ("training-job",)),
    ],
}
WRITERS = ("registry", "deployments", "training_jobs", "events")
PASSES_ROLE = ("deployments", "training_jobs", "events")


def sagemaker_arns(stack: Stack, prefix: str, kinds: tuple[str, ...]) -> list[str]:
    return [
        stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{prefix}-*")
        for kind in kinds
    ]


def grant_route_permissions(
    functions: dict[str, lambda_.Function],
    *,
    table: dynamodb.ITable,
    store: ArtifactStore,
    platform: TrainingPlatform,
) -> None:
    stack, prefix = Stack.of(platform), platform.resource_prefix
    table_id = stack.get_logical_id(table.node.default_child)  # type: ignore[arg-type]
    table_findings = {
        f"Resource::<{table_id}.Arn>/index/*": (
            "Queries the registry table's own secondary indexes; no other table is reachable."
        ),
        **grant_action_findings(s3_actions=()),
    }
    for group, function in functions.items():
        findings: dict[str, str] = {}
        if group in WRITERS:
            table.grant_read_write_data(function)
            # Conditional transactions check items without writing them.
            table.grant(function, "dynamodb:ConditionCheckItem")
        elif group == "predict":
            table.grant_read_data(function)
        if group != "meta":
            findings.update(table_findings)
        for actions, kinds in SAGEMAKER_ACCESS.get(group, []):
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=sorted(actions), resources=sagemaker_arns(stack, prefix, kinds)
                )
            )
            for kind in kinds:
                findings.update(
                    scoped_arn_finding(
                        stack,
                        "sagemaker",
                        f"{kind}/{prefix}-*",
                        f"SageMaker {kind}s are created at run time, named {prefix}-...; "
                        "the prefix keeps the function to this stage's own resources.",
                    )
                )
        if group in PASSES_ROLE:
            platform.role.grant_pass_role(function.grant_principal)
            # SageMaker encrypts volumes and outputs with the key through grants the caller makes.
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["kms:CreateGrant", "kms:DescribeKey"],
                    resources=[store.key.key_arn],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                )
            )
        if findings:
            acknowledge_iam5(function.role, findings)  # type: ignore[arg-type]
