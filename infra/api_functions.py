"""The Lambda functions: one per route group plus the SageMaker event handler, all from the
same handlers/ asset, on the latest Python runtime on arm64 with the Powertools public layer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import acknowledge, acknowledge_iam5, skip_checkov
from maas_contract.routes import handler_entry

RUNTIME = lambda_.Runtime.PYTHON_3_14
POWERTOOLS_ACCOUNT = "017000801446"


@dataclass(frozen=True)
class FunctionSizing:
    memory_mb: int
    timeout_s: int


# API Gateway gives up after 29 s, so every API function stops before that; the handlers'
# boto3 timeouts sit below these in turn (handlers/shared/aws.py: InvokeEndpoint's worst case is
# 27 s < predict's 28 s < API Gateway's 29 s). The event handler is not behind the API.
API_GATEWAY_TIMEOUT_S = 29
SIZING = {
    "predict": FunctionSizing(1024, 28),
    "registry": FunctionSizing(512, 28),  # pinning copies the artifact within S3
    "deployments": FunctionSizing(512, 20),
    "training_jobs": FunctionSizing(512, 20),
    "meta": FunctionSizing(256, 5),
    "events": FunctionSizing(512, 60),
}


# Groups whose cold start a caller waits on and which are restored from a snapshot of their
# initialised process (Lambda SnapStart) instead of importing afresh. API Gateway calls them
# through the `live` alias on the version published with each deploy. predict is the route
# clients call in bulk. Its before-snapshot hook (handlers/shared/resolver.py) creates its
# boto3 clients and builds its validators, so a restore starts warm; clients hold no open
# connection in the snapshot, and credentials come from the restored environment.
SNAPSTART_GROUPS = frozenset({"predict"})
LIVE_ALIAS = "live"


def powertools_layer_arn(region: str, version: int) -> str:
    runtime_tag = RUNTIME.name.replace(".", "")  # python3.14 -> python314
    return (
        f"arn:aws:lambda:{region}:{POWERTOOLS_ACCOUNT}:layer:"
        f"AWSLambdaPowertoolsPythonV3-{runtime_tag}-arm64:{version}"
    )


class ApiFunctions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code_dir: Path,
        powertools_layer_version: int,
        environment: dict[str, str],
        encryption_key: kms.IKey,
        event_dead_letters: sqs.IQueue,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        code = lambda_.Code.from_asset(str(code_dir))
        layer = lambda_.LayerVersion.from_layer_version_arn(
            self,
            "Powertools",
            powertools_layer_arn(Stack.of(self).region, powertools_layer_version),
        )
        # Shared with the streaming functions (infra/streaming_functions.py): one asset.
        self.code, self.powertools_layer = code, layer
        self.functions: dict[str, lambda_.Function] = {}
        for group, sizing in SIZING.items():
            log_group = logs.LogGroup(
                self,
                f"{group}-logs",
                retention=log_retention,
                encryption_key=encryption_key,
                removal_policy=removal_policy,
            )
            # Our own role instead of AWSLambdaBasicExecutionRole: logs only to this group.
            role = iam.Role(
                self, f"{group}-role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com")
            )
            log_group.grant_write(role)
            self.functions[group] = lambda_.Function(
                self,
                group,
                runtime=RUNTIME,
                architecture=lambda_.Architecture.ARM_64,
                code=code,
                handler=handler_entry(group),
                layers=[layer],
                memory_size=sizing.memory_mb,
                timeout=Duration.seconds(sizing.timeout_s),
                tracing=lambda_.Tracing.ACTIVE,
                log_group=log_group,
                role=role,
                logging_format=lambda_.LoggingFormat.JSON,
                environment={**environment, "POWERTOOLS_SERVICE_NAME": f"maas-{group}"},
                environment_encryption=encryption_key,
                # EventBridge invokes asynchronously; what fails after Lambda's own retries is kept.
                dead_letter_queue=event_dead_letters if group == "events" else None,
                snap_start=(
                    lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS
                    if group in SNAPSTART_GROUPS
                    else None
                ),
            )
            acknowledge_iam5(
                role,
                {
                    "Resource::*": "Active tracing: xray:PutTraceSegments and "
                    "xray:PutTelemetryRecords have no resource-level permissions."
                },
            )
            if group != "events":
                synchronous = (
                    "Invoked synchronously by API Gateway: a failure goes back to the "
                    "caller as an HTTP error, so no event is left to keep."
                )
                acknowledge(self.functions[group], "Serverless-LambdaDLQ", synchronous)
                skip_checkov(self.functions[group], "CKV_AWS_116", synchronous)
        self.events = self.functions["events"]
        # What API Gateway invokes per route group: the function, or the alias on its latest
        # published version where SnapStart is on (snapshots exist only for versions).
        self.route_groups: dict[str, lambda_.IFunction] = {
            g: lambda_.Alias(
                self, f"{g}-{LIVE_ALIAS}", alias_name=LIVE_ALIAS, version=f.current_version
            )
            if g in SNAPSTART_GROUPS
            else f
            for g, f in self.functions.items()
            if g != "events"
        }
