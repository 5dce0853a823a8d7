"""The registry's writes that decide who may change a model now: a deployment's lock and its
close, and the removals (an endpoint, a version, the model) with the holds that keep them apart
from deployments. Keys and expressions are registry_table's; this is its second half.

Two holds sit on the model item beside the deployment lock (`active_deployment`):
`undeploying_since` while its endpoint is being deleted, `deleting_since` while its items are.
A deployment waits for both; a removal waits for the lock. An endpoint hold older than
HOLD_STALE_S outlived the Lambda that took it (every function stops within 60 s), so it blocks
no one; a model hold stays until a repeated DELETE finishes the model.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.shared import registry_table as table
from handlers.shared.errors import ApiError, conflict

HOLD_STALE_S = 120
# TransactWriteItems takes at most 100 actions.
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
TRANSACTION_MAX = 100
PK, SK = table.PK, table.SK


def stale_before() -> str:
    """The oldest time a live endpoint hold can carry."""
    oldest = datetime.now(UTC) - timedelta(seconds=HOLD_STALE_S)
    return oldest.isoformat(timespec="milliseconds")


def lock_deployment(model: str, deployment: table.Item) -> None:
    """Records a new deployment as the model's active one, while its version is registered;
    409 while another deployment is active, or the endpoint or the model is being deleted."""
    request = table.update_request(
        table.model_key(model),
        {"active_deployment": deployment["id"], "updated_at": deployment["created_at"]},
        condition=(
            f"attribute_exists({PK}) AND attribute_not_exists(active_deployment)"
            " AND attribute_not_exists(deleting_since)"
            " AND (attribute_not_exists(undeploying_since) OR undeploying_since < :stale)"
        ),
        values={":stale": stale_before()},
    )
    # Checked in the same transaction, so a version deleted meanwhile is never deployed.
    registered = table.guarded(
        table.version_key(model, deployment["version"]), f"attribute_exists({PK})"
    )
    put = table.put_new(table.deployment_key(model, deployment["id"]), deployment)
    try:
        table.transact(
            [{"Update": request}, {"Put": put}, {"ConditionCheck": registered}],
            conflict_message="",
        )
    except ApiError as exc:
        if exc.status != 409:
            raise
        raise conflict(_why_locked(model, deployment["version"])) from exc


def _why_locked(model: str, version: int) -> str:
    found = table.get_model(model) or {}
    if found.get("active_deployment"):
        return f"a deployment of {model} is already in progress"
    if found.get("deleting_since"):
        return f"model {model} is being deleted"
    if found.get("undeploying_since"):
        return f"the endpoint of {model} is being deleted"
    return f"version {version} of {model} is not registered"


def close_deployment(
    model: str, deployment_id: str, attrs: dict[str, Any], model_attrs: dict[str, Any]
) -> bool:
    """Ends a deployment (`attrs`) and releases the model's lock (setting `model_attrs`),
    together; False when it was closed already."""
    release = table.update_request(
        table.model_key(model),
        model_attrs,
        remove=("active_deployment",),
        condition="active_deployment = :id",
        values={":id": deployment_id},
    )
    end = table.update_request(table.deployment_key(model, deployment_id), attrs)
    try:
        table.transact([{"Update": release}, {"Update": end}], "deployment already closed")
    except ApiError as exc:
        if exc.status == 409:
            return False
        raise
    return True


def _hold(model: str, attribute: str, token: str, condition: str, message: str) -> None:
    """Sets `attribute` to `token` on a model with no active deployment, under `condition`
    (which may compare with `:stale`, the oldest time a live hold can have)."""
    request = table.update_request(
        table.model_key(model),
        {attribute: token},
        condition=f"attribute_exists({PK}) AND attribute_not_exists(active_deployment) AND "
        + condition,
        values={":stale": stale_before()} if ":stale" in condition else None,
    )
    try:
        table.apply_update(request)
    except ApiError as exc:
        if exc.status != 409:
            raise
        raise conflict(message, retry_after=30) from exc


def hold_endpoint(model: str, token: str) -> None:
    """Keeps deployments off the model's endpoint while it is deleted (`lock_deployment` waits
    on `undeploying_since`); 409 while a deployment is active or the model is being deleted."""
    _hold(
        model,
        "undeploying_since",
        token,
        "attribute_not_exists(deleting_since)",
        f"a deployment of {model} is in progress, or the model is being deleted",
    )


def release_endpoint(model: str, token: str, *, undeployed: bool) -> None:
    """Gives back `hold_endpoint`'s hold; `undeployed` also clears the live and previous
    versions. A removal that took the hold over since then releases it instead."""
    live = ("live_version", "previous_version", "live_deployment") if undeployed else ()
    request = table.update_request(
        table.model_key(model),
        {"updated_at": table.now_iso()},
        remove=("undeploying_since", *live),
        condition="undeploying_since = :token",
        values={":token": token},
    )
    try:
        table.apply_update(request)
    except ApiError as exc:
        if exc.status != 409:
            raise


def mark_resources_deleted(model: str, deployment_id: str) -> None:
    """Records that a deployment's SageMaker model and endpoint config are gone."""
    table.update(
        table.deployment_key(model, deployment_id), {"resources_deleted_at": table.now_iso()}
    )


def delete_version(model: str, version: int, active_deployment: str | None) -> None:
    """Deletes a version unless, at that instant, the model serves it live, keeps it for a
    rollback, or has an active deployment other than `active_deployment` (which the caller saw
    not to target it). A version that is not there is not an error."""
    values: dict[str, Any] = {":v": version}
    condition = (
        f"attribute_exists({PK})"
        " AND (attribute_not_exists(live_version) OR live_version <> :v)"
        " AND (attribute_not_exists(previous_version) OR previous_version <> :v)"
    )
    if active_deployment is None:
        condition += " AND attribute_not_exists(active_deployment)"
    else:
        condition += " AND active_deployment = :active"
        values[":active"] = active_deployment
    check = table.guarded(table.model_key(model), condition, values)
    remove = {"TableName": table.table_name(), "Key": table.version_key(model, version)}
    table.transact(
        [{"ConditionCheck": check}, {"Delete": remove}],
        conflict_message=f"model {model} changed while version {version} was being deleted; retry",
    )


def hold_model(model: str, token: str) -> None:
    """Marks a model as being deleted: registrations and deployments are refused from now on.
    409 while a deployment is active, a version is live or its endpoint is being deleted."""
    _hold(
        model,
        "deleting_since",
        token,
        "attribute_not_exists(live_version)"
        " AND (attribute_not_exists(undeploying_since) OR undeploying_since < :stale)",
        f"model {model} has a live version, a deployment in progress or an endpoint being deleted",
    )


def delete_model_items(model: str, deadline: float) -> bool:
    """Deletes a held model's versions and deployments, then the model item, in transactions
    of up to TRANSACTION_MAX deletes; False when `deadline` (time.monotonic()) passes first."""
    batch: list[dict[str, Any]] = []
    for item in table.partition(model):
        if item[SK]["S"] == table.MODEL_SK:
            continue
        batch.append(
            {"Delete": {"TableName": table.table_name(), "Key": {k: item[k] for k in (PK, SK)}}}
        )
        if len(batch) == TRANSACTION_MAX:
            table.transact(batch, conflict_message=f"model {model} changed while being deleted")
            batch = []
            if time.monotonic() > deadline:
                return False
    if batch:
        table.transact(batch, conflict_message=f"model {model} changed while being deleted")
    gone = f"attribute_not_exists({PK}) OR attribute_exists(deleting_since)"
    table.transact([{"Delete": table.guarded(table.model_key(model), gone)}], "model changed")
    return True
