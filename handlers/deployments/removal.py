"""Deleting a model's endpoint, and everything maas created on SageMaker and CloudWatch for it.

- The endpoint goes first: DeleteEndpoint is asynchronous (DescribeEndpoint says Deleting until
  it is gone) and SageMaker refuses it while the endpoint is being created, updated or
  maintained ("SystemUpdating: ... cannot be updated or deleted"; "Failed: DeleteEndpoint is
  the only operation that can be performed on a failed endpoint").
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DeleteEndpoint.html
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html
- Its variant is deregistered from auto scaling first, explicitly: DeleteEndpoint would do it
  only with the caller's DeregisterScalableTarget permission.
  https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-delete-with-scaling.html
- Then the endpoint configs and models of every deployment (their exact names are on the
  deployment records), which are no longer in use: "You must not delete an EndpointConfig in
  use by an endpoint that is live or while the UpdateEndpoint or CreateEndpoint operations are
  being performed". DeleteModel leaves the artifact and the role alone.
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DeleteEndpointConfig.html
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DeleteModel.html
- Then the endpoint's two rollback alarms, which bill by the month.
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DeleteAlarms.html

Each step skips what is already gone, so a repeated request finishes what an interrupted one
began. While it runs, the model item's hold keeps deployments off the endpoint.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from handlers.deployments import endpoint as deployed
from handlers.deployments.schemas import EndpointRemovalOut
from handlers.registry import service as registry
from handlers.shared import alarms, autoscaling, aws, registry_lifecycle, registry_table
from handlers.shared.errors import aws_error_code, conflict, from_control_plane

# DeleteEndpoint is refused, or would cut an operation short, in these states.
NOT_DELETABLE = {"Creating", "Updating", "SystemUpdating", "RollingBack"}


def undeploy(model: str, deadline: float) -> EndpointRemovalOut:
    """Deletes the model's endpoint and its resources, as far as `deadline` (monotonic) lets."""
    current = registry.get_model(model)
    if current.active_deployment:
        raise conflict(
            f"deployment {current.active_deployment} of {model} is in progress", retry_after=60
        )
    token = registry_table.now_iso()
    registry_lifecycle.hold_endpoint(model, token)
    undeployed = False
    try:
        gone, pending = _remove(model, current.endpoint_name, deadline)
        undeployed = True
    finally:
        registry_lifecycle.release_endpoint(model, token, undeployed=undeployed)
    return EndpointRemovalOut(
        model=model,
        endpoint_name=current.endpoint_name,
        status="Deleted" if gone and not pending else "Deleting",
        pending_cleanup=pending,
    )


def _remove(model: str, endpoint: str, deadline: float) -> tuple[bool, int]:
    """(whether SageMaker had no endpoint already, deployments left to clean up)."""
    described = deployed.describe(endpoint)
    deployments = list(registry_table.list_deployments(model))
    if described is not None and described.get("EndpointStatus") != "Deleting":
        _delete_endpoint(endpoint, described, deployments)
    if deployments:  # the deployment route made the alarms (alarms.ensure)
        _delete_alarms(endpoint)
    pending = 0
    for deployment in deployments:
        if deployment.get("resources_deleted_at"):
            continue
        if time.monotonic() > deadline:
            pending += 1
            continue
        _delete_resources(deployment)
        registry_lifecycle.mark_resources_deleted(model, deployment["id"])
    return described is None, pending


def _delete_endpoint(endpoint: str, described: dict[str, Any], deployments: list[dict]) -> None:
    status = described.get("EndpointStatus")
    if status in NOT_DELETABLE:
        raise conflict(f"endpoint {endpoint} is {status}; delete it once that ends", retry_after=60)
    configs = {d.get("endpoint_config_name") for d in deployments}
    if described.get("EndpointConfigName") not in configs:
        # A model declared in the stage's config: CloudFormation owns its endpoint.
        raise conflict(
            f"endpoint {endpoint} was not deployed through this API; remove it where it is declared"
        )
    autoscaling.release(endpoint)
    try:
        aws.sagemaker().delete_endpoint(EndpointName=endpoint)
    except ClientError as exc:
        if _not_found(exc):
            return
        if aws_error_code(exc) == "ValidationException":  # its state changed since Describe
            raise conflict(
                f"endpoint {endpoint} cannot be deleted now: {exc}", retry_after=60
            ) from exc
        raise from_control_plane(exc) from exc


def _delete_alarms(endpoint: str) -> None:
    cloudwatch = aws.client("cloudwatch")
    names = [alarm.name for alarm in alarms.definitions(endpoint)]
    found = cloudwatch.describe_alarms(AlarmNames=names, AlarmTypes=["MetricAlarm"])
    existing = [a["AlarmName"] for a in found.get("MetricAlarms", [])]
    if existing:
        cloudwatch.delete_alarms(AlarmNames=existing)


def _delete_resources(deployment: dict[str, Any]) -> None:
    """The deployment's endpoint config and model; "Could not find" means already done."""
    try:
        aws.sagemaker().delete_endpoint_config(
            EndpointConfigName=deployment["endpoint_config_name"]
        )
    except ClientError as exc:
        _unless_gone(exc)
    try:
        aws.sagemaker().delete_model(ModelName=deployment["sagemaker_model"])
    except ClientError as exc:
        _unless_gone(exc)


def _unless_gone(exc: ClientError) -> None:
    if not _not_found(exc):
        raise from_control_plane(exc) from exc


def _not_found(exc: ClientError) -> bool:
    return aws_error_code(exc) == "ValidationException" and "not find" in str(exc).lower()
