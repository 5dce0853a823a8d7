"""Application Auto Scaling for an endpoint's one variant: target tracking on
SageMakerVariantInvocationsPerInstance.

Rules from AWS's documentation that shape when this runs:
- Only a variant of an endpoint that exists can be registered, and AWS's update procedure
  registers it again only once DescribeEndpoint says InService; so the events handler
  registers it when it closes a deployment on InService, never the deployment route.
  https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-prerequisites.html
- UpdateEndpoint fails when it would change the instance type of a variant that is a
  scalable target; the target must be deregistered first and registered again after.
  Changing only the model is allowed.
  https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html
- Deregistering a target deletes its scaling policies.
  https://docs.aws.amazon.com/autoscaling/application/APIReference/API_DeregisterScalableTarget.html
RegisterScalableTarget and PutScalingPolicy both create or update, so `apply` is idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from handlers.shared import aws
from maas_contract.sagemaker import VARIANT_NAME

SERVICE_NAMESPACE = "sagemaker"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
POLICY_NAME = "invocations-per-instance"
SCALE_IN_COOLDOWN_S = 300
SCALE_OUT_COOLDOWN_S = 60


@dataclass(frozen=True)
class Scaling:
    min_instances: int
    max_instances: int
    target_invocations_per_instance: float


def resource_id(endpoint: str) -> str:
    return f"endpoint/{endpoint}/variant/{VARIANT_NAME}"


def _target(endpoint: str) -> dict[str, str]:
    return {
        "ServiceNamespace": SERVICE_NAMESPACE,
        "ResourceId": resource_id(endpoint),
        "ScalableDimension": SCALABLE_DIMENSION,
    }


def apply(endpoint: str, scaling: Scaling) -> None:
    """Registers the variant (or updates its bounds) and puts its target-tracking policy."""
    client = aws.client("application-autoscaling")
    client.register_scalable_target(
        **_target(endpoint),
        MinCapacity=scaling.min_instances,
        MaxCapacity=scaling.max_instances,
    )
    client.put_scaling_policy(
        PolicyName=POLICY_NAME,
        **_target(endpoint),
        PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": scaling.target_invocations_per_instance,
            "PredefinedMetricSpecification": {
                "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
            },
            "ScaleInCooldown": SCALE_IN_COOLDOWN_S,
            "ScaleOutCooldown": SCALE_OUT_COOLDOWN_S,
        },
    )


def registered(endpoint: str) -> dict[str, Any] | None:
    """The variant's scalable target, or None when it has none."""
    target = _target(endpoint)
    found = aws.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace=SERVICE_NAMESPACE,
        ResourceIds=[target["ResourceId"]],
        ScalableDimension=SCALABLE_DIMENSION,
    )
    targets = found.get("ScalableTargets") or []
    return dict(targets[0]) if targets else None


def release(endpoint: str) -> bool:
    """Deregisters the variant (its policies go with it); False when it was not registered."""
    if registered(endpoint) is None:
        return False
    aws.client("application-autoscaling").deregister_scalable_target(**_target(endpoint))
    return True
