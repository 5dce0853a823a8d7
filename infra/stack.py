"""The one stack: it builds each capability's construct and wires grants, events and outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.api_functions import ApiFunctions
from infra.artifact_store import ArtifactStore
from infra.client_auth import ClientAuth
from infra.config import StageConfig
from infra.front_door import FrontDoor
from infra.images import ContainerImages
from infra.model_endpoint import ModelEndpoint
from infra.model_registry import ModelRegistry
from infra.monitoring import Monitoring, alarm_topic
from infra.permissions import (
    grant_route_permissions,
    grant_streaming_permissions,
    grant_usage_reads,
)
from infra.streaming_functions import STREAM_MAX_S, StreamingFunctions
from infra.token_usage import TokenUsage
from infra.training_platform import TrainingPlatform
from infra.web_firewall import WebFirewall
from maas_contract.registry import key_schema
from maas_contract.routes import Route
from maas_contract.settings import HandlerSettings

LOG_RETENTION = {
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
}


@dataclass(frozen=True)
class Inputs:
    """What the stack reads from the rest of the repository, as files and folders only."""

    routes: list[Route]
    images: ContainerImages
    lambda_code_dir: Path
    sourcedir_archive: Path
    metric_definitions: Path
    powertools_layer_version: int
    # uvicorn and its dependencies, laid out as a layer (infra/server_layer.py).
    server_layer_dir: Path


class MaasStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, inputs: Inputs, **kwargs
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        retention = LOG_RETENTION[config.log_retention_days]
        store = ArtifactStore(
            self,
            "ArtifactStore",
            removal_policy=removal,
            capture_retention=Duration.days(config.capture_retention_days),
        )
        store.key.grant_encrypt_decrypt(iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com"))
        registry = ModelRegistry(
            self,
            "ModelRegistry",
            schema=key_schema(),
            encryption_key=store.key,
            deletion_protection=config.retain_data,
            removal_policy=removal,
        )
        usage = TokenUsage(
            self,
            "TokenUsage",
            encryption_key=store.key,
            deletion_protection=config.retain_data,
            removal_policy=removal,
        )
        platform = TrainingPlatform(
            self,
            "TrainingPlatform",
            store=store,
            resource_prefix=config.resource_prefix,
            images=inputs.images,
            sourcedir_archive=inputs.sourcedir_archive,
            metric_definitions_file=inputs.metric_definitions,
        )
        topic = alarm_topic(
            self,
            "AlarmTopic",
            resource_prefix=config.resource_prefix,
            encryption_key=store.key,
            alarm_email=config.alarm_email,
        )
        auth = ClientAuth(
            self,
            "ClientAuth",
            resource_prefix=config.resource_prefix,
            clients=config.clients,
            removal_policy=removal,
            deletion_protection=config.retain_data,
        )
        environment = self._handler_environment(
            config, store, registry, platform, topic, usage, auth
        )
        functions = ApiFunctions(
            self,
            "Functions",
            code_dir=inputs.lambda_code_dir,
            powertools_layer_version=inputs.powertools_layer_version,
            environment=environment,
            encryption_key=store.key,
            event_dead_letters=platform.dead_letters,
            log_retention=retention,
            removal_policy=removal,
        )
        grant_route_permissions(
            functions.functions,
            table=registry.table,
            store=store,
            platform=platform,
            alarm_topic=topic,
        )
        grant_usage_reads(functions.functions, usage.table)
        streaming = StreamingFunctions(
            self,
            "StreamingFunctions",
            code=functions.code,
            powertools_layer=functions.powertools_layer,
            server_layer_code=lambda_.Code.from_asset(str(inputs.server_layer_dir)),
            environment=environment,
            encryption_key=store.key,
            log_retention=retention,
            removal_policy=removal,
        )
        grant_streaming_permissions(
            streaming.functions,
            table=registry.table,
            usage_table=usage.table,
            resource_prefix=config.resource_prefix,
        )
        platform.send_state_changes_to(functions.events)
        for model in config.models:
            ModelEndpoint(
                self,
                f"Endpoint-{model.name}",
                model=model,
                store=store,
                platform=platform,
                alarms=config.alarms,
            )
        door = FrontDoor(
            self,
            "FrontDoor",
            stage_name=config.stage,
            resource_prefix=config.resource_prefix,
            stream_timeout=Duration.seconds(STREAM_MAX_S),
            routes=inputs.routes,
            functions={**functions.route_groups, **streaming.functions},
            auth=auth,
            clients=config.clients,
            rate_limit=config.stage_rate_limit,
            burst_limit=config.stage_burst_limit,
            encryption_key=store.key,
            log_retention=retention,
            removal_policy=removal,
        )
        WebFirewall(
            self,
            "WebFirewall",
            resource_prefix=config.resource_prefix,
            protected_arn=door.api.deployment_stage.stage_arn,
            requests_per_5min_per_ip=config.waf_requests_per_5min_per_ip,
            log_retention=retention,
            encryption_key=store.key,
            removal_policy=removal,
        )
        Monitoring(
            self,
            "Monitoring",
            resource_prefix=config.resource_prefix,
            api=door.api,
            topic=topic,
            thresholds=config.alarms,
            dead_letters=platform.dead_letters,
            streaming_functions=streaming.functions,
        )
        self._outputs(door, auth)

    @staticmethod
    def _handler_environment(
        config: StageConfig,
        store: ArtifactStore,
        registry: ModelRegistry,
        platform: TrainingPlatform,
        topic: sns.ITopic,
        usage: TokenUsage,
        auth: ClientAuth,
    ) -> dict[str, str]:
        return HandlerSettings(
            registry_table=registry.table.table_name,
            resource_prefix=config.resource_prefix,
            artifact_bucket=store.artifacts.bucket_name,
            data_bucket=store.data.bucket_name,
            capture_bucket=store.capture.bucket_name,
            kms_key_arn=store.key.key_arn,
            sagemaker_role_arn=platform.role.role_arn,
            training_image_uri=platform.images.training,
            inference_image_uri=platform.images.inference,
            inference_image_uri_cpu=platform.images.inference_cpu,
            generation_image_uri=platform.images.generation,
            token_usage_table=usage.table.table_name,
            token_quotas=token_quotas(config, auth),
            source_dir_s3_uri=platform.sourcedir.s3_object_url,
            training_instance_type=config.training_instance_type,
            metric_definitions=tuple(platform.metric_definitions),
            model_5xx_per_min=config.alarms.model_5xx_per_min,
            model_p99_latency_ms=config.alarms.model_p99_latency_ms,
            alarm_topic_arn=topic.topic_arn,
        ).to_env()

    def _outputs(self, door: FrontDoor, auth: ClientAuth) -> None:
        CfnOutput(self, "ApiUrl", value=door.api.url, description="base URL of the API")
        CfnOutput(
            self,
            "TokenUrl",
            value=auth.token_url,
            description="OAuth2 token endpoint (client_credentials)",
        )
        for name, client in auth.app_clients.items():
            CfnOutput(
                self,
                f"ClientId{_camel(name)}",
                value=client.user_pool_client_id,
                description=f"app client id of {name}; its secret is in the Cognito console",
            )
        for name, key in door.api_keys.items():
            CfnOutput(
                self,
                f"ApiKeyId{_camel(name)}",
                value=key.key_id,
                description=f"API key id of {name}: aws apigateway get-api-key --include-value",
            )


def token_quotas(config: StageConfig, auth: ClientAuth) -> str:
    """TOKEN_QUOTAS: each client's token budget, keyed by its Cognito app client id (what the
    access token's `client_id` claim carries), as JSON with the ids left as CDK tokens for
    CloudFormation to fill in."""
    quotas = {
        auth.app_clients[client.name].user_pool_client_id: {
            "name": client.name,
            "tokens_per_minute": client.tokens_per_minute,
            "tokens_per_day": client.tokens_per_day,
        }
        for client in config.clients
    }
    return Stack.of(auth).to_json_string(quotas)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))
