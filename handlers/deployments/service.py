"""Deployments: one at a time per model, rolled onto the model's endpoint, closed by the
endpoint's state-change event.

Starting one writes `active_deployment` on the model item under a condition, so a concurrent
start gets 409. "Endpoint State Change" events close it (handlers.events), after
DescribeEndpoint says which config is really live.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from handlers.deployments import endpoint
from handlers.deployments.schemas import DeploymentOut, DeploymentSpec, Status
from handlers.registry import service as registry
from handlers.shared import registry_lifecycle, registry_table
from handlers.shared.errors import ApiError, bad_request, conflict, from_control_plane, not_found
from maas_contract import names
from maas_contract.settings import HandlerSettings


def out(item: dict[str, Any]) -> DeploymentOut:
    return DeploymentOut.model_validate(
        {k: v for k, v in item.items() if k in DeploymentOut.model_fields}
    )


def get(model: str, deployment_id: str) -> DeploymentOut:
    item = registry_table.get_deployment(model, deployment_id)
    if item is None:
        raise not_found(f"deployment {deployment_id} of model {model} does not exist")
    return out(item)


def _names(model: str, version: int, deployment_id: str) -> dict[str, str]:
    prefix = HandlerSettings.from_env().resource_prefix
    try:
        return {
            "endpoint_name": names.endpoint_name(prefix, model),
            "endpoint_config_name": names.endpoint_config_name(prefix, model, deployment_id),
            "sagemaker_model": names.model_name(prefix, model, version, deployment_id),
        }
    except ValueError as exc:
        raise bad_request(str(exc)) from exc


def start(
    model: str,
    version: int,
    spec: DeploymentSpec,
    *,
    kind: str = "deploy",
    deployment_id: str | None = None,
) -> DeploymentOut:
    """Starts a deployment; it is InProgress until the endpoint's event closes it."""
    current = registry.get_model(model)
    registered = registry.get_version(model, version)
    spec = endpoint.spec_for(registered, spec)
    deployment_id = deployment_id or names.new_deployment_id()
    now = registry_table.now_iso()
    item = {
        "id": deployment_id,
        "model": model,
        "version": version,
        "kind": kind,
        "previous_version": current.live_version,
        "status": "InProgress",
        **_names(model, version, deployment_id),
        "spec": spec.model_dump(mode="json"),
        "created_at": now,
        "updated_at": now,
    }
    registry_lifecycle.lock_deployment(model, item)
    try:
        action = endpoint.roll_out(current, registered, item, spec)
    except ClientError as exc:
        close(model, deployment_id, "Failed", reason=str(exc))
        raise from_control_plane(exc) from exc
    except Exception as exc:
        reason = exc.message if isinstance(exc, ApiError) else "internal error"
        close(model, deployment_id, "Failed", reason=reason)
        raise
    registry_table.update(registry_table.deployment_key(model, deployment_id), {"action": action})
    return out(item)


def close(
    model: str,
    deployment_id: str,
    status: Status,
    reason: str | None = None,
    live_version: int | None = None,
    previous_version: int | None = None,
) -> bool:
    """Ends a deployment and releases the model's lock, together. False if already closed."""
    now = registry_table.now_iso()
    model_attrs: dict[str, Any] = {"updated_at": now}
    if live_version is not None:
        model_attrs.update(live_version=live_version, live_deployment=deployment_id)
        model_attrs["previous_version"] = previous_version
    attrs = {"status": status, "updated_at": now, "failure_reason": (reason or "")[:1024] or None}
    return registry_lifecycle.close_deployment(model, deployment_id, attrs, model_attrs)


def rollback(model: str) -> DeploymentOut:
    """Redeploys the version that was live before the current one, with its settings."""
    current = registry.get_model(model)
    if current.previous_version is None:
        raise conflict(f"model {model} has no previous live version to roll back to")
    live = (
        registry_table.get_deployment(model, current.live_deployment)
        if current.live_deployment
        else None
    )
    if live is None:
        raise conflict(f"model {model} has no live deployment to take settings from")
    spec = DeploymentSpec.stored(live["spec"])
    return start(model, current.previous_version, spec, kind="rollback")
