"""SageMaker's documented request rules, applied as the service applies them.

Two layers, in the order the service answers them:
- `constraint_errors`: the member constraints botocore's service model carries (length, pattern,
  enum, value range, list and map sizes), for every operation, worded as AWS's own
  "1 validation error detected: Value 'x' at 'resourceConfig.instanceType' failed to satisfy
  constraint: ..." messages. botocore's client checks only types and minimums, so without this
  a lenient emulator would accept what SageMaker refuses.
- `check_request` / `check_deployment`: rules the model cannot express (KMS versus local storage,
  managed spot, deployment guardrails), each citing its documentation page.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

from botocore.model import Shape

from maas_contract.sagemaker import has_local_storage
from maas_local.sagemaker.protocol import AwsError, service_model, validation

# -- member constraints from the service model ---------------------------------------------


def constraint_errors(value: Any, shape: Shape) -> AwsError | None:
    """AWS's aggregated ValidationException for `value`, or None when every constraint holds."""
    errors = list(_walk(value, shape, ""))
    if not errors:
        return None
    plural = "s" if len(errors) > 1 else ""
    return validation(f"{len(errors)} validation error{plural} detected: " + "; ".join(errors))


def _walk(value: Any, shape: Shape, path: str) -> Iterator[str]:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                yield from _walk(value[name], member, _join(path, name[:1].lower() + name[1:]))
    elif kind == "list" and isinstance(value, list):
        yield from _failed(value, path, _size_constraints(len(value), shape))
        for index, item in enumerate(value, start=1):
            yield from _walk(item, shape.member, f"{path}.{index}.member")
    elif kind == "map" and isinstance(value, dict):
        yield from _failed(value, path, _size_constraints(len(value), shape))
        for side, of in (("Map keys", shape.key), ("Map value", shape.value)):
            items = value.keys() if side == "Map keys" else value.values()
            if any(_scalar_constraints(item, of) for item in items):
                described = ", ".join(_described(of))
                yield _message(value, path, f"{side} must satisfy constraint: [{described}]")
    else:
        yield from _failed(value, path, _scalar_constraints(value, shape))


def _failed(value: Any, path: str, constraints: list[str]) -> Iterator[str]:
    for constraint in constraints:
        yield _message(value, path, constraint)


def _message(value: Any, path: str, constraint: str) -> str:
    return f"Value '{_render(value)}' at '{path}' failed to satisfy constraint: {constraint}"


def _render(value: Any) -> str:
    """Values as the service's Java side prints them: lists `[a, b]`, maps `{k=v}`."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _size_constraints(size: int, shape: Shape) -> list[str]:
    meta = shape.metadata
    failed = []
    if "max" in meta and size > meta["max"]:
        failed.append(f"Member must have length less than or equal to {meta['max']}")
    if "min" in meta and size < meta["min"]:
        failed.append(f"Member must have length greater than or equal to {meta['min']}")
    return failed


def _scalar_constraints(value: Any, shape: Shape) -> list[str]:
    """The constraints a string or number breaks; other types are botocore's to check."""
    meta = shape.metadata
    if isinstance(value, str) and shape.type_name == "string":
        failed = _size_constraints(len(value), shape)
        if "enum" in meta and value not in meta["enum"]:
            failed.append(f"Member must satisfy enum value set: [{', '.join(meta['enum'])}]")
        pattern = _pattern(meta.get("pattern"))
        if pattern is not None and not pattern.fullmatch(value):
            failed.append(f"Member must satisfy regular expression pattern: {meta['pattern']}")
        return failed
    numeric = shape.type_name in ("integer", "long", "float", "double")
    if numeric and isinstance(value, int | float) and not isinstance(value, bool):
        failed = []
        if "max" in meta and value > meta["max"]:
            failed.append(f"Member must have value less than or equal to {meta['max']}")
        if "min" in meta and value < meta["min"]:
            failed.append(f"Member must have value greater than or equal to {meta['min']}")
        return failed
    return []


