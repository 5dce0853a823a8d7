"""Request and response bodies of the registry routes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from handlers.shared.schemas import WHITESPACE, Finite, Name, Recipe, Strict, Version

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


# The Open Inference Protocol's shape is int64, but a JSON number past 2**53 is not exact in
# the clients that read this document (JavaScript, schemathesis): the bound is the largest
# integer JSON carries exactly.
SHAPE_MAX = 2**53 - 1


class TensorSpec(Strict):
    """One input or output, as Open Inference Protocol metadata describes it."""

    name: Name
    datatype: Datatype
    shape: list[Annotated[int, Field(ge=-1, le=SHAPE_MAX)]] = Field(
        max_length=32, description="-1 marks a variable dimension"
    )


class InputSchema(Strict):
    """A model's signature: the tensors it takes and answers, and the names of its labels in
    class order. Training writes it as signature.json beside model.tar.gz; registration reads
    that file when the request names no inputs or outputs of its own."""

    inputs: list[TensorSpec] = Field(default_factory=list, max_length=32)
    outputs: list[TensorSpec] = Field(default_factory=list, max_length=32)
    labels: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list,
        max_length=1000,
        description="the label a prediction names for each class, in class order",
    )


class VersionCreate(Strict):
    artifact_uri: str = Field(
        pattern=rf"^s3://[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9]/[^{WHITESPACE}]+\.tar\.gz$",
        description="the model's model.tar.gz",
    )
    recipe: Recipe
    version: Version | None = Field(default=None, description="Omit to take the next number")
    metrics: dict[Name, Finite] = Field(default_factory=dict, max_length=50)
    input_schema: InputSchema = Field(default_factory=InputSchema)
    training_job: str | None = Field(default=None, max_length=63)
    description: str | None = Field(default=None, max_length=1024)


class VersionOut(BaseModel):
    model: str
    version: int
    artifact_uri: str = Field(description="the artifact as registered")
    pinned_uri: str | None = Field(
        default=None,
        description="its copy under its SHA-256, which every deployment of this version reads",
    )
    artifact_sha256: str | None = None
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


class ArtifactUpload(BaseModel):
    """Where to PUT a model's files (no AWS credentials needed), then register `artifact_uri`."""

    artifact_uri: str = Field(description="register this after the upload")
    upload_url: str = Field(description="PUT model.tar.gz here (at most 5 GB)")
    signature_uri: str = Field(description="where the signature goes, beside the artifact")
    signature_upload_url: str = Field(description="PUT signature.json here (optional)")
    expires_in: int = Field(description="seconds the URLs stay valid")
