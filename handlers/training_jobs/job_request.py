"""The CreateTrainingJob request, with every guardrail DESIGN.md asks for: a GPU instance,
managed spot with a wait limit, checkpoints, KMS, network isolation and metric definitions."""

from __future__ import annotations

import json
from typing import Any

from handlers.shared import aws
from handlers.shared.errors import bad_request
from handlers.training_jobs.schemas import MAX_RUNTIME_S, TrainingJobCreate
from maas_contract.sagemaker import is_gpu, volume_kms_allowed
from maas_contract.settings import HandlerSettings

CODE_CHANNEL = "code"
CHECKPOINT_DIR = "/opt/ml/checkpoints"


def _dataset(uri: str, sm: HandlerSettings) -> str:
    if not uri.startswith(f"s3://{sm.data_bucket}/") or ".." in uri:
        raise bad_request(f"dataset {uri} must be under s3://{sm.data_bucket}/")
    return uri


def _channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
    }


def hyperparameters(spec: TrainingJobCreate, sm: HandlerSettings) -> dict[str, str]:
    """User values first, then the script-mode keys, which the caller cannot override.

    Strings pass as they are and everything else as JSON, as the SageMaker Python SDK does;
    the training toolkit decodes them back into SM_HPS and argv.
    """
    values: dict[str, str] = {
        k: v if isinstance(v, str) else json.dumps(v) for k, v in spec.hyperparameters.items()
    }
    # With network isolation the container cannot reach S3, so the source tarball arrives
    # as the "code" input channel (as the SDK does) instead of a download from S3.
    source_file = sm.source_dir_s3_uri.rsplit("/", 1)[-1]
    values.update(
        {
            "recipe": spec.recipe,
            "sagemaker_program": "train.py",
            "sagemaker_submit_directory": f"/opt/ml/input/data/{CODE_CHANNEL}/{source_file}",
            "sagemaker_container_log_level": "20",
            "sagemaker_region": aws.region(),
        }
    )
    if spec.instance_count > 1:
        values["sagemaker_torch_distributed_enabled"] = "true"
    return values


def require_gpu(instance_type: str) -> None:
    """NVIDIA GPU training instances only: the recipes are written for CUDA."""
    try:
        gpu = is_gpu(instance_type)
    except ValueError:
        gpu = False
    if not gpu:
        raise bad_request(f"instance_type {instance_type} is not a GPU training instance")


def resource_config(spec: TrainingJobCreate, instance_type: str, sm: HandlerSettings) -> dict:
    """ResourceConfig; the volume key only where SageMaker takes one. Instance types with
    local NVMe storage refuse it ("You can't request a VolumeKmsKeyId when using an instance
    type with local storage"); their storage is encrypted by the hardware."""
    config: dict[str, Any] = {
        "InstanceType": instance_type,
        "InstanceCount": spec.instance_count,
        "VolumeSizeInGB": spec.volume_size_gb,
    }
    if volume_kms_allowed([instance_type]):
        config["VolumeKmsKeyId"] = sm.kms_key_arn
    return config


def create_request(
    name: str, spec: TrainingJobCreate, instance_type: str, sm: HandlerSettings
) -> dict[str, Any]:
    """CreateTrainingJob's parameters for job `name`, run on `instance_type`."""
    require_gpu(instance_type)
    channels = [_channel("train", _dataset(spec.datasets.train, sm))]
    if spec.datasets.validation:
        channels.append(_channel("validation", _dataset(spec.datasets.validation, sm)))
    if spec.datasets.pretrained:
        channels.append(_channel("pretrained", _dataset(spec.datasets.pretrained, sm)))
    channels.append(_channel(CODE_CHANNEL, sm.source_dir_s3_uri))
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": spec.max_runtime_seconds}
    if spec.spot:
        stopping["MaxWaitTimeInSeconds"] = spec.max_wait_seconds or min(
            2 * spec.max_runtime_seconds, MAX_RUNTIME_S
        )
    return {
        "TrainingJobName": name,
        "RoleArn": sm.sagemaker_role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": sm.training_image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": [dict(d) for d in sm.metric_definitions],
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "HyperParameters": hyperparameters(spec, sm),
        "InputDataConfig": channels,
        "OutputDataConfig": {
            "S3OutputPath": f"s3://{sm.artifact_bucket}/training/{spec.model}",
            "KmsKeyId": sm.kms_key_arn,
        },
        "ResourceConfig": resource_config(spec, instance_type, sm),
        "StoppingCondition": stopping,
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": spec.instance_count > 1,
        "EnableManagedSpotTraining": spec.spot,
        "CheckpointConfig": {
            "S3Uri": f"s3://{sm.artifact_bucket}/checkpoints/{spec.model}/{name}",
            "LocalPath": CHECKPOINT_DIR,
        },
        "Tags": [{"Key": "maas:model", "Value": spec.model}],
    }
