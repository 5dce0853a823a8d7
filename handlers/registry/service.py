"""Models and their versions: reads, and the one conditional registration."""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from handlers.registry.schemas import (
    ArtifactUpload,
    InputSchema,
    ModelOut,
    ModelPage,
    VersionCreate,
    VersionOut,
    VersionPage,
)
from handlers.shared import artifacts, registry_lifecycle, registry_table
from handlers.shared.errors import ApiError, bad_request, conflict, not_found
from maas_contract import artifacts as contract_artifacts
from maas_contract.names import VERSION_MAX, endpoint_name
from maas_contract.settings import HandlerSettings

# Concurrent registrations of one model race for the next number; the loser of each round
# reads the new latest and tries again after a random pause that doubles up to a cap
# (exponential backoff with full jitter), so that Lambda's parallel execution environments
# spread out instead of colliding again in step. It gives up with a 409 only after
# _AUTO_NUMBER_BUDGET_S, well inside the registry function's 28 s timeout (infra/api_functions.py).
# 50 simultaneous registrations all land (tests/reliability/test_faults.py).
_AUTO_NUMBER_BUDGET_S = 6.0
_BACKOFF_FIRST_S = 0.025
_BACKOFF_CAP_S = 0.4
# Transaction items that commit with a registration or not at all, given its version number.
AlsoWrite = Callable[[int], list[dict[str, Any]]]


def get_model(name: str) -> ModelOut:
    found = registry_table.get_model(name)
    if found is None:
        raise not_found(f"model {name} is not registered")
    return ModelOut.model_validate(found)


def get_version(model: str, version: int) -> VersionOut:
    found = registry_table.get_version(model, version)
    if found is None:
        raise not_found(f"version {version} of model {model} is not registered")
    return VersionOut.model_validate(found)


def list_models(limit: int, token: str | None) -> ModelPage:
    items, next_token = registry_table.list_models(limit, token)
    return ModelPage(items=[ModelOut.model_validate(i) for i in items], next_token=next_token)


def list_versions(model: str, limit: int, token: str | None) -> VersionPage:
    get_model(model)
    items, next_token = registry_table.list_versions(model, limit, token)
    return VersionPage(items=[VersionOut.model_validate(i) for i in items], next_token=next_token)


def register_version(model: str, spec: VersionCreate) -> VersionOut:
    """A caller's registration: the artifact must be in the stage's artifact bucket, and is
    pinned before the version is written."""
    settings = HandlerSettings.from_env()
    bucket = settings.artifact_bucket
    if not spec.artifact_uri.startswith(f"s3://{bucket}/"):
        raise bad_request(f"artifact_uri must be in s3://{bucket}/")
    attrs = spec.model_dump(mode="json", exclude_none=True, exclude={"version"})
    return register(model, settings.resource_prefix, pinned(attrs), spec.version)


def upload(model: str) -> ArtifactUpload:
    """Presigned URLs to upload a model's artifact and signature into the stage's artifact
    bucket, for a caller without AWS credentials (`maas promote`)."""
    settings = HandlerSettings.from_env()
    made = artifacts.upload(settings.artifact_bucket, model)
    return ArtifactUpload(**dataclasses.asdict(made))


def pinned(attrs: dict[str, Any], signature_uri: str | None = None) -> dict[str, Any]:
    """A version's attributes with its artifact copied to its content-addressed key: the key
    every deployment of it reads, which nothing rewrites.

    The model's signature (signature.json) is read from `signature_uri`, else from beside the
    artifact, and copied beside the pinned artifact. It gives the version its input schema
    and label names, unless the caller named inputs or outputs of its own.
    """
    pin = artifacts.pin(attrs["artifact_uri"])
    attrs = {**attrs, "pinned_uri": pin.uri, "artifact_sha256": pin.sha256}
    if not signature_uri:
        bucket, key = artifacts.split(attrs["artifact_uri"])
        signature_uri = f"s3://{bucket}/{contract_artifacts.signature_key(key)}"
    found = artifacts.signature(signature_uri)
    if found is None:
        return attrs
    try:
        schema = InputSchema.model_validate(found)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise bad_request(
            f"{signature_uri} is not a model signature: {where}: {first['msg']}"
        ) from None
    artifacts.pin_signature(signature_uri, pin)
    given = InputSchema.model_validate(attrs.get("input_schema") or {})
    if not (given.inputs or given.outputs):
        attrs["input_schema"] = schema.model_dump(mode="json")
    return attrs


