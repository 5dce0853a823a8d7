"""Request and response bodies of the training-job routes."""

from __future__ import annotations

from typing import Annotated, Literal

import botocore.session
from pydantic import BaseModel, BeforeValidator, Field, field_validator, model_validator

from handlers.deployments.schemas import DeploymentSpec
from handlers.registry.schemas import InputSchema
from handlers.shared.errors import public_reason
from handlers.shared.schemas import (
    INTEGER_MAX,
    WHITESPACE,
    Finite,
    Integer,
    ModelName,
    Name,
    Recipe,
    Strict,
)
from maas_contract.sagemaker import is_gpu

S3_URI = rf"^s3://[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9](/[^{WHITESPACE}]*)?$"
# SageMaker's CreateTrainingJob takes at most 100 hyperparameters, each value at most 2,500
# characters (botocore's model of HyperParameters); the route adds up to seven of its own.
HYPERPARAMETER_VALUE_MAX = 2500
# The GPU instance types CreateTrainingJob takes (botocore's TrainingInstanceType enum), declared
# so that a type the document allows is one the route and SageMaker accept.
GPU_TRAINING_INSTANCE_TYPES = tuple(
    t
    for t in botocore.session.get_session()
    .get_service_model("sagemaker")
    .shape_for("TrainingInstanceType")
    .enum
    if t.startswith("ml.") and is_gpu(t)
)


def _whole_integer(value: object) -> object:
    # Without this, an integer past 38 digits would pass as a float and lose its digits.
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INTEGER_MAX:
        raise ValueError("an integer hyperparameter has at most 38 digits; send it as text")
    return value


HyperValue = Annotated[
    Annotated[str, Field(max_length=HYPERPARAMETER_VALUE_MAX)] | Integer | Finite | bool,
    BeforeValidator(_whole_integer),
]
# train.py's options that name a path or a channel, and the recipe the route sets: a caller who
# could set them could train on a folder of the host or write outside the job's directories.
# SageMaker's own script-mode keys (sagemaker_*) are the route's alone too.
RESERVED_HYPERPARAMETERS = frozenset(
    {
        "recipe",
        "train",
        "validation",
        "model-dir",
        "model_dir",
        "output-data-dir",
        "output_data_dir",
        "checkpoint-dir",
        "checkpoint_dir",
        "pretrained-path",
        "pretrained_path",
    }
)
MAX_RUNTIME_S = 432_000  # five days: the longest runtime and spot wait a job may ask for


class MetricThreshold(Strict):
    metric: Name = Field(description="a name from training/metric_definitions.json")
    value: Finite
    goal: Literal["maximize", "minimize"] = "maximize"


class Datasets(Strict):
    train: str = Field(pattern=S3_URI)
    validation: str | None = Field(default=None, pattern=S3_URI)
    pretrained: str | None = Field(
        default=None,
        pattern=S3_URI,
        description="text-generation only: an S3 prefix holding a Hugging Face causal LM folder"
        " to fine-tune (the `pretrained` channel, train.py's --pretrained-path); with"
        " hyperparameter lora-r > 0, LoRA trains adapters on it.",
    )


class TrainingJobCreate(Strict):
    model: ModelName
    recipe: Recipe
    datasets: Datasets
    hyperparameters: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")], HyperValue] = (
        Field(
            default_factory=dict,
            max_length=50,
            description="train.py's options, as SageMaker passes them; not these, which the "
            "platform sets: " + ", ".join(sorted(RESERVED_HYPERPARAMETERS)) + ", sagemaker_*",
        )
    )
    instance_type: str | None = Field(
        default=None,
        description="a GPU training instance; default: the stage's training_instance_type",
        json_schema_extra={"enum": [*GPU_TRAINING_INSTANCE_TYPES, None]},
    )
    instance_count: int = Field(default=1, ge=1, le=16)
    volume_size_gb: int = Field(default=50, ge=1, le=1024)
    spot: bool = True
    max_runtime_seconds: int = Field(default=14_400, ge=60, le=MAX_RUNTIME_S)
    max_wait_seconds: int | None = Field(
        default=None, ge=60, le=MAX_RUNTIME_S, description="spot only; default twice max runtime"
    )
    metric_threshold: MetricThreshold | None = None
    auto_deploy: bool = False
    deployment: DeploymentSpec | None = None
    input_schema: InputSchema = Field(default_factory=InputSchema)

    @field_validator("instance_type")
    @classmethod
    def _gpu_training_type(cls, value: str | None) -> str | None:
        if value is not None and value not in GPU_TRAINING_INSTANCE_TYPES:
            raise ValueError(f"{value} is not a GPU instance type that SageMaker trains on")
        return value

    @field_validator("hyperparameters")
    @classmethod
    def _not_reserved(cls, values: dict[str, HyperValue]) -> dict[str, HyperValue]:
        for key in values:
            if key in RESERVED_HYPERPARAMETERS or key.startswith(("sagemaker_", "sagemaker-")):
                raise ValueError(
                    f"hyperparameter {key!r} is set by the platform: the paths, channels, "
                    "recipe and sagemaker_* keys of a job are not the caller's to choose"
                )
        return values

    @model_validator(mode="after")
    def _coherent(self) -> TrainingJobCreate:
        if self.auto_deploy and self.deployment is None:
            raise ValueError("auto_deploy needs a deployment block")
        if self.auto_deploy and self.metric_threshold is None:
            raise ValueError("auto_deploy needs a metric_threshold to gate the deployment")
        if self.datasets.pretrained is not None and self.recipe != "text-generation":
            raise ValueError("datasets.pretrained is for the text-generation recipe only")
        lora = self.hyperparameters.get("lora-r", self.hyperparameters.get("lora_r", 0))
        if lora not in (0, "0", False) and self.datasets.pretrained is None:
            raise ValueError("hyperparameter lora-r needs datasets.pretrained, the model it adapts")
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
    hyperparameters: dict[str, bool | int | float | str] = Field(
        default_factory=dict,
        description="as the request gave them (the recipe's defaults fill the rest)",
    )
    registered_version: int | None = None
    deployment_id: str | None = None
    outcome: str | None = None
    instance_type: str
    instance_count: int
    spot: bool
    created_at: str
    updated_at: str

    @field_validator("failure_reason")
    @classmethod
    def _no_host_paths(cls, reason: str | None) -> str | None:
        return public_reason(reason)


class TrainingJobPage(BaseModel):
    items: list[TrainingJobOut]
    next_token: str | None = None
