"""The SageMaker events the events handler reads, and what it did about one.

Only names and a claimed status are read from an event: AWS's documented training event
carries neither the final metrics nor the failure reason, and anything that may put events on
the bus could forge the rest. https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class SageMakerEvent(BaseModel):
    """EventBridge's envelope."""

    model_config = ConfigDict(populate_by_name=True)
    source: str = ""
    detail_type: str = Field(default="", alias="detail-type")
    detail: dict[str, Any] | None = None


class TrainingJobChange(BaseModel):
    job_name: str = Field(default="", alias="TrainingJobName")
    status: str = Field(default="", alias="TrainingJobStatus")


class EndpointChange(BaseModel):
    endpoint_name: str = Field(default="", alias="EndpointName")


class AutoDeployment(BaseModel):
    """The deployment a completed job started, or why it could not."""

    deployment_id: str | None = None
    deployment_error: str | None = None


class Outcome(BaseModel):
    action: Literal["ignored", "progress", "recorded", "replay", "completed", "closed"]
    status: str | None = None
    reason: str | None = None
    deployment: AutoDeployment | None = None
