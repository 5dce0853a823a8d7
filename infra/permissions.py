"""What each Lambda may do: exactly the calls its handlers make, on this stage's resources
only. S3 is touched only to pin artifacts (registry and events, under pinned/). SageMaker
resources and CloudWatch alarms are reached through the `{RESOURCE_PREFIX}-` name prefix that
every maas-created resource carries. tests/infra/handler_calls.py scans handlers/ for the calls
and checks them against these."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns

from infra.artifact_store import ArtifactStore
from infra.nag import (
    acknowledge_iam5,
    grant_action_findings,
    scoped_arn_finding,
)
from infra.training_platform import TrainingPlatform, alarm_arns
from maas_contract import artifacts

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
# DELETE /v1/models/{model}/endpoint removes the endpoint configs and models of every
# deployment once the endpoint is gone (handlers/deployments/removal.py).
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html
REMOVE_ACTIONS = ("sagemaker:DeleteEndpointConfig", "sagemaker:DeleteModel")
TRAIN_ACTIONS = (
    "sagemaker:CreateTrainingJob",
    "sagemaker:DescribeTrainingJob",
    "sagemaker:StopTrainingJob",
    "sagemaker:AddTags",
)
# (actions, SageMaker resource kinds) per function; `meta` only serves openapi.json.
SAGEMAKER_ACCESS: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {
    # DescribeEndpoint: GET /v2/models/{model}/ready reports the endpoint's status.
    "predict": [(("sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"), ("endpoint",))],
    "deployments": [
        (DEPLOY_ACTIONS, ("model", "endpoint-config", "endpoint")),
        (REMOVE_ACTIONS, ("model", "endpoint-config")),
    ],
    "training_jobs": [(TRAIN_ACTIONS, ("training-job",))],
    "events": [
        (DEPLOY_ACTIONS, ("model", "endpoint-config", "endpoint")),
        (("sagemaker:DescribeTrainingJob",), ("training-job",)),
    ],
}
WRITERS = ("registry", "deployments", "training_jobs", "events")
# Registration pins each artifact (handlers/shared/artifacts.py): a caller's, or a job's output.
PINS_ARTIFACTS = ("registry", "events")
# Signs the presigned PUT URLs of POST /v1/models/{model}/uploads: the URL carries this role's
# authority, so the role may put objects under uploads/ (and, pinning, under pinned/) only.
SIGNS_UPLOADS = ("registry",)
PASSES_ROLE = ("deployments", "training_jobs", "events")
# Endpoints deployed through the API get the autoscaling and the rollback alarms that
# infra/model_endpoint.py gives declared ones; these functions create them.
SCALES_ENDPOINTS = ("deployments", "events")
# ...and this one deletes them, with the endpoint (DELETE /v1/models/{model}/endpoint).
REMOVES_ENDPOINTS = ("deployments",)
SAGEMAKER_SCALING = {
    "application-autoscaling:service-namespace": "sagemaker",
    "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount",
}
# The service-linked role RegisterScalableTarget creates on first use for SageMaker variants.
# https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-service-linked-roles.html
SCALING_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"
SCALING_ROLE = (
    f"aws-service-role/{SCALING_SERVICE}/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)


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
    alarm_topic: sns.ITopic,
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
        if group in SCALES_ENDPOINTS:
            findings.update(_grant_endpoint_scaling(function, stack, prefix, alarm_topic))
        if group in REMOVES_ENDPOINTS:
            # The endpoint's own rollback alarms, `{endpoint}-5xx` and `{endpoint}-p99-latency`,
            # all named {prefix}-...: the finding is _grant_endpoint_scaling's.
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["cloudwatch:DeleteAlarms"], resources=[alarm_arns(stack, prefix)]
                )
            )
        if group in PASSES_ROLE:
            # Only to SageMaker, not to any service that accepts a role.
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["iam:PassRole"],
                    resources=[platform.role.role_arn],
                    conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                )
            )
            # SageMaker encrypts volumes and outputs with the key through grants the caller makes.
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["kms:CreateGrant", "kms:DescribeKey"],
                    resources=[store.key.key_arn],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                )
            )
        if group in PINS_ARTIFACTS:
            findings.update(_grant_pinning(function, store))
        if group in SIGNS_UPLOADS:
            findings.update(_grant_uploads(function, store))
        if findings:
            acknowledge_iam5(function.role, findings)  # type: ignore[arg-type]
    pinners = [functions[g].role for g in PINS_ARTIFACTS if g in functions]
    _protect_pinned(store, [role.role_arn for role in pinners if role is not None])


# The OpenAI-compatible routes invoke the stage's endpoints, streamed or not. The runtime API
# says InvokeEndpointWithResponseStream is authorised as sagemaker:InvokeEndpoint
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpointWithResponseStream.html);
# the Service Authorization Reference also lists the streaming action, so both are granted.
STREAMING_INVOKE_ACTIONS = (
    "sagemaker:InvokeEndpoint",
    "sagemaker:InvokeEndpointWithResponseStream",
)
# Groups that read the token usage table: `meta` serves GET /v1/usage.
READS_TOKEN_USAGE = ("meta",)


def grant_streaming_permissions(
    functions: dict[str, lambda_.Function],
    *,
    table: dynamodb.ITable,
    usage_table: dynamodb.ITable,
    resource_prefix: str,
) -> None:
    """The openai function: invoke this stage's endpoints, read the registry (which model
    serves where), read and write the token counters. Nothing else."""
    for function in functions.values():
        stack = Stack.of(function)
        function.add_to_role_policy(
            iam.PolicyStatement(
                actions=list(STREAMING_INVOKE_ACTIONS),
                resources=sagemaker_arns(stack, resource_prefix, ("endpoint",)),
            )
        )
        table.grant_read_data(function)
        usage_table.grant_read_write_data(function)
        table_id = stack.get_logical_id(table.node.default_child)  # type: ignore[arg-type]
        acknowledge_iam5(
            function.role,  # type: ignore[arg-type]
            {
                f"Resource::<{table_id}.Arn>/index/*": (
                    "Queries the registry table's own secondary indexes; no other table is "
                    "reachable."
                ),
                **grant_action_findings(s3_actions=()),
                **scoped_arn_finding(
                    stack,
                    "sagemaker",
                    f"endpoint/{resource_prefix}-*",
                    f"Generation endpoints are deployed at run time, named {resource_prefix}-"
                    "...; the prefix keeps the function to this stage's own endpoints.",
                ),
            },
        )


def grant_usage_reads(functions: dict[str, lambda_.Function], usage_table: dynamodb.ITable) -> None:
    for group in READS_TOKEN_USAGE:
        if group in functions:
            usage_table.grant_read_data(functions[group])


def _grant_pinning(function: lambda_.Function, store: ArtifactStore) -> dict[str, str]:
    """Reads model archives (to copy them; HeadObject answers 404 for a missing key only with
    ListBucket) and models' signature files, and nothing else of the bucket; writes only
    under pinned/, and deletes only its own staging copies. KMS comes with the grants, as
    SSE-KMS needs (Decrypt to read, GenerateDataKey to write)."""
    bucket = store.artifacts
    signatures = f"*/{artifacts.SIGNATURE_FILE}"
    bucket.grant_read(function, f"*{artifacts.ARCHIVE_SUFFIX}")
    bucket.grant_read(function, signatures)
    bucket.grant_put(function, f"{artifacts.PROTECTED_PREFIX}*")
    bucket.grant_delete(function, f"{artifacts.STAGING_PREFIX}*")
    logical_id = Stack.of(bucket).get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
    return {
        **grant_action_findings(),
        f"Resource::<{logical_id}.Arn>/*{artifacts.ARCHIVE_SUFFIX}": (
            "Model archives anywhere in the artifact bucket: registration copies the one a "
            "caller names (CopyObject needs GetObject on its source); the function never "
            "downloads one."
        ),
        f"Resource::<{logical_id}.Arn>/{signatures}": (
            "Models' signature files (a few KiB of JSON beside each model.tar.gz, or in a "
            "job's checkpoint folder): the one object registration reads."
        ),
        f"Resource::<{logical_id}.Arn>/{artifacts.PROTECTED_PREFIX}*": (
            "The registry's own pinned/ prefix, where each artifact is copied under its SHA-256."
        ),
        f"Resource::<{logical_id}.Arn>/{artifacts.STAGING_PREFIX}*": (
            "The staging copies registration makes to learn an artifact's digest, and deletes."
        ),
    }


def _grant_uploads(function: lambda_.Function, store: ArtifactStore) -> dict[str, str]:
    bucket = store.artifacts
    bucket.grant_put(function, f"{artifacts.UPLOADS_PREFIX}*")
    logical_id = Stack.of(bucket).get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
    return {
        f"Resource::<{logical_id}.Arn>/{artifacts.UPLOADS_PREFIX}*": (
            "The uploads/ prefix: each presigned URL the function signs names one new key "
            "there (a random folder per upload), and the URL carries the role's authority."
        ),
    }


def _protect_pinned(store: ArtifactStore, writers: list[str]) -> None:
    """No principal but the pinning functions writes or deletes under pinned/: a pinned key
    must hold the bytes its name is the digest of, for as long as a version serves them."""
    store.artifacts.add_to_resource_policy(
        iam.PolicyStatement(
            sid="OnlyTheRegistryWritesPinnedArtifacts",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
            resources=[store.artifacts.arn_for_objects(f"{artifacts.PROTECTED_PREFIX}*")],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": writers}},
        )
    )


def _grant_endpoint_scaling(
    function: lambda_.Function, stack: Stack, prefix: str, alarm_topic: sns.ITopic
) -> dict[str, str]:
    """Autoscaling and rollback alarms for endpoints deployed at run time, each action as
    tightly as the Service Authorization Reference lets it be scoped:
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsapplicationautoscaling.html
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html
    Returns the cdk-nag IAM5 findings this causes, with their reasons."""
    targets = stack.format_arn(
        service="application-autoscaling", resource="scalable-target", resource_name="*"
    )
    statements = [
        # Scalable-target ARNs end in an id the service generates, so they cannot be named in
        # advance; the conditions keep the grant to SageMaker variant instance counts.
        iam.PolicyStatement(
            actions=[
                "application-autoscaling:DeregisterScalableTarget",
                "application-autoscaling:PutScalingPolicy",
                "application-autoscaling:RegisterScalableTarget",
            ],
            resources=[targets],
            conditions={"StringEquals": SAGEMAKER_SCALING},
        ),
        iam.PolicyStatement(
            actions=["application-autoscaling:DescribeScalableTargets"], resources=["*"]
        ),
        iam.PolicyStatement(
            actions=["cloudwatch:DescribeAlarms"], resources=[alarm_arns(stack, prefix)]
        ),
        # The alarms may notify the stage's alarm topic and nothing else.
        iam.PolicyStatement(
            actions=["cloudwatch:PutMetricAlarm"],
            resources=[alarm_arns(stack, prefix)],
            conditions={
                "ForAllValues:StringEquals": {"cloudwatch:AlarmActions": [alarm_topic.topic_arn]}
            },
        ),
        # Application Auto Scaling acts on the caller's authority when it registers a target
        # and creates a target-tracking policy, so the caller needs the target service's and
        # CloudWatch's actions too ("Permissions required for API actions on target services
        # and CloudWatch": https://docs.aws.amazon.com/autoscaling/application/userguide/
        # security_iam_id-based-policy-examples.html). Its alarms are named
        # TargetTracking-endpoint/<endpoint>/variant/<variant>-AlarmHigh-<id>.
        iam.PolicyStatement(
            actions=["sagemaker:UpdateEndpointWeightsAndCapacities"],
            resources=sagemaker_arns(stack, prefix, ("endpoint",)),
        ),
        iam.PolicyStatement(
            actions=[
                "cloudwatch:DeleteAlarms",
                "cloudwatch:DescribeAlarms",
                "cloudwatch:PutMetricAlarm",
            ],
            resources=[alarm_arns(stack, prefix, leading="TargetTracking-endpoint/")],
        ),
        iam.PolicyStatement(
            actions=["iam:CreateServiceLinkedRole"],
            resources=[
                stack.format_arn(
                    service="iam",
                    region="",
                    resource="role",
                    resource_name=SCALING_ROLE,
                    arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                )
            ],
            conditions={"StringEquals": {"iam:AWSServiceName": SCALING_SERVICE}},
        ),
    ]
    for statement in statements:
        function.add_to_role_policy(statement)
    return {
        **scoped_arn_finding(
            stack,
            "application-autoscaling",
            "scalable-target/*",
            "Scalable-target ARNs end in an id Application Auto Scaling generates; conditions "
            "hold the grant to the sagemaker namespace and variant instance counts.",
        ),
        **scoped_arn_finding(
            stack,
            "cloudwatch",
            f"alarm:{prefix}-*",
            f"The rollback alarms of endpoints deployed at run time, all named {prefix}-...; "
            "no other alarm is reachable.",
        ),
        **scoped_arn_finding(
            stack,
            "cloudwatch",
            f"alarm:TargetTracking-endpoint/{prefix}-*",
            "The alarms Application Auto Scaling makes for target tracking on this stage's "
            "endpoints; their names end in ids it generates.",
        ),
        "Resource::*": "xray:PutTraceSegments, xray:PutTelemetryRecords and "
        "application-autoscaling:DescribeScalableTargets have no resource-level permissions.",
    }
