"""The functions of the streaming route groups (maas_contract.routes.STREAMING_GROUPS): each is
an ASGI app (`handlers/<group>/app.py`) served by uvicorn under the AWS Lambda Web Adapter in
response-stream mode, from the same handlers asset as the other functions, on the same runtime
and architecture, with the Powertools layer, the adapter's layer and the server layer.

The adapter's layer is AWS-published (account 753240598075), one ARN per architecture:
`arn:aws:lambda:${AWS::Region}:753240598075:layer:LambdaAdapterLayerArm64:<version>`. Version 26
carries adapter 1.0.0, its first GA release (README, "Zip Packages", and CHANGELOG v1.0.0 of
awslabs/aws-lambda-web-adapter). Its settings, all AWS_LWA_-prefixed since 1.0:
https://awslabs.github.io/aws-lambda-web-adapter/getting-started/zip-packages.html
https://awslabs.github.io/aws-lambda-web-adapter/configuration/response-streaming.html
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.api_functions import RUNTIME
from infra.nag import acknowledge, acknowledge_iam5, skip_checkov
from infra.server_layer import SERVER_PORT, startup_handler

ADAPTER_ACCOUNT = "753240598075"
ADAPTER_LAYER_VERSION = 26
ADAPTER_RELEASE = "1.0.0"


@dataclass(frozen=True)
class StreamingSizing:
    memory_mb: int
    timeout_s: int


# API Gateway streams a response for at most 15 minutes, and an integration that streams may
# be given up to that long ("Stream the integration response for your proxy integrations":
# https://docs.aws.amazon.com/apigateway/latest/developerguide/response-transfer-mode.html).
# The function stops 10 s sooner, so it, not the gateway, ends an over-long stream. A stream
# must also send a byte every 5 minutes on a regional endpoint (the idle timeout), which a
# token stream does. 512 MB: uvicorn, boto3 and pydantic, no model.
STREAM_MAX_S = 900
STREAMING_SIZING = {"openai": StreamingSizing(memory_mb=512, timeout_s=STREAM_MAX_S - 10)}


def adapter_layer_arn(region: str, version: int = ADAPTER_LAYER_VERSION) -> str:
    return f"arn:aws:lambda:{region}:{ADAPTER_ACCOUNT}:layer:LambdaAdapterLayerArm64:{version}"


def adapter_environment(port: int = SERVER_PORT) -> dict[str, str]:
    """The adapter's settings: /opt/bootstrap (from its layer) wraps the runtime and starts
    the handler script; invokes are streamed back as the app writes them."""
    return {
        "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
        "AWS_LWA_INVOKE_MODE": "response_stream",
        "AWS_LWA_PORT": str(port),
    }


class StreamingFunctions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        code: lambda_.Code,
        powertools_layer: lambda_.ILayerVersion,
        server_layer_code: lambda_.Code,
        environment: dict[str, str],
        encryption_key: kms.IKey,
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        adapter = lambda_.LayerVersion.from_layer_version_arn(
            self, "WebAdapter", adapter_layer_arn(Stack.of(self).region)
        )
        self.server_layer = lambda_.LayerVersion(
            self,
            "AsgiServer",
            code=server_layer_code,
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description="uvicorn and its pure-Python dependencies, for the streaming functions",
        )
        self.functions: dict[str, lambda_.Function] = {}
        for group, sizing in STREAMING_SIZING.items():
            log_group = logs.LogGroup(
                self,
                f"{group}-logs",
                retention=log_retention,
                encryption_key=encryption_key,
                removal_policy=removal_policy,
            )
            role = iam.Role(
                self, f"{group}-role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com")
            )
            log_group.grant_write(role)
            function = lambda_.Function(
                self,
                group,
                runtime=RUNTIME,
                architecture=lambda_.Architecture.ARM_64,
                code=code,
                handler=startup_handler(group),
                layers=[powertools_layer, self.server_layer, adapter],
                memory_size=sizing.memory_mb,
                timeout=Duration.seconds(sizing.timeout_s),
                tracing=lambda_.Tracing.ACTIVE,
                log_group=log_group,
                role=role,
                logging_format=lambda_.LoggingFormat.JSON,
                environment={
                    **environment,
                    **adapter_environment(),
                    "POWERTOOLS_SERVICE_NAME": f"maas-{group}",
                },
                environment_encryption=encryption_key,
            )
            acknowledge_iam5(
                role,
                {
                    "Resource::*": "Active tracing: xray:PutTraceSegments and "
                    "xray:PutTelemetryRecords have no resource-level permissions."
                },
            )
            synchronous = (
                "Invoked synchronously by API Gateway with a streamed response: a failure "
                "goes back to the caller on the open stream, so no event is left to keep."
            )
            acknowledge(function, "Serverless-LambdaDLQ", synchronous)
            skip_checkov(function, "CKV_AWS_116", synchronous)
            self.functions[group] = function
