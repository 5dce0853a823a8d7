"""The rules the handlers enforce that pydantic's schemas leave out, written into the API's
description: validators that run in code (field and model validators, AfterValidators, checks in
the services) and dict-key patterns pydantic enforces but does not close the schema with."""

from __future__ import annotations

import re
from typing import Any

from handlers.shared.idempotency import _KEY_PATTERN, RECORD_TTL_S
from handlers.shared.resolver import MAX_BODY_BYTES
from handlers.shared.schemas import INTEGER_MAX, NUMBER_MAGNITUDE_MAX, NUMBER_MAGNITUDE_MIN
from handlers.training_jobs.schemas import RESERVED_HYPERPARAMETERS, WHITESPACE
from maas_contract.artifacts import CODE_ARCHIVE, CODE_PREFIX, PINNED_PREFIX, PROTECTED_PREFIX

IDEMPOTENCY_KEY_PATTERN = _KEY_PATTERN.pattern
IDEMPOTENCY = (
    "1-255 printable ASCII characters, one per intended operation. A retry with the same key "
    "and body answers the first result for "
    f"{RECORD_TTL_S // 3600} hours; the same key with another body is refused (409), and so is "
    "a retry while the first call is still running (409 IdempotencyKeyInProgress)."
)
RAW_PREDICT_BODY = (
    "Sent to the model as is. Every body reaches the function base64-encoded in Lambda's 6 MB "
    "event (every media type is binary, for Triton's binary tensors), so past about 4.7 MB API "
    f"Gateway answers 413; the handler's own limit is {MAX_BODY_BYTES:,} bytes (SageMaker's "
    "InvokeEndpoint limit). A JSON body nested deeper than Python's parser can read is "
    "refused (400). The digits model (image-cnn) takes {'instances': [...]} of (1, 8, 8) "
    "images: 64 features each."
)
FINITE = (
    f"Finite, and 0 or between {NUMBER_MAGNITUDE_MIN:.0e} and {NUMBER_MAGNITUDE_MAX:.0e} in "
    "magnitude: what the registry (DynamoDB) can store."
)
DATASET = (
    "Under the stage's data bucket (s3://<data bucket>/..., the bucket `maas data` uploads "
    "to); `..` is refused."
)
ARTIFACT = (
    "model.tar.gz under the stage's artifact bucket (s3://<artifact bucket>/...). Not training "
    f"code (under {CODE_PREFIX} or named {CODE_ARCHIVE}), and nothing under {PROTECTED_PREFIX} "
    f"except a pinned copy ({PINNED_PREFIX}<sha256>/model.tar.gz)."
)
SCALING = "Needs min_instances <= instance_count <= max_instances."
JOB_RULES = (
    "auto_deploy needs a deployment and a metric_threshold. max_wait_seconds applies to spot "
    "jobs only and must be at least max_runtime_seconds."
)
_DESCRIPTIONS = {
    ("DeploymentSpec", None): SCALING,
    ("DeploymentCreate", None): SCALING,
    ("TrainingJobCreate", None): JOB_RULES,
    ("VersionCreate", "artifact_uri"): ARTIFACT,
}
_NO_PARENT_PATHS = {"not": {"pattern": r"\.\."}}


def for_stage(
    schemas: dict[str, Any], artifact_bucket: str, data_bucket: str, metrics: list[str]
) -> None:
    """The stage's own rules, for the document it serves: its buckets as patterns and the
    metrics its jobs report as an enum, so a request the schema accepts is one it accepts."""
    threshold = schemas.get("MetricThreshold", {}).get("properties", {}).get("metric")
    if threshold is not None:
        threshold["enum"] = sorted(metrics)
    artifact = schemas.get("VersionCreate", {}).get("properties", {}).get("artifact_uri")
    if artifact is not None:
        artifact["pattern"] = rf"^s3://{re.escape(artifact_bucket)}/[^{WHITESPACE}]+\.tar\.gz$"
    datasets = schemas.get("Datasets", {}).get("properties", {})
    data = rf"^s3://{re.escape(data_bucket)}/[^{WHITESPACE}]*$"
    if "train" in datasets:
        datasets["train"]["pattern"] = data
    for optional in ("validation", "pretrained"):
        for option in datasets.get(optional, {}).get("anyOf", []):
            if option.get("type") == "string":
                option["pattern"] = data


def declare(schemas: dict[str, Any]) -> None:
    """Writes the rules into the document's component schemas, in place."""
    for (name, field), text in _DESCRIPTIONS.items():
        if name in schemas:
            node = schemas[name]["properties"][field] if field else schemas[name]
            node["description"] = f"{node['description']} {text}" if "description" in node else text
    datasets = schemas.get("Datasets", {}).get("properties", {})
    for field in ("train", "validation", "pretrained"):
        if field in datasets:
            described = datasets[field].get("description")
            text = f"{described} {DATASET}" if described else DATASET
            datasets[field].update(description=text, **_NO_PARENT_PATHS)
    job = schemas.get("TrainingJobCreate", {}).get("properties", {})
    if "hyperparameters" in job:
        job["hyperparameters"]["propertyNames"] = {
            "not": {
                "anyOf": [
                    {"enum": sorted(RESERVED_HYPERPARAMETERS)},
                    {"pattern": "^sagemaker[_-]"},
                ]
            }
        }
    for schema in schemas.values():
        _walk(schema)


def _walk(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item)
        return
    if not isinstance(node, dict):
        return
    patterns = node.get("patternProperties")
    if patterns and "additionalProperties" not in node:
        # pydantic refuses a key that matches none of them; its schema does not say so.
        node["additionalProperties"] = False
    if node.get("type") == "number" and node.get("maximum") == NUMBER_MAGNITUDE_MAX:
        node["description"] = FINITE
        tiny = {"exclusiveMinimum": -NUMBER_MAGNITUDE_MIN, "exclusiveMaximum": NUMBER_MAGNITUDE_MIN}
        node["not"] = {**tiny, "not": {"const": 0}}
    if node.get("type") == "integer" and node.get("maximum") == float(INTEGER_MAX):
        # JSON Schema's numbers are exact; the generator wrote 10**38 - 1 as the float 1e38.
        node["maximum"], node["minimum"] = INTEGER_MAX, -INTEGER_MAX
    for value in node.values():
        _walk(value)
