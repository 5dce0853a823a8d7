"""The field types more than one route group uses: names, numbers and path parameters."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from maas_contract.names import MODEL_NAME_PATTERN, VERSION_MAX

Recipe = Literal["image-cnn", "text-lstm", "text-transformer", "autoencoder", "text-generation"]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:/-]+$")]
ModelName = Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
Version = Annotated[int, Field(ge=1, le=VERSION_MAX)]
# DynamoDB holds numbers of up to 38 digits, from 1E-130 to 9.99..E+125 in magnitude, and refuses
# the rest: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html
NUMBER_MAGNITUDE_MAX = 1e125
NUMBER_MAGNITUDE_MIN = 1e-130
INTEGER_MAX = 10**38 - 1


def _storable(value: float) -> float:
    if abs(value) > NUMBER_MAGNITUDE_MAX:
        raise ValueError("must be at most 1e125 in magnitude")
    if value != 0 and abs(value) < NUMBER_MAGNITUDE_MIN:
        raise ValueError("must be 0 or at least 1e-130 in magnitude")
    return value


# NaN and Infinity are valid Python JSON but no metric, threshold or hyperparameter; the registry
# must also be able to store the number.
Finite = Annotated[
    float,
    Field(
        allow_inf_nan=False,
        json_schema_extra={"minimum": -NUMBER_MAGNITUDE_MAX, "maximum": NUMBER_MAGNITUDE_MAX},
    ),
    AfterValidator(_storable),
]
Integer = Annotated[int, Field(ge=-INTEGER_MAX, le=INTEGER_MAX)]

# Path and query parameters.
ModelNamePath = Annotated[str, Path(pattern=MODEL_NAME_PATTERN, description="model name")]
Limit = Annotated[int, Query(ge=1, le=100, description="page size")]
Token = Annotated[
    str | None,
    Query(
        max_length=2048,
        pattern=r"^[A-Za-z0-9_-]+={0,2}$",
        description="next_token of the last page (404 when this listing never issued it)",
    ),
]


class Strict(BaseModel):
    """A request body: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


# Whitespace, spelt out: `\s` is not the same set in Python, in Rust (pydantic's patterns) and in
# ECMAScript (the document's JSON Schema), so a key the document allowed could be refused.
WHITESPACE = r"\t-\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
