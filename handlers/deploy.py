"""Rolls a model version onto its endpoint: CreateModel -> CreateEndpointConfig ->
CreateEndpoint or UpdateEndpoint (blue/green canary with alarm-driven auto rollback).

One deployment per model at a time: starting one writes `active_deployment` on the model
item under a condition, so a concurrent start gets 409. "Endpoint State Change" events
close it (handlers.events), after DescribeEndpoint says which config is really live.

Every version runs under the one variant name `VARIANT_NAME`: blue/green and rolling updates
need the new config to keep the old config's variant name ("Exclusions",
https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html). The
version lives in the registry, the config name, the `maas:version` tags and the model
container's environment (`MODEL_VERSION_ENV`), whose server reports it in CustomAttributes.
"""

from __future__ import annotations

import secrets
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from handlers import alarms, autoscaling, aws, store, versions
from handlers.config import SageMakerSettings, Settings, region
from handlers.errors import ApiError, aws_error_code, bad_request, conflict, from_control_plane
from handlers.schemas import DeploymentSpec
from maas_contract.sagemaker import (
    MODEL_VERSION_ENV,
    SAGEMAKER_NAME_MAX,
    VARIANT_NAME,
    volume_kms_allowed,
)

_BUSY = {
    "Creating",
    "Updating",
    "SystemUpdating",
    "RollingBack",
    "Deleting",
    "UpdateRollbackFailed",
}


def deployment_key(model: str, deployment_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"MODEL#{model}"}, "sk": {"S": f"DEPLOYMENT#{deployment_id}"}}


def new_id() -> str:
    return f"d{secrets.token_hex(6)}"


def full_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A stored deployment spec with every default filled in, older specs included."""
    try:
        return DeploymentSpec.model_validate(spec).model_dump(mode="json")
    except ValidationError as exc:  # a spec stored under older, looser rules
        raise bad_request(f"the deployment settings are not valid now: {exc}") from exc


def tags(model: str, version: int) -> list[dict[str, str]]:
    return [{"Key": "maas:model", "Value": model}, {"Key": "maas:version", "Value": str(version)}]


def sagemaker_name(*parts: str) -> str:
    name = "-".join(parts)
    if len(name) > SAGEMAKER_NAME_MAX:
        raise bad_request(f"resource name {name} is longer than {SAGEMAKER_NAME_MAX} characters")
    return name


def _lock(model: str, item: dict[str, Any]) -> None:
    values = store.serialize({":id": item["id"], ":now": item["created_at"]})
    store.transact(
        [
            {
                "Update": {
                    "TableName": store.table(),
                    "Key": store.model_key(model),
                    "UpdateExpression": "SET active_deployment = :id, updated_at = :now",
                    "ConditionExpression": (
                        "attribute_exists(pk) AND attribute_not_exists(active_deployment)"
                    ),
                    "ExpressionAttributeValues": values,
                }
            },
            {
                "Put": {
                    "TableName": store.table(),
                    "Item": {**deployment_key(model, item["id"]), **store.serialize(item)},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ],
        conflict_message=f"a deployment of {model} is already in progress",
    )


def close(
    model: str,
    deployment_id: str,
    status: str,
    reason: str | None = None,
    live_version: int | None = None,
    previous_version: int | None = None,
) -> bool:
    """Ends a deployment and releases the model's lock, together. False if already closed."""
    now = store.now_iso()
    model_set = "updated_at = :now"
    values: dict[str, Any] = {":id": deployment_id, ":now": now, ":status": status}
    if live_version is not None:
        model_set += ", live_version = :live, live_deployment = :id"
        values[":live"] = live_version
        if previous_version is not None:
            model_set += ", previous_version = :prev"
            values[":prev"] = previous_version
    deployment_set = "#status = :status, updated_at = :now"
    if reason:
        deployment_set += ", failure_reason = :reason"
        values[":reason"] = reason[:1024]
    try:
        store.transact(
            [
                {
                    "Update": {
                        "TableName": store.table(),
                        "Key": store.model_key(model),
                        "UpdateExpression": f"SET {model_set} REMOVE active_deployment",
                        "ConditionExpression": "active_deployment = :id",
                        "ExpressionAttributeValues": store.serialize(values),
                    }
                },
                {
                    "Update": {
                        "TableName": store.table(),
                        "Key": deployment_key(model, deployment_id),
                        "UpdateExpression": f"SET {deployment_set}",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {"#status": "status"},
                        "ExpressionAttributeValues": store.serialize(
                            {k: v for k, v in values.items() if k in (":now", ":status", ":reason")}
                        ),
                    }
                },
            ],
            conflict_message="deployment already closed",
        )
    except ApiError as exc:
        if exc.status == 409:
            return False
        raise
    return True


