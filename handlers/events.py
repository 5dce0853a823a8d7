"""EventBridge handler for SageMaker state changes: it closes the loop the routes open.

- "SageMaker Training Job State Change": the event names the job; DescribeTrainingJob says
  what became of it. A completed job whose metric clears its threshold becomes a new version
  (and a deployment, when the job asked for one); a failed job keeps SageMaker's own
  FailureReason and registers nothing.
- "SageMaker Endpoint State Change": DescribeEndpoint says which config is really live, the
  live variant gets its auto scaling, and the model's active deployment is closed as
  Succeeded, RolledBack or Failed.

Only names are taken from an event. AWS's documented training event carries neither the
final metrics nor the failure reason, and anything that may put events on the bus could
forge the rest, so status, metrics, artifact and reason all come from SageMaker itself.
https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html

Every write is conditional, so a replayed or duplicated event changes nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

import handlers
from handlers import autoscaling, aws, deploy, store, training, versions
from handlers.config import Settings
from handlers.errors import ApiError
from handlers.web import logger, tracer

TRAINING = "SageMaker Training Job State Change"
ENDPOINT = "SageMaker Endpoint State Change"


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
    """Moves a job to a final state once; False when an earlier event already did."""
    try:
        store.update(
            training.job_key(job_id),
            {**attrs, "updated_at": store.now_iso()},
            condition="NOT #status IN (:c, :f, :s)",
            condition_values={":c": "Completed", ":f": "Failed", ":s": "Stopped"},
        )
    except ApiError as exc:
        if exc.status == 409:
            return False
        raise
    return True


def _job_completion(job: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
    """The job's final update, as a transaction item that commits with the registration."""
    values = {f":{k}": v for k, v in attrs.items()}
    values.update({":c": "Completed", ":f": "Failed", ":s": "Stopped"})
    return {
        "Update": {
            "TableName": store.table(),
            "Key": training.job_key(job["id"]),
            "UpdateExpression": "SET " + ", ".join(f"#{k} = :{k}" for k in attrs),
            "ConditionExpression": "NOT #status IN (:c, :f, :s)",
            "ExpressionAttributeNames": {f"#{k}": k for k in [*attrs, "status"]},
            "ExpressionAttributeValues": store.serialize(values),
        }
    }


