"""What SageMaker's state changes mean for the registry: the events close what the routes open.

- A training job that ended: DescribeTrainingJob says what became of it. A completed job
  whose metric clears its threshold becomes a new version (and a deployment, when the job
  asked for one); a failed job keeps SageMaker's own FailureReason and registers nothing.
- An endpoint that changed: DescribeEndpoint says which config is really live, the live
  variant gets its auto scaling, and the model's active deployment is closed as Succeeded,
  RolledBack or Failed.

Status, metrics, artifact and reason all come from SageMaker itself, never from the event,
and every write is conditional, so a replayed or duplicated event changes nothing.
"""

from __future__ import annotations

from typing import Any

from handlers.deployments import endpoint as deployed_endpoint
from handlers.deployments import service as deployments
from handlers.deployments.schemas import DeploymentSpec
from handlers.events.schemas import AutoDeployment, EndpointChange, Outcome, TrainingJobChange
from handlers.registry import service as registry
from handlers.registry.schemas import ModelOut
from handlers.shared import autoscaling, aws, registry_table
from handlers.shared.errors import ApiError
from handlers.shared.observability import logger
from maas_contract import artifacts as contract_artifacts
from maas_contract import names
from maas_contract.events import TRAINING_JOB_TERMINAL
from maas_contract.settings import HandlerSettings


def _clears(threshold: dict[str, Any] | None, metrics: dict[str, float]) -> tuple[bool, str]:
    if not threshold:
        return True, "no threshold set"
    name, wanted = threshold["metric"], float(threshold["value"])
    if name not in metrics:
        return False, f"metric {name} was not reported"
    value = metrics[name]
    if threshold.get("goal", "maximize") == "maximize":
        return value >= wanted, f"{name}={value} (needs >= {wanted})"
    return value <= wanted, f"{name}={value} (needs <= {wanted})"


def _end_job(job_id: str, attrs: dict[str, Any]) -> bool:
    attrs = {**attrs, "updated_at": registry_table.now_iso()}
    return registry_table.end_job(job_id, attrs, TRAINING_JOB_TERMINAL)


def _signature_uri(described: dict[str, Any]) -> str | None:
    """train.py writes the model's signature into its checkpoint folder, which SageMaker
    uploads to CheckpointConfig.S3Uri (network isolation or not), so the registry reads it
    there instead of opening model.tar.gz."""
    folder = (described.get("CheckpointConfig") or {}).get("S3Uri")
    return f"{folder.rstrip('/')}/{contract_artifacts.SIGNATURE_FILE}" if folder else None


