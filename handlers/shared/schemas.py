"""The field types more than one route group uses: names, numbers and path parameters."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from maas_contract.names import MODEL_NAME_PATTERN, VERSION_MAX

Recipe = Literal["image-cnn", "text-lstm", "text-transformer", "autoencoder"]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:/-]+$")]
ModelName = Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
Version = Annotated[int, Field(ge=1, le=VERSION_MAX)]
# NaN and Infinity are valid Python JSON but no metric, threshold or hyperparameter.
Finite = Annotated[float, Field(allow_inf_nan=False)]

# Path and query parameters.
ModelNamePath = Annotated[str, Path(pattern=MODEL_NAME_PATTERN, description="model name")]
Limit = Annotated[int, Query(ge=1, le=100, description="page size")]
Token = Annotated[str | None, Query(max_length=2048, description="next_token of the last page")]


class Strict(BaseModel):
    """A request body: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")
