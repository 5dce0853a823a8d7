"""The predict route's answer, and the Open Inference Protocol v2 types (KServe's
"inference protocol v2", as Triton and MLServer speak it): one model of each, here."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PINNED = (
    "Every version runs under one SageMaker variant, so a pinned version is served only while"
    " it is the live version and no deployment (canary) is in progress; otherwise 409"
    " VersionNotLive, whose message names the live version. Also 409 when the model server"
    " that answered reports another version (a deployment raced the call)."
)


class Answer(BaseModel):
    """What the model server answered, and which version it says it is."""

    body: bytes
    content_type: str
    version: int | None
    custom_attributes: str | None


class PredictResponse(BaseModel):
    model: str
    version: int | None = Field(
        description="the version that answered, as its model server reports it"
        " (`maas-version=N` in the response's CustomAttributes)"
    )
    outputs: Any
    content_type: str
    request_id: str
    custom_attributes: str | None = Field(
        default=None,
        description="the model server's CustomAttributes, whole (they include maas-version)",
    )


class InferTensor(BaseModel):
    """An input or output tensor. Its values are in `data`, or, under Triton's binary tensor
    data extension, `parameters.binary_data_size` bytes after the JSON."""

    name: str = Field(min_length=1, max_length=128)
    shape: list[Annotated[int, Field(ge=0)]]
    datatype: str = Field(pattern=r"^(BOOL|U?INT(8|16|32|64)|FP(16|32|64)|BYTES)$")
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(default=None, max_length=256)
    parameters: dict[str, Any] | None = None
    inputs: list[InferTensor] = Field(min_length=1)
    outputs: list[RequestedOutput] | None = None


class InferenceResponse(BaseModel):
    """Sent without its unset fields: the protocol leaves out what it has no value for."""

    model_name: str
    model_version: str | None = None
    id: str
    parameters: dict[str, Any] | None = None
    outputs: list[InferTensor]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: Literal["pytorch"] = "pytorch"
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class Liveness(BaseModel):
    live: bool


class Readiness(BaseModel):
    ready: bool


class ModelReadiness(BaseModel):
    name: str
    ready: bool
