"""A model's endpoint on SageMaker: CreateModel -> CreateEndpointConfig -> CreateEndpoint or
UpdateEndpoint (a blue/green canary that the endpoint's alarms roll back), and what runs on it.

Every version runs under the one variant name `VARIANT_NAME`: blue/green and rolling updates
need the new config to keep the old config's variant name ("Exclusions",
https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html). The
version lives in the registry, the config name, the `maas:version` tags and the model
container's environment (`MODEL_VERSION_ENV`), whose server reports it in CustomAttributes.

A text-generation version runs on the Large Model Inference container (GENERATION_IMAGE_URI,
DJL Serving with vLLM rolling batch) with the environment maas_contract.generation gives it,
from the same pinned `model.tar.gz` as every other version: ModelDataUrl names "a single gzip
compressed tar archive", which SageMaker extracts to /opt/ml/model, and LMI serves the Hugging
Face folder it finds there when no HF_MODEL_ID names another
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ContainerDefinition.html,
https://docs.djl.ai/docs/serving/serving/docs/lmi/deployment_guide/model-artifacts.html). The
uncompressed alternative, ModelDataSource with an S3 prefix
(https://docs.aws.amazon.com/sagemaker/latest/dg/large-model-inference-uncompressed.html), saves
the extraction for models of many GB; the registry pins archives, and train.py's models are
small, so the archive it is. vLLM runs on CUDA only: a generation version needs a GPU instance
type, and takes `GENERATION_INSTANCE_TYPE` when the request names none. Canary, rollback
alarms, data capture and autoscaling take the same path as for every other model.
"""

from __future__ import annotations

from typing import Any, Literal

from botocore.exceptions import ClientError

from handlers.deployments.schemas import DeploymentSpec
from handlers.registry.schemas import ModelOut, VersionOut
from handlers.shared import alarms, autoscaling, aws, registry_table
from handlers.shared.errors import aws_error_code, bad_request, conflict
from maas_contract import generation
from maas_contract.sagemaker import (
    MODEL_VERSION_ENV,
    VARIANT_NAME,
    batched_serving_environment,
    is_gpu,
    volume_kms_allowed,
)
from maas_contract.settings import HandlerSettings, MisconfiguredError

GENERATION_RECIPE = "text-generation"
# One NVIDIA A10G (24 GiB): room for the recipe's models and vLLM's KV cache.
GENERATION_INSTANCE_TYPE = "ml.g5.xlarge"

_BUSY = {
    "Creating",
    "Updating",
    "SystemUpdating",
    "RollingBack",
    "Deleting",
    "UpdateRollbackFailed",
}


def tags(model: str, version: int) -> list[dict[str, str]]:
    return [{"Key": "maas:model", "Value": model}, {"Key": "maas:version", "Value": str(version)}]


def scaling(spec: DeploymentSpec) -> autoscaling.Scaling:
    return autoscaling.Scaling(
        min_instances=spec.min_instances,
        max_instances=spec.ceiling,
        target_invocations_per_instance=float(spec.target_invocations_per_instance),
    )


def live_spec(model: ModelOut) -> DeploymentSpec | None:
    """The settings of the deployment that made the model's live version live, if any."""
    live_id = model.live_deployment
    live = registry_table.get_deployment(model.name, live_id) if live_id else None
    return DeploymentSpec.stored(live["spec"]) if live and live.get("spec") else None


def describe(endpoint: str) -> dict[str, Any] | None:
    """DescribeEndpoint's answer, or None when the endpoint does not exist."""
    try:
        return dict(aws.sagemaker().describe_endpoint(EndpointName=endpoint))
    except ClientError as exc:
        if aws_error_code(exc) == "ValidationException" and "not find" in str(exc).lower():
            return None
        raise


def spec_for(version: VersionOut, spec: DeploymentSpec) -> DeploymentSpec:
    """The spec a version deploys with: a generation version takes a GPU instance type when
    the request names none, and is refused (400) on a CPU one."""
    if version.recipe != GENERATION_RECIPE:
        return spec
    if "instance_type" not in spec.model_fields_set:
        spec = spec.model_copy(update={"instance_type": GENERATION_INSTANCE_TYPE})
    if not is_gpu(spec.instance_type):
        raise bad_request(
            f"version {version.version} of {version.model} is a {GENERATION_RECIPE} model, "
            f"served by vLLM on CUDA: choose a GPU instance type such as "
            f"{GENERATION_INSTANCE_TYPE}, not {spec.instance_type}"
        )
    return spec


def container(
    sm: HandlerSettings, version: VersionOut, instance_type: str, batching: bool
) -> dict[str, Any]:
    """CreateModel's PrimaryContainer for the version on this instance type."""
    # The pinned copy: new instances re-read it on every scale-out, and it never changes.
    model_data = version.pinned_uri or version.artifact_uri
    if version.recipe == GENERATION_RECIPE:
        if not sm.generation_image_uri:
            raise MisconfiguredError("environment variable GENERATION_IMAGE_URI is not set")
        return {
            "Image": sm.generation_image_uri,
            "ModelDataUrl": model_data,
            "Environment": {
                **generation.container_environment(),
                MODEL_VERSION_ENV: str(version.version),
            },
        }
    return {
        "Image": sm.inference_image(instance_type),
        "ModelDataUrl": model_data,
        "Environment": {
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            "SAGEMAKER_REGION": aws.region(),
            MODEL_VERSION_ENV: str(version.version),
            # TorchServe hands code/inference.py's `handle` whole batches.
            **(batched_serving_environment() if batching else {}),
        },
    }