def _register(job: dict[str, Any], described: dict[str, Any], metrics: dict[str, float]) -> None:
    """The job's model becomes a new version, and the job Completed, in one transaction."""
    artifact = (described.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    version_attrs = {
        "artifact_uri": artifact,
        "recipe": job["recipe"],
        "metrics": metrics,
        "input_schema": job.get("input_schema") or {"inputs": [], "outputs": []},
        "training_job": job["id"],
    }
    try:
        version_attrs = registry.pinned(version_attrs, _signature_uri(described))
    except ApiError as exc:
        if exc.status >= 500:
            raise  # EventBridge delivers the event again
        outcome = f"not registered: {exc.message}"
        _end_job(job["id"], {"status": "Completed", "metrics": metrics, "outcome": outcome})
        return

    def completion(version: int) -> list[dict[str, Any]]:
        attrs = {
            "status": "Completed",
            "metrics": metrics,
            "registered_version": version,
            "outcome": "registered",
            "updated_at": registry_table.now_iso(),
        }
        return [registry_table.job_completion(job["id"], attrs, TRAINING_JOB_TERMINAL)]

    prefix = HandlerSettings.from_env().resource_prefix
    try:
        version = registry.register(job["model"], prefix, version_attrs, also=completion)
    except ApiError as exc:
        if exc.status != 409:
            raise
        logger.info("job already completed by another delivery", extra={"job": job["id"]})
        return
    logger.info("version registered", extra={"job": job["id"], "version": version.version})


def _auto_deploy(job_id: str) -> AutoDeployment | None:
    """Starts the deployment a completed job asked for, once; also resumes one an earlier
    delivery registered the version for but did not start."""
    job = registry_table.get_job(job_id) or {}
    version = job.get("registered_version")
    if not job.get("auto_deploy") or version is None or job.get("deployment_id"):
        return None
    deployment_id = names.auto_deployment_id(job_id)
    if registry_table.get_deployment(job["model"], deployment_id) is None:
        try:
            spec = DeploymentSpec.stored(job["deployment"])
            deployments.start(
                job["model"], int(version), spec, kind="auto", deployment_id=deployment_id
            )
        except ApiError as exc:  # a lock held by another deployment, a refused config...
            registry_table.update(registry_table.job_key(job_id), {"deployment_error": exc.message})
            return AutoDeployment(deployment_error=exc.message)
    registry_table.update(registry_table.job_key(job_id), {"deployment_id": deployment_id})
    return AutoDeployment(deployment_id=deployment_id)


def on_training_job(change: TrainingJobChange) -> Outcome:
    job_id = change.job_name
    job = registry_table.get_job(job_id)
    if job is None:
        return Outcome(action="ignored", reason="not a maas job")
    if change.status not in TRAINING_JOB_TERMINAL:
        return Outcome(action="progress", status=change.status)
    described = aws.sagemaker().describe_training_job(TrainingJobName=job_id)
    status = str(described.get("TrainingJobStatus", ""))
    if status not in TRAINING_JOB_TERMINAL:  # an early, replayed or forged event
        logger.warning("event claims an end SageMaker does not", extra={"job": job_id})
        return Outcome(action="progress", status=status)
    metrics = {
        m["MetricName"]: float(m["Value"]) for m in described.get("FinalMetricDataList") or []
    }
    if status in ("Failed", "Stopped"):
        reason = described.get("FailureReason") or ("stopped" if status == "Stopped" else "unknown")
        changed = _end_job(job_id, {"status": status, "failure_reason": reason, "metrics": metrics})
        return Outcome(action="recorded" if changed else "replay", status=status)
    if job["status"] != "Completed":
        passed, why = _clears(job.get("metric_threshold"), metrics)
        if passed:
            _register(job, described, metrics)
        else:
            outcome = f"not registered: {why}"
            _end_job(job_id, {"status": "Completed", "metrics": metrics, "outcome": outcome})
    return Outcome(action="completed", deployment=_auto_deploy(job_id))


def on_endpoint(change: EndpointChange) -> Outcome:
    endpoint = change.endpoint_name
    prefix = HandlerSettings.from_env().resource_prefix
    name = names.model_of_endpoint(prefix, endpoint)
    found = registry_table.get_model(name) if name else None
    model = ModelOut.model_validate(found) if found else None
    if model is None or not model.active_deployment:
        return Outcome(action="ignored", reason="no deployment in progress")
    deployment_id = model.active_deployment
    deployment = registry_table.get_deployment(model.name, deployment_id) or {}
    live = aws.sagemaker().describe_endpoint(EndpointName=endpoint)
    status = live.get("EndpointStatus")
    if status == "InService" and live.get("EndpointConfigName") == deployment.get(
        "endpoint_config_name"
    ):
        # Scaling first: should it fail, the deployment stays open and a retry redoes both.
        spec = DeploymentSpec.stored(deployment["spec"])
        autoscaling.apply(endpoint, deployed_endpoint.scaling(spec))
        previous = model.live_version
        closed = deployments.close(
            model.name,
            deployment_id,
            "Succeeded",
            live_version=int(deployment["version"]),
            previous_version=previous if previous != deployment["version"] else None,
        )
    elif status == "InService":
        kept = deployed_endpoint.live_spec(model)
        if kept is not None:  # the update may have deregistered the variant: scale it again
            autoscaling.apply(endpoint, deployed_endpoint.scaling(kept))
        reason = live.get("FailureReason") or "SageMaker kept the previous endpoint config"
        closed = deployments.close(model.name, deployment_id, "RolledBack", reason=reason)
    elif status == "Failed":
        reason = live.get("FailureReason") or "endpoint failed"
        closed = deployments.close(model.name, deployment_id, "Failed", reason=reason)
    else:
        return Outcome(action="progress", status=status)
    return Outcome(action="closed" if closed else "replay", status=status)