def _endpoint_status(endpoint_name: str) -> dict[str, Any] | None:
    try:
        return dict(aws.sagemaker().describe_endpoint(EndpointName=endpoint_name))
    except ClientError as exc:
        if aws_error_code(exc) == "ValidationException" and "not find" in str(exc).lower():
            return None
        raise


def _create_model(
    sm: SageMakerSettings, name: str, version: dict[str, Any], instance_type: str
) -> None:
    aws.sagemaker().create_model(
        ModelName=name,
        ExecutionRoleArn=sm.role_arn,
        EnableNetworkIsolation=True,
        PrimaryContainer={
            "Image": sm.inference_image(instance_type),
            "ModelDataUrl": version["artifact_uri"],
            "Environment": {
                "SAGEMAKER_PROGRAM": "inference.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                "SAGEMAKER_REGION": region(),
                MODEL_VERSION_ENV: str(version["version"]),
            },
        },
        Tags=tags(version["model"], int(version["version"])),
    )


def _create_config(
    sm: SageMakerSettings,
    name: str,
    model_name: str,
    model: str,
    version: int,
    spec: dict[str, Any],
) -> None:
    params: dict[str, Any] = {
        "EndpointConfigName": name,
        "ProductionVariants": [
            {
                "VariantName": VARIANT_NAME,
                "ModelName": model_name,
                "InstanceType": spec["instance_type"],
                "InitialInstanceCount": spec["instance_count"],
                "InitialVariantWeight": 1.0,
            }
        ],
        "Tags": tags(model, version),
    }
    # SageMaker refuses a KmsKeyId for instance types with local (NVMe) storage.
    if volume_kms_allowed([spec["instance_type"]]):
        params["KmsKeyId"] = sm.kms_key_arn
    if spec["capture_percent"] > 0:
        params["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": spec["capture_percent"],
            "DestinationS3Uri": f"s3://{sm.capture_bucket}/{model}",
            "KmsKeyId": sm.kms_key_arn,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
        }
    aws.sagemaker().create_endpoint_config(**params)


def deployment_config(spec: dict[str, Any], own_alarms: list[str]) -> dict[str, Any]:
    """Blue/green canary; the endpoint's own alarms, then the caller's, roll it back."""
    names = list(dict.fromkeys([*own_alarms, *spec["rollback_alarms"]]))
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": spec["canary_percent"]},
                "WaitIntervalInSeconds": spec["canary_wait_seconds"],
            },
            "TerminationWaitInSeconds": 300,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in names]},
    }


def live_spec(model: dict[str, Any]) -> dict[str, Any] | None:
    """The full spec of the deployment that made the model's live version live, if any."""
    live_id = model.get("live_deployment")
    live = store.get_item(deployment_key(model["name"], live_id)) if live_id else None
    return full_spec(dict(live["spec"])) if live and live.get("spec") else None


def _live_instance_type(config_name: str | None) -> str | None:
    if not config_name:
        return None
    config = aws.sagemaker().describe_endpoint_config(EndpointConfigName=config_name)
    for variant in config.get("ProductionVariants") or []:
        if variant.get("VariantName") == VARIANT_NAME:
            return str(variant.get("InstanceType"))
    return None


