"""Request and response bodies of the registry, deployment and training routes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Recipe = Literal["image-cnn", "text-lstm", "text-transformer", "autoencoder"]
S3_URI = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\s]*)?$"
Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:/-]+$")]
# NaN and Infinity are valid Python JSON but no metric, threshold or hyperparameter.
Finite = Annotated[float, Field(allow_inf_nan=False)]
# AutoRollbackConfig takes at most 10 alarms, and every endpoint has two of its own.
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_AutoRollbackConfig.html
MAX_CALLER_ALARMS = 8


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TensorSpec(Strict):
    """One input or output, as Open Inference Protocol metadata describes it."""

    name: Name
    datatype: Datatype
    shape: list[Annotated[int, Field(ge=-1)]] = Field(description="-1 marks a variable dimension")


class InputSchema(Strict):
    inputs: list[TensorSpec] = Field(default_factory=list, max_length=32)
    outputs: list[TensorSpec] = Field(default_factory=list, max_length=32)


class VersionCreate(Strict):
    artifact_uri: str = Field(
        pattern=r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[^\s]+\.tar\.gz$",
        description="model.tar.gz in the artifact bucket",
    )
    recipe: Recipe
    version: int | None = Field(
        default=None, ge=1, le=99_999_999, description="Omit to take the next number"
    )
    metrics: dict[Name, Finite] = Field(default_factory=dict, max_length=50)
    input_schema: InputSchema = Field(default_factory=InputSchema)
    training_job: str | None = Field(default=None, max_length=63)
    description: str | None = Field(default=None, max_length=1024)


class VersionOut(BaseModel):
    model: str
    version: int
    artifact_uri: str
    recipe: str
    metrics: dict[str, float] = {}
    input_schema: InputSchema = InputSchema()
    training_job: str | None = None
    description: str | None = None
    created_at: str


class ModelOut(BaseModel):
    name: str
    endpoint_name: str
    latest_version: int
    live_version: int | None = None
    previous_version: int | None = None
    active_deployment: str | None = None
    live_deployment: str | None = None
    created_at: str
    updated_at: str


class ModelPage(BaseModel):
    items: list[ModelOut]
    next_token: str | None = None


class VersionPage(BaseModel):
    items: list[VersionOut]
    next_token: str | None = None


class DeploymentSpec(Strict):
    instance_type: str = Field(default="ml.m5.large", pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
    instance_count: int = Field(default=1, ge=1, le=20, description="instances at the start")
    min_instances: int = Field(default=1, ge=1, le=20, description="auto scaling's floor")
    max_instances: int | None = Field(
        default=None, ge=1, le=20, description="auto scaling's ceiling; default max(2, count)"
    )
    target_invocations_per_instance: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="target tracking on SageMakerVariantInvocationsPerInstance (per minute)",
    )
    canary_percent: int = Field(default=10, ge=1, le=50, description="CanarySize, % of capacity")
    canary_wait_seconds: int = Field(default=300, ge=0, le=3600)
    rollback_alarms: list[Annotated[str, Field(min_length=1, max_length=255)]] = Field(
        default_factory=list,
        max_length=MAX_CALLER_ALARMS,
        description=(
            "more CloudWatch alarms that roll the canary back, besides the endpoint's own"
            " `{endpoint}-5xx` and `{endpoint}-p99-latency`"
        ),
    )
    capture_percent: int = Field(default=20, ge=0, le=100, description="0 turns capture off")

    @model_validator(mode="after")
    def _scaling_bounds(self) -> DeploymentSpec:
        if self.max_instances is None:
            self.max_instances = max(2, self.instance_count)
        if not self.min_instances <= self.instance_count <= self.max_instances:
            raise ValueError("need min_instances <= instance_count <= max_instances")
        return self


class DeploymentCreate(DeploymentSpec):
    version: int = Field(ge=1)


class DeploymentOut(BaseModel):
    id: str
    model: str
    version: int
    previous_version: int | None = None
    kind: str
    status: Literal["InProgress", "Succeeded", "Failed", "RolledBack"]
    failure_reason: str | None = None
    endpoint_name: str
    endpoint_config_name: str | None = None
    created_at: str
    updated_at: str


class MetricThreshold(Strict):
    metric: Name = Field(description="a name from training/metric_definitions.json")
    value: Finite
    goal: Literal["maximize", "minimize"] = "maximize"


class Datasets(Strict):
    train: str = Field(pattern=S3_URI)
    validation: str | None = Field(default=None, pattern=S3_URI)


HyperValue = str | int | Finite | bool


class TrainingJobCreate(Strict):
    model: str = Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
    recipe: Recipe
    datasets: Datasets
    hyperparameters: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")], HyperValue] = (
        Field(default_factory=dict, max_length=50)
    )
    instance_type: str | None = Field(
        default=None,
        description="a GPU training instance; default: the stage's training_instance_type",
    )
    instance_count: int = Field(default=1, ge=1, le=16)
    volume_size_gb: int = Field(default=50, ge=1, le=1024)
    spot: bool = True
    max_runtime_seconds: int = Field(default=14_400, ge=60, le=432_000)
    max_wait_seconds: int | None = Field(
        default=None, ge=60, le=432_000, description="spot only; default twice max runtime"
    )
    metric_threshold: MetricThreshold | None = None
    auto_deploy: bool = False
    deployment: DeploymentSpec | None = None
    input_schema: InputSchema = Field(default_factory=InputSchema)

    @model_validator(mode="after")
    def _coherent(self) -> TrainingJobCreate:
        if self.auto_deploy and self.deployment is None:
            raise ValueError("auto_deploy needs a deployment block")
        if self.auto_deploy and self.metric_threshold is None:
            raise ValueError("auto_deploy needs a metric_threshold to gate the deployment")
        wait = self.max_wait_seconds
        if wait is not None and (not self.spot or wait < self.max_runtime_seconds):
            raise ValueError("max_wait_seconds applies to spot only and must be >= max runtime")
        return self


class TrainingJobOut(BaseModel):
    id: str
    model: str
    recipe: str
    status: str
    secondary_status: str | None = None
    failure_reason: str | None = None
    metrics: dict[str, float] = {}
    metric_threshold: MetricThreshold | None = None
    registered_version: int | None = None
    deployment_id: str | None = None
    outcome: str | None = None
    instance_type: str
    instance_count: int
    spot: bool
    created_at: str
    updated_at: str


class TrainingJobPage(BaseModel):
    items: list[TrainingJobOut]
    next_token: str | None = None
