"""Starts SageMaker training jobs with every guardrail DESIGN.md asks for."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from handlers import aws, store
from handlers.config import SageMakerSettings, Settings, region, training_instance_type
from handlers.errors import bad_request, from_control_plane
from maas_contract.sagemaker import SAGEMAKER_NAME_MAX, is_gpu, volume_kms_allowed

CODE_CHANNEL = "code"
CHECKPOINT_DIR = "/opt/ml/checkpoints"
TERMINAL = {"Completed", "Failed", "Stopped"}


def job_key(job_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": store.JOB_SK}}


def job_name(prefix: str, model: str) -> str:
    suffix = f"{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(2)}"
    name = f"{prefix}-{model}-{suffix}"
    if len(name) > SAGEMAKER_NAME_MAX:
        raise bad_request(f"training job name {name} is longer than {SAGEMAKER_NAME_MAX}")
    return name


def metric_definitions(sm: SageMakerSettings) -> list[dict[str, str]]:
    definitions = json.loads(sm.metric_definitions)
    return [{"Name": d["Name"], "Regex": d["Regex"]} for d in definitions]


def _dataset(uri: str, sm: SageMakerSettings) -> str:
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


def hyperparameters(spec: dict[str, Any], sm: SageMakerSettings) -> dict[str, str]:
    """User values first, then the script-mode keys, which the caller cannot override.

    Strings pass as they are and everything else as JSON, as the SageMaker Python SDK does;
    the training toolkit decodes them back into SM_HPS and argv.
    """
    values: dict[str, str] = {
        k: v if isinstance(v, str) else json.dumps(v) for k, v in spec["hyperparameters"].items()
    }
    # With network isolation the container cannot reach S3, so the source tarball arrives
    # as the "code" input channel (as the SDK does) instead of a download from S3.
    source_file = sm.source_dir_s3_uri.rsplit("/", 1)[-1]
    values.update(
        {
            "recipe": spec["recipe"],
            "sagemaker_program": "train.py",
            "sagemaker_submit_directory": f"/opt/ml/input/data/{CODE_CHANNEL}/{source_file}",
            "sagemaker_container_log_level": "20",
            "sagemaker_region": region(),
        }
    )
    if spec["instance_count"] > 1:
        values["sagemaker_torch_distributed_enabled"] = "true"
    return values


def _require_gpu(instance_type: str) -> None:
    """NVIDIA GPU training instances only: the recipes are written for CUDA."""
    try:
        gpu = is_gpu(instance_type)
    except ValueError:
        gpu = False
    if not gpu:
        raise bad_request(f"instance_type {instance_type} is not a GPU training instance")


def resource_config(spec: dict[str, Any], sm: SageMakerSettings) -> dict[str, Any]:
    """ResourceConfig; the volume key only where SageMaker takes one. Instance types with
    local NVMe storage refuse it ("You can't request a VolumeKmsKeyId when using an instance
    type with local storage"); their storage is encrypted by the hardware."""
    config: dict[str, Any] = {
        "InstanceType": spec["instance_type"],
        "InstanceCount": spec["instance_count"],
        "VolumeSizeInGB": spec["volume_size_gb"],
    }
    if volume_kms_allowed([spec["instance_type"]]):
        config["VolumeKmsKeyId"] = sm.kms_key_arn
    return config


def create_request(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    sm = SageMakerSettings.from_env()
    _require_gpu(spec["instance_type"])
    channels = [_channel("train", _dataset(spec["datasets"]["train"], sm))]
    if spec["datasets"].get("validation"):
        channels.append(_channel("validation", _dataset(spec["datasets"]["validation"], sm)))
    channels.append(_channel(CODE_CHANNEL, sm.source_dir_s3_uri))
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": spec["max_runtime_seconds"]}
    if spec["spot"]:
        stopping["MaxWaitTimeInSeconds"] = spec.get("max_wait_seconds") or min(
            2 * spec["max_runtime_seconds"], 432_000
        )
    return {
        "TrainingJobName": name,
        "RoleArn": sm.role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": sm.training_image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": metric_definitions(sm),
            "EnableSageMakerMetricsTimeSeries": True,
        },
        "HyperParameters": hyperparameters(spec, sm),
        "InputDataConfig": channels,
        "OutputDataConfig": {
            "S3OutputPath": f"s3://{sm.artifact_bucket}/training/{spec['model']}",
            "KmsKeyId": sm.kms_key_arn,
        },
        "ResourceConfig": resource_config(spec, sm),
        "StoppingCondition": stopping,
        "EnableNetworkIsolation": True,
        "EnableInterContainerTrafficEncryption": spec["instance_count"] > 1,
        "EnableManagedSpotTraining": spec["spot"],
        "CheckpointConfig": {
            "S3Uri": f"s3://{sm.artifact_bucket}/checkpoints/{spec['model']}/{name}",
            "LocalPath": CHECKPOINT_DIR,
        },
        "Tags": [{"Key": "maas:model", "Value": spec["model"]}],
    }


def _check_threshold_metric(spec: dict[str, Any]) -> None:
    threshold = spec.get("metric_threshold")
    if not threshold:
        return
    known = {d["Name"] for d in metric_definitions(SageMakerSettings.from_env())}
    if threshold["metric"] not in known:
        raise bad_request(f"metric {threshold['metric']} is not one of {sorted(known)}")


def start(spec: dict[str, Any]) -> dict[str, Any]:
    """Records the job, then starts it; a refused start is recorded with SageMaker's reason."""
    _check_threshold_metric(spec)
    spec = {**spec, "instance_type": spec.get("instance_type") or training_instance_type()}
    name = job_name(Settings.from_env().resource_prefix, spec["model"])
    request = create_request(name, spec)
    now = store.now_iso()
    job = {
        "id": name,
        "model": spec["model"],
        "recipe": spec["recipe"],
        "status": "InProgress",
        "instance_type": spec["instance_type"],
        "instance_count": spec["instance_count"],
        "spot": spec["spot"],
        "metric_threshold": spec.get("metric_threshold"),
        "auto_deploy": spec["auto_deploy"],
        "deployment": spec.get("deployment"),
        "input_schema": spec.get("input_schema"),
        "created_at": now,
        "updated_at": now,
        "gsi1pk": "JOB",
        "gsi1sk": f"{now}#{name}",
    }
    aws.dynamodb().put_item(
        TableName=store.table(),
        Item={**job_key(name), **store.serialize(job)},
        ConditionExpression="attribute_not_exists(pk)",
    )
    try:
        aws.sagemaker().create_training_job(**request)
    except ClientError as exc:
        error = from_control_plane(exc)
        store.update(job_key(name), {"status": "Failed", "failure_reason": error.message})
        raise error from exc
    job.pop("gsi1pk")
    job.pop("gsi1sk")
    return job
