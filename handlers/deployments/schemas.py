"""Request and response bodies of the deployment routes, and the settings a deployment keeps."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from handlers.shared.errors import bad_request, public_reason
from handlers.shared.schemas import Strict, Version

# AutoRollbackConfig takes at most 10 alarms, and every endpoint has two of its own.
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_AutoRollbackConfig.html
MAX_CALLER_ALARMS = 8
Status = Literal["InProgress", "Succeeded", "Failed", "RolledBack"]


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
    batching: bool = Field(
        default=True,
        description=(
            "serve batches through code/inference.py's `handle` (TorchServe's handler); turn"
            " off for an artifact whose inference.py has no `handle`"
        ),
    )

    @model_validator(mode="after")
    def _scaling_bounds(self) -> DeploymentSpec:
        if self.max_instances is None:
            self.max_instances = max(2, self.instance_count)
        if not self.min_instances <= self.instance_count <= self.max_instances:
            raise ValueError("need min_instances <= instance_count <= max_instances")
        return self

    @property
    def ceiling(self) -> int:
        """max_instances, always set once validated."""
        return self.max_instances or max(2, self.instance_count)

    @classmethod
    def stored(cls, raw: dict[str, Any]) -> DeploymentSpec:
        """A spec as the registry keeps it, with every default filled in, older ones too."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:  # a spec stored under older, looser rules
            raise bad_request(f"the deployment settings are not valid now: {exc}") from exc


class DeploymentCreate(DeploymentSpec):
    version: Version


class DeploymentOut(BaseModel):
    id: str
    model: str
    version: int
    previous_version: int | None = None
    kind: str
    status: Status
    failure_reason: str | None = None
    endpoint_name: str
    endpoint_config_name: str | None = None
    created_at: str
    updated_at: str

    @field_validator("failure_reason")
    @classmethod
    def _no_host_paths(cls, reason: str | None) -> str | None:
        return public_reason(reason)


class EndpointRemovalOut(BaseModel):
    model: str
    endpoint_name: str
    status: Literal["Deleting", "Deleted"] = Field(
        description=(
            "Deleted once SageMaker has no endpoint and every model and endpoint config the"
            " model's deployments created is gone; until then Deleting: repeat the request"
        )
    )
    pending_cleanup: int = Field(
        description="deployments whose SageMaker model and endpoint config are still to delete"
    )