def _described(shape: Shape) -> list[str]:
    """Every constraint of a map's key or value shape, as the service lists them."""
    meta = shape.metadata
    described = []
    if "max" in meta:
        described.append(f"Member must have length less than or equal to {meta['max']}")
    if "min" in meta:
        described.append(f"Member must have length greater than or equal to {meta['min']}")
    if "pattern" in meta:
        described.append(f"Member must satisfy regular expression pattern: {meta['pattern']}")
    return described


@functools.cache
def _pattern(source: str | None) -> re.Pattern[str] | None:
    """The service matches a whole value (Java's `matches`). Patterns Python's `re` cannot
    read (Unicode classes such as \\p{L}, lone surrogates) are left unchecked, not guessed."""
    if source is None:
        return None
    try:
        return re.compile(source)
    except re.error:
        return None


# -- rules the model cannot express ---------------------------------------------------------

# StoppingCondition.MaxRuntimeInSeconds: "The maximum value is 28 days."
MAX_RUNTIME_SECONDS = 28 * 24 * 3600


def check_request(operation: str, params: dict[str, Any]) -> None:
    """Raises the service's error when a request breaks a member constraint of the service
    model or a documented rule across members."""
    shape = service_model("sagemaker").operation_model(operation).input_shape
    error = constraint_errors(params, shape)
    if error is not None:
        raise error
    for rule in _REQUEST_RULES.get(operation, ()):
        rule(params)


def _training_volume_kms(params: dict[str, Any]) -> None:
    """ResourceConfig.VolumeKmsKeyId, API_ResourceConfig.html: "You can't request a
    VolumeKmsKeyId when using an instance type with local storage." """
    resources = params.get("ResourceConfig") or {}
    if resources.get("VolumeKmsKeyId") and any(
        _local_storage(t) for t in _training_instance_types(resources)
    ):
        raise validation(
            "You can't request a VolumeKmsKeyId when using an instance type with local storage."
        )


def _training_instance_types(resources: dict[str, Any]) -> list[str]:
    groups = resources.get("InstanceGroups") or []
    return [t for t in [resources.get("InstanceType"), *(g["InstanceType"] for g in groups)] if t]


def _managed_spot(params: dict[str, Any]) -> None:
    """StoppingCondition, API_StoppingCondition.html: MaxWaitTimeInSeconds "must be equal to or
    greater than MaxRuntimeInSeconds"; the service refuses it on a job without managed spot."""
    stopping = params.get("StoppingCondition") or {}
    runtime = stopping.get("MaxRuntimeInSeconds")
    wait = stopping.get("MaxWaitTimeInSeconds")
    if runtime is not None and runtime > MAX_RUNTIME_SECONDS:
        raise validation(
            f"1 validation error detected: Value '{runtime}' at "
            "'stoppingCondition.maxRuntimeInSeconds' failed to satisfy constraint: "
            f"Member must have value less than or equal to {MAX_RUNTIME_SECONDS}"
        )
    if not params.get("EnableManagedSpotTraining"):
        if wait is not None:
            raise validation(
                "Invalid MaxWaitTimeInSeconds. It is only supported when "
                "EnableManagedSpotTraining is set to true"
            )
        return
    if wait is None:
        raise validation(
            "MaxWaitTimeInSeconds is required when EnableManagedSpotTraining is set to true"
        )
    if runtime is not None and wait < runtime:
        raise validation(
            "Invalid MaxWaitTimeInSeconds. It must be equal to or greater than MaxRuntimeInSeconds"
        )


def _endpoint_config_kms(params: dict[str, Any]) -> None:
    """CreateEndpointConfig.KmsKeyId, API_CreateEndpointConfig.html: "If you specify a value
    for KmsKeyId when using any nitro-based instances with local storage, the call to
    CreateEndpointConfig fails." """
    types = [v.get("InstanceType") for v in params.get("ProductionVariants", [])]
    if params.get("KmsKeyId") and any(_local_storage(t) for t in types if t):
        raise validation(
            "You can't request a KmsKeyId when using an instance type with local storage."
        )