def register(
    model: str,
    resource_prefix: str,
    attrs: dict[str, Any],
    version: int | None = None,
    also: AlsoWrite | None = None,
) -> VersionOut:
    """Registers a version: the number given, or the next one. Numbers only ever grow.

    `also(version)` gives transaction items that commit with the registration or not at all.
    """
    endpoint = endpoint_name(resource_prefix, model)
    if (registry_table.get_model(model) or {}).get("deleting_since"):
        raise conflict(f"model {model} is being deleted; repeat DELETE /v1/models/{model} first")
    if version is not None:
        return _write(model, endpoint, version, attrs, also)
    deadline = time.monotonic() + _AUTO_NUMBER_BUDGET_S
    pause = _BACKOFF_FIRST_S
    while True:
        latest = int((registry_table.get_model(model) or {}).get("latest_version", 0))
        if latest >= VERSION_MAX:
            raise conflict(
                f"model {model} has used every version number up to {VERSION_MAX}",
                code="VersionsExhausted",
            )
        try:
            return _write(model, endpoint, latest + 1, attrs, also)
        except ApiError as exc:
            if exc.status != 409:
                raise
        if time.monotonic() + pause > deadline:
            break
        time.sleep(random.uniform(0, pause))  # noqa: S311 - jitter, not a secret
        pause = min(2 * pause, _BACKOFF_CAP_S)
    raise conflict("too many concurrent registrations for this model; retry", retry_after=1)


def _write(
    model: str, endpoint: str, version: int, attrs: dict[str, Any], also: AlsoWrite | None
) -> VersionOut:
    item = {**attrs, "model": model, "version": version, "created_at": registry_table.now_iso()}
    registry_table.register_version(model, endpoint, item, also(version) if also else [])
    return VersionOut.model_validate(item)


def delete_version(model: str, version: int) -> None:
    """Deletes a version nothing depends on; its number is never given out again. The pinned
    artifact stays: it is content-addressed, so other versions may share it."""
    current = get_model(model)
    if current.live_version == version:
        raise conflict(
            f"version {version} of {model} is live; deploy another or delete the endpoint"
        )
    if current.previous_version == version:
        raise conflict(f"version {version} of {model} is the one a rollback would redeploy")
    active = current.active_deployment
    deployment = registry_table.get_deployment(model, active) if active else None
    if deployment is not None and int(deployment["version"]) == version:
        raise conflict(f"deployment {active} is rolling version {version} out", retry_after=60)
    registry_lifecycle.delete_version(model, version, active)


def delete_model(model: str, deadline: float) -> None:
    """Deletes a model with nothing on SageMaker: its versions and deployment records, then the
    model. A model that is not there is not an error; one half deleted is finished."""
    found = registry_table.get_model(model)
    if found is None:
        return
    current = ModelOut.model_validate(found)
    if current.active_deployment:
        raise conflict(
            f"deployment {current.active_deployment} of {model} is in progress", retry_after=60
        )
    if current.live_version is not None:
        raise conflict(
            f"version {current.live_version} of {model} is live;"
            f" DELETE /v1/models/{model}/endpoint first"
        )
    left = sum(
        1 for d in registry_table.list_deployments(model) if not d.get("resources_deleted_at")
    )
    if left:
        raise conflict(
            f"the SageMaker models and endpoint configs of {left} deployment(s) of {model} remain;"
            f" DELETE /v1/models/{model}/endpoint deletes them"
        )
    registry_lifecycle.hold_model(model, registry_table.now_iso())
    if not registry_lifecycle.delete_model_items(model, deadline):
        raise conflict(f"model {model} is still being deleted; repeat the request", retry_after=1)
