"""Settings the handlers read from the environment (see docs/interfaces.md).

Read on use, not at import, so that one process (tests, the local stack) can point the
handlers at different tables and buckets without re-importing them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from maas_contract.sagemaker import is_gpu

MODEL_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$"
MAX_BODY_BYTES = 6_291_456  # SageMaker's real-time InvokeEndpoint payload limit (6 MiB)


class MisconfiguredError(RuntimeError):
    """A required environment variable is missing: a deployment fault, never the caller's."""


def _require(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise MisconfiguredError(f"environment variable {name} is not set")
    return value


@dataclass(frozen=True)
class Settings:
    registry_table: str
    resource_prefix: str

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            registry_table=_require("REGISTRY_TABLE"),
            resource_prefix=os.environ.get("RESOURCE_PREFIX", "maas"),
        )

    def endpoint_name(self, model: str) -> str:
        return f"{self.resource_prefix}-{model}"


@dataclass(frozen=True)
class SageMakerSettings:
    """What the control-plane routes (deployments, training jobs) need on top of Settings."""

    artifact_bucket: str
    data_bucket: str
    capture_bucket: str
    kms_key_arn: str
    role_arn: str
    training_image_uri: str
    inference_image_uri: str
    inference_image_uri_cpu: str
    source_dir_s3_uri: str
    metric_definitions: str

    @classmethod
    def from_env(cls) -> SageMakerSettings:
        return cls(
            artifact_bucket=_require("ARTIFACT_BUCKET"),
            data_bucket=_require("DATA_BUCKET"),
            capture_bucket=_require("CAPTURE_BUCKET"),
            kms_key_arn=_require("KMS_KEY_ARN"),
            role_arn=_require("SAGEMAKER_ROLE_ARN"),
            training_image_uri=_require("TRAINING_IMAGE_URI"),
            inference_image_uri=_require("INFERENCE_IMAGE_URI"),
            inference_image_uri_cpu=_require("INFERENCE_IMAGE_URI_CPU"),
            source_dir_s3_uri=_require("SOURCE_DIR_S3_URI"),
            metric_definitions=os.environ.get("METRIC_DEFINITIONS", "[]"),
        )

    def inference_image(self, instance_type: str) -> str:
        """The GPU image on GPU instances; on CPU ones the CUDA image would not start."""
        return self.inference_image_uri if is_gpu(instance_type) else self.inference_image_uri_cpu


def training_instance_type() -> str:
    """The stage's training instance type (cdk.json `training_instance_type`)."""
    return _require("TRAINING_INSTANCE_TYPE")


def _positive_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise MisconfiguredError(f"environment variable {name} is not a number") from None
    if value <= 0:
        raise MisconfiguredError(f"environment variable {name} must be positive")
    return value


@dataclass(frozen=True)
class AlarmThresholds:
    """The thresholds of each endpoint's own rollback alarms (cdk.json `alarms`)."""

    model_5xx_per_min: float
    model_p99_latency_ms: float

    @classmethod
    def from_env(cls) -> AlarmThresholds:
        return cls(
            model_5xx_per_min=_positive_number("MODEL_5XX_PER_MIN", 1),
            model_p99_latency_ms=_positive_number("MODEL_P99_LATENCY_MS", 1000),
        )


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