def _unique_variant_names(params: dict[str, Any]) -> None:
    names = [v["VariantName"] for v in params.get("ProductionVariants", [])]
    if len(set(names)) != len(names):
        raise validation("VariantName must be unique within an endpoint config.")


def _local_storage(instance_type: str) -> bool:
    try:
        return has_local_storage(instance_type)
    except ValueError:  # a valid enum value the contract's parser does not know (ml.p6-b200...)
        return False


_REQUEST_RULES: dict[str, tuple[Callable[[dict[str, Any]], None], ...]] = {
    "CreateTrainingJob": (_training_volume_kms, _managed_spot),
    "CreateEndpointConfig": (_endpoint_config_kms, _unique_variant_names),
}


# -- deployment guardrails (UpdateEndpoint with a DeploymentConfig) -------------------------

# (smallest, largest) share of a variant's instances per step, from the API reference:
# TrafficRoutingConfig.CanarySize "less than or equal to 50%", LinearStepSize "10-50%",
# RollingUpdatePolicy.MaximumBatchSize "between 5% to 50%" of the variant's total instance count.
_STEP_BOUNDS = {
    "CanarySize": (0.0, 0.5),
    "LinearStepSize": (0.1, 0.5),
    "MaximumBatchSize": (0.05, 0.5),
}


def check_deployment(deploy: dict[str, Any], current: dict[str, Any], new: dict[str, Any]) -> None:
    """Refuses an UpdateEndpoint whose DeploymentConfig SageMaker would refuse.

    `current` and `new` are DescribeEndpointConfig records of the live and the requested config.
    Exclusions: https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html
    """
    if not deploy:
        return
    blue_green, rolling = deploy.get("BlueGreenUpdatePolicy"), deploy.get("RollingUpdatePolicy")
    if blue_green and rolling:
        raise validation(
            "Only one update policy, BlueGreenUpdatePolicy or RollingUpdatePolicy, may be "
            "specified in DeploymentConfig."
        )
    old_variants, new_variants = current["ProductionVariants"], new["ProductionVariants"]
    old_names = sorted(v["VariantName"] for v in old_variants)
    new_names = sorted(v["VariantName"] for v in new_variants)
    if old_names != new_names:
        raise validation(
            f"The variant names of endpoint config {new['EndpointConfigName']} {new_names} must "
            f"be the same as those of the current endpoint config "
            f"{current['EndpointConfigName']} {old_names} for a blue/green or rolling deployment."
        )
    if rolling:
        _check_rolling_exclusions(old_variants, new_variants)
        _check_step("MaximumBatchSize", rolling["MaximumBatchSize"], new_variants)
    routing = (blue_green or {}).get("TrafficRoutingConfiguration") or {}
    field = {"CANARY": "CanarySize", "LINEAR": "LinearStepSize"}.get(routing.get("Type", ""))
    if field:
        if not routing.get(field):
            raise validation(f"{field} is required for a {routing['Type']} traffic routing.")
        _check_step(field, routing[field], new_variants)


def _check_rolling_exclusions(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    """Rolling deployments exclude serverless and multi-variant endpoints. (Both configs have
    the same variant names by now, so the new one's count is the old one's.)"""
    if any("ServerlessConfig" in v for v in old + new):
        raise validation("A rolling deployment is not supported for serverless endpoints.")
    if len(new) > 1:
        raise validation("A rolling deployment is not supported for multi-variant endpoints.")


def _check_step(field: str, size: dict[str, Any], variants: list[dict[str, Any]]) -> None:
    low, high = _STEP_BOUNDS[field]
    for variant in variants:
        instances = variant.get("InitialInstanceCount")
        if not instances:
            continue  # serverless: no instances to count
        if size["Type"] == "CAPACITY_PERCENT":
            share = size["Value"] / 100
        else:
            share = size["Value"] / instances
        if not low <= share <= high:
            bounds = f"{low:.0%}-{high:.0%}" if low else f"less than or equal to {high:.0%}"
            raise validation(
                f"{field} {size['Type']} {size['Value']} is invalid: the value must be {bounds} "
                f"of the variant's total instance count ({variant['VariantName']}: {instances})."
            )
