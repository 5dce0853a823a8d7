"""UpdateEndpoint: bring up the new fleet, shift traffic as the DeploymentConfig says, or roll back.

Blue/green as SageMaker does it: the new config's variants start beside the old ones; traffic
moves in steps (CANARY: `CanarySize`, then all; LINEAR: `LinearStepSize` at a time;
ALL_AT_ONCE), each held for `WaitIntervalInSeconds`, the last for `TerminationWaitInSeconds`.
Waits are multiplied by the emulator's time scale. With `AutoRollbackConfiguration` alarms, the
alarm is emulated as "the new fleet's error rate exceeds the threshold": then traffic returns to
the old fleet, the endpoint goes back to `InService` on the old config, and `FailureReason` says
why. Without a DeploymentConfig the new fleet takes all traffic as soon as it is up.
"""

from __future__ import annotations

import time
from typing import Any

from maas_local.sagemaker.fleet import Fleet, LoadError
from maas_local.sagemaker.protocol import AwsError, now


def traffic_steps(config: dict[str, Any], new_instances: int, scale: float) -> list[tuple]:
    """[(share of traffic on the new fleet, seconds to hold it)], ending at share 1.0."""
    policy = config.get("BlueGreenUpdatePolicy") or {}
    routing = policy.get("TrafficRoutingConfiguration") or {}
    wait = routing.get("WaitIntervalInSeconds", 0) * scale
    bake = policy.get("TerminationWaitInSeconds", 0) * scale

    def fraction(size: dict[str, Any]) -> float:
        if size.get("Type") == "CAPACITY_PERCENT":
            return min(1.0, size["Value"] / 100.0)
        return min(1.0, size.get("Value", 1) / max(1, new_instances))

    kind = routing.get("Type", "ALL_AT_ONCE")
    if kind == "CANARY":
        return [(fraction(routing.get("CanarySize") or {}), wait), (1.0, bake)]
    if kind == "LINEAR":
        step = fraction(routing.get("LinearStepSize") or {}) or 1.0
        shares = [min(1.0, step * i) for i in range(1, int(1 / step + 0.999) + 1)]
        return [(s, wait) for s in shares[:-1]] + [(1.0, bake)]
    return [(1.0, bake)]


def _alarm(fleet: Fleet, alarms: list[dict[str, str]], threshold: float) -> str | None:
    """The emulated CloudWatch alarm: the new fleet's invocation error rate."""
    if not alarms:
        return None
    errors, calls = fleet.error_counts()
    if errors and errors / max(1, calls) > threshold:
        names = ", ".join(a["AlarmName"] for a in alarms)
        return f"{names} in ALARM: {errors} of {calls} invocations failed on the new fleet"
    return None


def _hold(endpoint: Any, fleet: Fleet, seconds: float, alarms: list, threshold: float):
    """Holds a traffic step; returns the alarm reason if it fired meanwhile."""
    deadline = time.monotonic() + seconds
    while True:
        reason = _alarm(fleet, alarms, threshold)
        if reason or endpoint.deleted.is_set() or time.monotonic() >= deadline:
            return reason
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


def roll_out(endpoints: Any, endpoint: Any, config: dict[str, Any], deploy: dict) -> None:
    ctx = endpoints.ctx
    try:
        fleet = endpoints.build_fleet(endpoint, config)
        fleet.start(ctx.load_timeout_s)
    except (LoadError, AwsError) as exc:
        _roll_back(endpoints, endpoint, None, f"Failed to update endpoint: {exc}")
        return
    with endpoint.lock:
        if endpoint.deleted.is_set():
            fleet.stop()
            return
        endpoint.pending, endpoint.share, endpoint.pending_since = fleet, 0.0, now()
    instances = sum(v.instances for v in fleet.variants.values())
    alarms = (deploy.get("AutoRollbackConfiguration") or {}).get("Alarms", [])
    if not deploy:
        alarms = []
    steps = traffic_steps(deploy, instances, ctx.time_scale)
    for number, (share, seconds) in enumerate(steps):
        with endpoint.lock:
            endpoint.share = share
        if deploy:
            _announce(endpoints, endpoint, share, instances, seconds, last=number == len(steps) - 1)
        reason = _hold(endpoint, fleet, seconds, alarms, ctx.canary_error_threshold)
        if endpoint.deleted.is_set():
            fleet.stop()
            return
        if reason:
            _roll_back(endpoints, endpoint, fleet, f"Deployment rolled back: {reason}")
            return
    with endpoint.lock:
        old, endpoint.live, endpoint.pending, endpoint.share = endpoint.live, fleet, None, 0.0
        endpoint.record["EndpointConfigName"] = fleet.config_name
        endpoints.set_status(endpoint, "InService")
    if old is not None:
        endpoints.retire(old)


def _announce(
    endpoints: Any, endpoint: Any, share: float, instances: int, seconds: float, *, last: bool
) -> None:
    """Endpoint deployment state changes, worded as in AWS's documented canary sample."""
    emit = endpoints.ctx.emit_deployment
    describe, tags = endpoints.describe(endpoint.name), endpoint.tags
    serving = max(1, round(share * instances))
    capacity = "full" if last else "canary"
    if not last:
        emit(
            describe,
            tags,
            stage="ActivatingTraffic",
            message=f"Activating traffic on canary capacity of {serving} instance(s).",
        )
    emit(
        describe,
        tags,
        stage="Baking",
        message=f"Baking for {seconds:g} seconds with traffic enabled on {capacity} capacity "
        f"of {serving} instance(s).",
    )


def _roll_back(endpoints: Any, endpoint: Any, fleet: Fleet | None, reason: str) -> None:
    if fleet is not None and endpoint.pending is fleet:
        instances = sum(v.instances for v in fleet.variants.values())
        endpoints.ctx.emit_deployment(
            endpoints.describe(endpoint.name),
            endpoint.tags,
            stage="Deleting",
            message=f"Terminating {instances} instance(s).",
        )
    with endpoint.lock:
        endpoint.pending, endpoint.share = None, 0.0
        endpoint.record["FailureReason"] = reason[:1024]
        endpoints.set_status(endpoint, "InService")
    if fleet is not None:
        endpoints.retire(fleet)