def _create_model(
    sm: HandlerSettings, name: str, version: VersionOut, instance_type: str, batching: bool
) -> None:
    aws.sagemaker().create_model(
        ModelName=name,
        ExecutionRoleArn=sm.sagemaker_role_arn,
        EnableNetworkIsolation=True,
        PrimaryContainer=container(sm, version, instance_type, batching),
        Tags=tags(version.model, version.version),
    )


def _create_config(sm: HandlerSettings, deployment: dict[str, Any], spec: DeploymentSpec) -> None:
    model, version = deployment["model"], deployment["version"]
    params: dict[str, Any] = {
        "EndpointConfigName": deployment["endpoint_config_name"],
        "ProductionVariants": [
            {
                "VariantName": VARIANT_NAME,
                "ModelName": deployment["sagemaker_model"],
                "InstanceType": spec.instance_type,
                "InitialInstanceCount": spec.instance_count,
                "InitialVariantWeight": 1.0,
            }
        ],
        "Tags": tags(model, version),
    }
    # SageMaker refuses a KmsKeyId for instance types with local (NVMe) storage.
    if volume_kms_allowed([spec.instance_type]):
        params["KmsKeyId"] = sm.kms_key_arn
    if spec.capture_percent > 0:
        params["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": spec.capture_percent,
            "DestinationS3Uri": f"s3://{sm.capture_bucket}/{model}",
            "KmsKeyId": sm.kms_key_arn,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
        }
    aws.sagemaker().create_endpoint_config(**params)


def deployment_config(spec: DeploymentSpec, own_alarms: list[str]) -> dict[str, Any]:
    """Blue/green canary; the endpoint's own alarms, then the caller's, roll it back."""
    names = list(dict.fromkeys([*own_alarms, *spec.rollback_alarms]))
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": spec.canary_percent},
                "WaitIntervalInSeconds": spec.canary_wait_seconds,
            },
            "TerminationWaitInSeconds": 300,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in names]},
    }


def _live_instance_type(config_name: str | None) -> str | None:
    if not config_name:
        return None
    config = aws.sagemaker().describe_endpoint_config(EndpointConfigName=config_name)
    for variant in config.get("ProductionVariants") or []:
        if variant.get("VariantName") == VARIANT_NAME:
            return str(variant.get("InstanceType"))
    return None


def _release_scaling_for(endpoint: str, current: dict[str, Any], spec: DeploymentSpec) -> bool:
    """UpdateEndpoint fails when it changes the instance type of a scalable target, so such
    an update first deregisters the variant (the events handler registers it again)."""
    if _live_instance_type(current.get("EndpointConfigName")) == spec.instance_type:
        return False
    return autoscaling.release(endpoint)


def _update(
    model: ModelOut, endpoint: str, current: dict, config_name: str, spec: DeploymentSpec
) -> None:
    own_alarms = alarms.ensure(endpoint)
    released = _release_scaling_for(endpoint, current, spec)
    try:
        aws.sagemaker().update_endpoint(
            EndpointName=endpoint,
            EndpointConfigName=config_name,
            RetainAllVariantProperties=False,
            DeploymentConfig=deployment_config(spec, own_alarms),
        )
    except ClientError:
        previous = live_spec(model) if released else None
        if previous is not None:  # the live fleet keeps serving: give it its scaling back
            autoscaling.apply(endpoint, scaling(previous))
        raise


def roll_out(
    model: ModelOut, version: VersionOut, deployment: dict[str, Any], spec: DeploymentSpec
) -> Literal["create", "update"]:
    """Creates the SageMaker resources of a deployment and starts it on the endpoint."""
    sm = HandlerSettings.from_env()
    endpoint = deployment["endpoint_name"]
    current = describe(endpoint)
    if current is not None and current.get("EndpointStatus") in _BUSY:
        raise conflict(f"endpoint {endpoint} is {current['EndpointStatus']}", retry_after=60)
    if current is not None and current.get("EndpointStatus") == "Failed":
        autoscaling.release(endpoint)
        aws.sagemaker().delete_endpoint(EndpointName=endpoint)
        raise conflict(f"endpoint {endpoint} had failed and is being deleted", retry_after=60)
    _create_model(sm, deployment["sagemaker_model"], version, spec.instance_type, spec.batching)
    _create_config(sm, deployment, spec)
    if current is not None:
        _update(model, endpoint, current, deployment["endpoint_config_name"], spec)
        return "update"
    alarms.ensure(endpoint)  # watching from the start; they roll back the next update
    aws.sagemaker().create_endpoint(
        EndpointName=endpoint,
        EndpointConfigName=deployment["endpoint_config_name"],
        Tags=tags(model.name, version.version),
    )
    return "create"