def _release_scaling_for(endpoint: str, current: dict[str, Any], spec: dict[str, Any]) -> bool:
    """UpdateEndpoint fails when it changes the instance type of a scalable target, so such
    an update first deregisters the variant (the events handler registers it again)."""
    if _live_instance_type(current.get("EndpointConfigName")) == spec["instance_type"]:
        return False
    return autoscaling.release(endpoint)


def _update(model: str, endpoint: str, current: dict, config_name: str, spec: dict) -> None:
    own_alarms = alarms.ensure(endpoint)
    released = _release_scaling_for(endpoint, current, spec)
    try:
        aws.sagemaker().update_endpoint(
            EndpointName=endpoint,
            EndpointConfigName=config_name,
            RetainAllVariantProperties=False,
            DeploymentConfig=deployment_config(spec, own_alarms),
        )
    except ClientError:
        previous = live_spec(versions.require_model(model)) if released else None
        if previous is not None:  # the live fleet keeps serving: give it its scaling back
            autoscaling.apply(endpoint, autoscaling.Scaling.of(previous))
        raise


def _roll_out(model: str, item: dict[str, Any], spec: dict[str, Any]) -> str:
    """Creates the SageMaker resources; returns "create" or "update"."""
    sm = SageMakerSettings.from_env()
    endpoint = item["endpoint_name"]
    current = _endpoint_status(endpoint)
    if current is not None and current.get("EndpointStatus") in _BUSY:
        raise conflict(f"endpoint {endpoint} is {current['EndpointStatus']}", retry_after=60)
    if current is not None and current.get("EndpointStatus") == "Failed":
        autoscaling.release(endpoint)
        aws.sagemaker().delete_endpoint(EndpointName=endpoint)
        raise conflict(f"endpoint {endpoint} had failed and is being deleted", retry_after=60)
    version = versions.require_version(model, item["version"])
    _create_model(sm, item["sagemaker_model"], version, spec["instance_type"])
    _create_config(
        sm, item["endpoint_config_name"], item["sagemaker_model"], model, item["version"], spec
    )
    if current is not None:
        _update(model, endpoint, current, item["endpoint_config_name"], spec)
        return "update"
    alarms.ensure(endpoint)  # watching from the start; they roll back the next update
    aws.sagemaker().create_endpoint(
        EndpointName=endpoint,
        EndpointConfigName=item["endpoint_config_name"],
        Tags=tags(model, item["version"]),
    )
    return "create"


def start(
    model: str,
    version: int,
    spec: dict[str, Any],
    *,
    kind: str = "deploy",
    deployment_id: str | None = None,
) -> dict[str, Any]:
    """Starts a deployment; returns its registry item (status InProgress)."""
    settings = Settings.from_env()
    spec = full_spec(spec)
    current = versions.require_model(model)
    versions.require_version(model, version)
    deployment_id = deployment_id or new_id()
    now = store.now_iso()
    item = {
        "id": deployment_id,
        "model": model,
        "version": version,
        "kind": kind,
        "previous_version": current.get("live_version"),
        "status": "InProgress",
        "endpoint_name": settings.endpoint_name(model),
        "endpoint_config_name": sagemaker_name(settings.resource_prefix, model, deployment_id),
        "sagemaker_model": sagemaker_name(
            settings.resource_prefix, model, f"v{version}", deployment_id
        ),
        "spec": spec,
        "created_at": now,
        "updated_at": now,
    }
    _lock(model, item)
    try:
        item["action"] = _roll_out(model, item, spec)
    except ClientError as exc:
        close(model, deployment_id, "Failed", reason=str(exc))
        raise from_control_plane(exc) from exc
    except Exception as exc:
        reason = exc.message if isinstance(exc, ApiError) else "internal error"
        close(model, deployment_id, "Failed", reason=reason)
        raise
    store.update(deployment_key(model, deployment_id), {"action": item["action"]})
    return item
