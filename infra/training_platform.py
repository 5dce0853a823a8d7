"""What SageMaker needs to train and serve: the execution role, the Deep Learning Container
images, the training code asset, the metric definitions, and the state-change event rules."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import ArnFormat, Aws, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.artifact_store import ArtifactStore
from infra.images import ContainerImages
from infra.nag import (
    acknowledge,
    acknowledge_iam5,
    bucket_objects_finding,
    grant_action_findings,
    scoped_arn_finding,
)
from maas_contract.events import ENDPOINT_STATE_CHANGE, SOURCE, TRAINING_JOB_STATE_CHANGE


def alarm_arns(stack: Stack, resource_prefix: str, *, leading: str = "") -> str:
    """Every CloudWatch alarm of this stage: all are named `{resource_prefix}-...`. With
    `leading`, those named `{leading}{resource_prefix}-...`, such as the target-tracking alarms
    Application Auto Scaling makes (`TargetTracking-endpoint/{resource_prefix}-...`)."""
    return stack.format_arn(
        service="cloudwatch",
        resource="alarm",
        resource_name=f"{leading}{resource_prefix}-*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


class TrainingPlatform(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        store: ArtifactStore,
        resource_prefix: str,
        images: ContainerImages,
        sourcedir_archive: Path,
        metric_definitions_file: Path,
    ) -> None:
        super().__init__(scope, construct_id)
        self.resource_prefix = resource_prefix
        self.images = images
        self.metric_definitions = json.loads(metric_definitions_file.read_text())
        self.sourcedir = s3_assets.Asset(self, "SourceDir", path=str(sourcedir_archive))
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description=f"SageMaker execution role for {resource_prefix} jobs and endpoints",
        )
        store.data.grant_read(self.role)
        store.artifacts.grant_read_write(self.role)
        store.capture.grant_write(self.role)
        self._grant_code_channel()
        self._grant_volume_key(store)
        self._grant_rollback_alarms()
        self._grant_runtime_basics()
        acknowledge_iam5(
            self.role,
            {
                **grant_action_findings(),
                **bucket_objects_finding(store.data, "training data"),
                **bucket_objects_finding(store.artifacts, "model artifacts and checkpoints"),
                **bucket_objects_finding(store.capture, "endpoint data capture"),
                "Resource::*": "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no "
                "resource-level permissions; PutMetricData is held to the "
                "/aws/sagemaker/* namespaces by a condition.",
                **scoped_arn_finding(
                    Stack.of(self),
                    "cloudwatch",
                    f"alarm:{resource_prefix}-*",
                    "Deployment guardrails read the rollback alarms of this stage's endpoints, "
                    f"all named {resource_prefix}-...; no other alarm is readable.",
                ),
                **scoped_arn_finding(
                    Stack.of(self),
                    "logs",
                    "log-group:/aws/sagemaker/*",
                    "SageMaker names its job and endpoint log groups itself, "
                    "under /aws/sagemaker/; nothing else is writable.",
                ),
            },
        )
        self.dead_letters = sqs.Queue(
            self,
            "StateChangeDeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=store.key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            self.dead_letters,
            "Serverless-SQSRedrivePolicy",
            "This queue is the dead-letter queue of the state-change targets and of the "
            "event handler; there is no further queue to redrive into.",
        )
        store.key.grant_encrypt_decrypt(iam.ServicePrincipal("events.amazonaws.com"))

    def _grant_code_channel(self) -> None:
        """The `code` channel is an S3Prefix channel on the CDK asset bucket: SageMaker lists
        the prefix, then downloads what it found. The role may list that one key and read
        that one object, not the rest of the asset bucket.
        https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_S3DataSource.html
        https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html (s3:ListBucket)
        https://docs.aws.amazon.com/AmazonS3/latest/userguide/amazon-s3-policy-keys.html"""
        bucket_arn = f"arn:{Aws.PARTITION}:s3:::{self.sourcedir.s3_bucket_name}"
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject"],
                resources=[f"{bucket_arn}/{self.sourcedir.s3_object_key}"],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket_arn],
                conditions={"StringEquals": {"s3:prefix": self.sourcedir.s3_object_key}},
            )
        )

    def _grant_volume_key(self, store: ArtifactStore) -> None:
        """SageMaker encrypts the EBS volumes and outputs of jobs and endpoints with the stage
        key through grants it creates as this role, where a volume key is allowed at all.
        https://docs.aws.amazon.com/sagemaker/latest/dg/api-permissions-reference.html
        https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-grant-is-for-aws-resource"""
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:CreateGrant"],
                resources=[store.key.key_arn],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )

    def _grant_rollback_alarms(self) -> None:
        """Deployment guardrails: "Ensure that your IAM execution role has permission to
        perform the cloudwatch:DescribeAlarms action on the auto-rollback alarms you specify."
        DescribeAlarms takes alarm ARNs (Service Authorization Reference, CloudWatch).
        https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html
        https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html"""
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:DescribeAlarms"],
                resources=[alarm_arns(Stack.of(self), self.resource_prefix)],
            )
        )

    def _grant_runtime_basics(self) -> None:
        stack = Stack.of(self)
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchCheckLayerAvailability",
                ],
                resources=self.images.repository_arns(),
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"])
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "logs:DescribeLogStreams",
                ],
                resources=[
                    stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws/sagemaker/*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )

    def send_state_changes_to(self, handler: lambda_.IFunction) -> list[events.Rule]:
        """Routes SageMaker training-job and endpoint state changes for our prefix to `handler`;
        events that still fail after retries land in the dead-letter queue."""
        prefix = [{"prefix": f"{self.resource_prefix}-"}]
        patterns = {
            "TrainingJobStateChange": (TRAINING_JOB_STATE_CHANGE, {"TrainingJobName": prefix}),
            "EndpointStateChange": (ENDPOINT_STATE_CHANGE, {"EndpointName": prefix}),
        }
        rules = []
        for rule_id, (detail_type, detail) in patterns.items():
            rule = events.Rule(
                self,
                rule_id,
                event_pattern=events.EventPattern(
                    source=[SOURCE], detail_type=[detail_type], detail=detail
                ),
            )
            rule.add_target(
                targets.LambdaFunction(
                    handler,
                    dead_letter_queue=self.dead_letters,
                    retry_attempts=8,
                    max_event_age=Duration.hours(6),
                )
            )
            rules.append(rule)
        return rules
