"""One real-time SageMaker endpoint for a model declared in config. Bumping the declared
version replaces the Model and EndpointConfig, and CloudFormation's endpoint update then runs
a blue/green canary that rolls back by itself when the 5xx or p99-latency alarm fires.

Every version serves under the one variant name `VARIANT_NAME`: blue/green and rolling
deployments need the new endpoint config to keep the old config's variant names.
https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html
The version lives in the Model's name, its container environment and the tags instead.
"""

from __future__ import annotations

import hashlib
import json

from aws_cdk import CfnTag, Duration
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.artifact_store import ArtifactStore
from infra.config import Alarms, DeclaredModel
from infra.training_platform import TrainingPlatform
from maas_contract.alarms import NAMESPACE, PERIOD_S, rollback_alarms
from maas_contract.names import endpoint_name, model_name
from maas_contract.sagemaker import (
    MODEL_VERSION_ENV,
    VARIANT_NAME,
    batched_serving_environment,
    volume_kms_allowed,
)


class ModelEndpoint(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model: DeclaredModel,
        store: ArtifactStore,
        platform: TrainingPlatform,
        alarms: Alarms,
    ) -> None:
        super().__init__(scope, construct_id)
        prefix = platform.resource_prefix
        self.endpoint_name = endpoint_name(prefix, model.name)
        image = platform.images.inference_for(model.instance_type)
        artifact = model.artifact_key
        environment = {
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            MODEL_VERSION_ENV: str(model.version),
            # TorchServe hands code/inference.py's `handle` whole batches.
            **(batched_serving_environment() if model.batching else {}),
        }
        # The Model's name changes with anything that makes CloudFormation replace it: a
        # custom-named resource cannot be replaced under the same name.
        served = f"{image}|{artifact}|{json.dumps(environment, sort_keys=True)}"
        fingerprint = hashlib.sha256(served.encode()).hexdigest()[:6]
        tags = [
            CfnTag(key="maas:model", value=model.name),
            CfnTag(key="maas:version", value=str(model.version)),
        ]
        self.model = sagemaker.CfnModel(
            self,
            "Model",
            model_name=model_name(prefix, model.name, model.version, fingerprint),
            tags=tags,
            execution_role_arn=platform.role.role_arn,
            enable_network_isolation=True,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image,
                model_data_url=store.artifacts.s3_url_for_object(artifact),
                environment=environment,
            ),
        )
        self.model.node.add_dependency(platform.role)
        self.config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            # SageMaker refuses a volume key on instance types with local (NVMe) storage:
            # "If you specify a value for KmsKeyId when using any nitro-based instances with
            # local storage, the call to CreateEndpointConfig fails."
            # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html
            kms_key_id=(store.key.key_arn if volume_kms_allowed([model.instance_type]) else None),
            tags=tags,
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    model_name=self.model.attr_model_name,
                    instance_type=model.instance_type,
                    initial_instance_count=model.initial_instance_count,
                    initial_variant_weight=1.0,
                )
            ],
            data_capture_config=sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
                enable_capture=True,
                initial_sampling_percentage=model.capture_percent,
                destination_s3_uri=store.capture.s3_url_for_object(model.name),
                kms_key_id=store.key.key_arn,
                capture_options=[
                    sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=mode)
                    for mode in ("Input", "Output")
                ],
            ),
        )
        self.rollback_alarms = self._alarms(alarms)
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=self.config.attr_endpoint_config_name,
            deployment_config=self._canary(model),
        )
        self._scale(model)

    def _alarms(self, alarms: Alarms) -> list[cw.Alarm]:
        """The contract's rollback alarms, as CloudWatch alarms of this stack."""
        defined = rollback_alarms(
            self.endpoint_name,
            model_5xx_per_min=alarms.model_5xx_per_min,
            model_p99_latency_ms=alarms.model_p99_latency_ms,
        )
        return [
            cw.Alarm(
                self,
                construct_id,
                alarm_name=alarm.name,
                alarm_description=alarm.description,
                metric=cw.Metric(
                    namespace=NAMESPACE,
                    metric_name=alarm.metric,
                    dimensions_map=alarm.dimensions,
                    statistic=alarm.statistic,
                    period=Duration.seconds(PERIOD_S),
                ),
                threshold=alarm.threshold,
                evaluation_periods=alarm.evaluation_periods,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            for construct_id, alarm in zip(("ErrorsAlarm", "LatencyAlarm"), defined, strict=True)
        ]

    def _canary(self, model: DeclaredModel) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
        routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
            type="CANARY",
            canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                type="CAPACITY_PERCENT", value=model.canary_percent
            ),
            wait_interval_in_seconds=model.canary_wait_s,
        )
        return sagemaker.CfnEndpoint.DeploymentConfigProperty(
            blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=routing,
                termination_wait_in_seconds=120,
                maximum_execution_timeout_in_seconds=max(1800, 2 * model.canary_wait_s + 900),
            ),
            auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                alarms=[
                    sagemaker.CfnEndpoint.AlarmProperty(alarm_name=a.alarm_name)
                    for a in self.rollback_alarms
                ]
            ),
        )

    def _scale(self, model: DeclaredModel) -> None:
        self.scalable_target = autoscaling.ScalableTarget(
            self,
            "ScalableTarget",
            service_namespace=autoscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint_name}/variant/{VARIANT_NAME}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=model.min_instances,
            max_capacity=model.max_instances,
        )
        self.scalable_target.node.add_dependency(self.endpoint)
        self.scalable_target.scale_to_track_metric(
            "InvocationsPerInstance",
            predefined_metric=autoscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            target_value=model.target_invocations_per_instance,
            scale_in_cooldown=Duration.seconds(model.scale_in_cooldown_s),
            scale_out_cooldown=Duration.seconds(model.scale_out_cooldown_s),
        )
