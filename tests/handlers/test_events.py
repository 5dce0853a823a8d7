"""SageMaker training-job events through handlers.events.handler, against moto."""

from __future__ import annotations

import copy

from handler_support import (
    ADMIN,
    api_event,
    call,
    deployment_body,
    load_event,
    training_body,
    training_event,
)

from handlers import events, registry, training_jobs


def start_job(context, **overrides):
    reply = call(training_jobs, training_event(training_body(**overrides)), context)
    assert reply.status == 201
    return reply.body["id"]


def job_event(name, job_id, **detail):
    event = copy.deepcopy(load_event(name))
    event["detail"]["TrainingJobName"] = job_id
    event["detail"].update(detail)
    return event


def read_job(job_id, context):
    return call(
        training_jobs,
        api_event(
            "GET", "/v1/training-jobs/{job_id}", path_params={"job_id": job_id}, scopes=ADMIN
        ),
        context,
    ).body


def versions(context):
    return call(
        registry,
        api_event("GET", "/v1/models/{model}/versions", path_params={"model": "demo"}),
        context,
    )


def test_a_completed_job_that_clears_its_threshold_becomes_a_version(
    sagemaker_calls, lambda_context
):
    job_id = start_job(lambda_context)
    event = job_event("training_job_completed.json", job_id)

    result = events.handler(event, lambda_context)

    assert result["action"] == "completed"
    listing = versions(lambda_context)
    assert [v["version"] for v in listing.body["items"]] == [1]
    version = listing.body["items"][0]
    assert version["artifact_uri"] == event["detail"]["ModelArtifacts"]["S3ModelArtifacts"]
    assert version["metrics"]["validation:accuracy"] == 0.97
    assert version["training_job"] == job_id
    job = read_job(job_id, lambda_context)
    assert (job["status"], job["registered_version"]) == ("Completed", 1)


def test_a_replayed_completion_registers_nothing_new(sagemaker_calls, lambda_context):
    job_id = start_job(lambda_context)
    event = job_event("training_job_completed.json", job_id)

    events.handler(event, lambda_context)
    events.handler(event, lambda_context)

    assert [v["version"] for v in versions(lambda_context).body["items"]] == [1]


def test_a_completed_job_below_its_threshold_registers_no_version(sagemaker_calls, lambda_context):
    job_id = start_job(
        lambda_context, metric_threshold={"metric": "validation:accuracy", "value": 0.99}
    )

    events.handler(job_event("training_job_completed.json", job_id), lambda_context)

    job = read_job(job_id, lambda_context)
    assert job["status"] == "Completed"
    assert job["registered_version"] is None
    assert "not registered" in job["outcome"]
    assert versions(lambda_context).status == 404


def test_a_failed_job_keeps_sagemakers_reason_and_registers_no_version(
    sagemaker_calls, lambda_context
):
    job_id = start_job(lambda_context)
    event = job_event("training_job_failed.json", job_id)

    result = events.handler(event, lambda_context)

    assert result == {"action": "recorded", "status": "Failed"}
    job = read_job(job_id, lambda_context)
    assert job["status"] == "Failed"
    assert job["failure_reason"] == event["detail"]["FailureReason"]
    assert versions(lambda_context).status == 404


def test_a_completed_job_with_auto_deploy_starts_a_deployment(sagemaker_calls, lambda_context):
    spec = deployment_body(1)
    spec.pop("version")
    job_id = start_job(lambda_context, auto_deploy=True, deployment=spec)

    events.handler(job_event("training_job_completed.json", job_id), lambda_context)
    replay = events.handler(job_event("training_job_completed.json", job_id), lambda_context)

    job = read_job(job_id, lambda_context)
    assert job["deployment_id"]
    assert replay["deployment"] is None
    assert len(sagemaker_calls.requests["CreateEndpoint"]) == 1


def test_events_from_other_jobs_and_sources_are_ignored(aws_backend, lambda_context):
    foreign = job_event("training_job_completed.json", "someone-elses-job")
    other_source = dict(foreign, source="aws.ec2")

    assert events.handler(foreign, lambda_context)["action"] == "ignored"
    assert events.handler(other_source, lambda_context)["action"] == "ignored"