def _register(job: dict[str, Any], described: dict[str, Any], metrics: dict[str, float]) -> None:
    artifact = (described.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    version_attrs = {
        "artifact_uri": artifact,
        "recipe": job["recipe"],
        "metrics": metrics,
        "input_schema": job.get("input_schema") or {"inputs": [], "outputs": []},
        "training_job": job["id"],
    }

    def completion(version: int) -> list[dict[str, Any]]:
        return [
            _job_completion(
                job,
                {
                    "status": "Completed",
                    "metrics": metrics,
                    "registered_version": version,
                    "outcome": "registered",
                    "updated_at": store.now_iso(),
                },
            )
        ]

    try:
        item = versions.register(
            job["model"],
            Settings.from_env().endpoint_name(job["model"]),
            version_attrs,
            extra=completion,
        )
    except ApiError as exc:
        if exc.status != 409:
            raise
        logger.info("job already completed by another delivery", extra={"job": job["id"]})
        return
    logger.info("version registered", extra={"job": job["id"], "version": item["version"]})


def _auto_deploy(job_id: str) -> dict[str, Any] | None:
    job = store.get_item(training.job_key(job_id)) or {}
    version = job.get("registered_version")
    if not job.get("auto_deploy") or version is None or job.get("deployment_id"):
        return None
    deployment_id = "j" + hashlib.sha256(job_id.encode()).hexdigest()[:11]
    if store.get_item(deploy.deployment_key(job["model"], deployment_id)) is None:
        try:
            deploy.start(
                job["model"],
                int(version),
                dict(job["deployment"]),
                kind="auto",
                deployment_id=deployment_id,
            )
        except ApiError as exc:  # a lock held by another deployment, a refused config...
            store.update(training.job_key(job_id), {"deployment_error": exc.message})
            return {"deployment_error": exc.message}
    store.update(training.job_key(job_id), {"deployment_id": deployment_id})
    return {"deployment_id": deployment_id}


def on_training_job(detail: dict[str, Any]) -> dict[str, Any]:
    job_id = str(detail.get("TrainingJobName", ""))
    job = store.get_item(training.job_key(job_id))
    if job is None:
        return {"action": "ignored", "reason": "not a maas job"}
    if detail.get("TrainingJobStatus") not in training.TERMINAL:
        return {"action": "progress", "status": str(detail.get("TrainingJobStatus", ""))}
    described = aws.sagemaker().describe_training_job(TrainingJobName=job_id)
    status = str(described.get("TrainingJobStatus", ""))
    if status not in training.TERMINAL:  # an early, replayed or forged event
        logger.warning("event claims an end SageMaker does not", extra={"job": job_id})
        return {"action": "progress", "status": status}
    metrics = {
        m["MetricName"]: float(m["Value"]) for m in described.get("FinalMetricDataList") or []
    }
    if status in ("Failed", "Stopped"):
        reason = described.get("FailureReason") or ("stopped" if status == "Stopped" else "unknown")
        changed = _end_job(job_id, {"status": status, "failure_reason": reason, "metrics": metrics})
        return {"action": "recorded" if changed else "replay", "status": status}
    if job["status"] != "Completed":
        passed, why = _clears(job.get("metric_threshold"), metrics)
        if passed:
            _register(job, described, metrics)
        else:
            _end_job(
                job_id,
                {"status": "Completed", "metrics": metrics, "outcome": f"not registered: {why}"},
            )
    deployed = _auto_deploy(job_id)  # also resumes a deployment an earlier attempt missed
    return {"action": "completed", "deployment": deployed}


def on_endpoint(detail: dict[str, Any]) -> dict[str, Any]:
    endpoint = str(detail.get("EndpointName", ""))
    prefix = f"{Settings.from_env().resource_prefix}-"
    model = store.get_model(endpoint[len(prefix) :]) if endpoint.startswith(prefix) else None
    if model is None or not model.get("active_deployment"):
        return {"action": "ignored", "reason": "no deployment in progress"}
    deployment_id = model["active_deployment"]
    deployment = store.get_item(deploy.deployment_key(model["name"], deployment_id)) or {}
    live = aws.sagemaker().describe_endpoint(EndpointName=endpoint)
    status = live.get("EndpointStatus")
    if status == "InService" and live.get("EndpointConfigName") == deployment.get(
        "endpoint_config_name"
    ):
        # Scaling first: should it fail, the deployment stays open and a retry redoes both.
        autoscaling.apply(endpoint, autoscaling.Scaling.of(deploy.full_spec(deployment["spec"])))
        previous = model.get("live_version")
        closed = deploy.close(
            model["name"],
            deployment_id,
            "Succeeded",
            live_version=int(deployment["version"]),
            previous_version=previous if previous != deployment["version"] else None,
        )
    elif status == "InService":
        kept = deploy.live_spec(model)
        if kept is not None:  # the update may have deregistered the variant: scale it again
            autoscaling.apply(endpoint, autoscaling.Scaling.of(kept))
        reason = live.get("FailureReason") or "SageMaker kept the previous endpoint config"
        closed = deploy.close(model["name"], deployment_id, "RolledBack", reason=reason)
    elif status == "Failed":
        reason = live.get("FailureReason") or "endpoint failed"
        closed = deploy.close(model["name"], deployment_id, "Failed", reason=reason)
    else:
        return {"action": "progress", "status": status}
    return {"action": "closed" if closed else "replay", "status": status}


@logger.inject_lambda_context(correlation_id_path="id")
@tracer.capture_lambda_handler(capture_response=False)
def _handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("source") != "aws.sagemaker":
        return {"action": "ignored", "reason": "not a SageMaker event"}
    detail = event.get("detail") or {}
    if event.get("detail-type") == TRAINING:
        result = on_training_job(detail)
    elif event.get("detail-type") == ENDPOINT:
        result = on_endpoint(detail)
    else:
        result = {"action": "ignored", "reason": f"detail-type {event.get('detail-type')}"}
    logger.info("event handled", extra=result)
    return result


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    from handlers.web import _LocalContext

    return _handle(event, context if context is not None else _LocalContext())


handlers.loaded()
