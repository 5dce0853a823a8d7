"""SageMaker training-job events through handlers.events.routes.handler, against moto.

The events are AWS's documented sample (tests/events/aws_training_job_state_change.json, from
https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html),
with only the job's name and status changed. That sample carries no FinalMetricDataList, and
FailureReason only on failures, so the handler asks DescribeTrainingJob; its answer is
scripted here (moto's own says every job has completed).
"""

from __future__ import annotations

import copy

import pytest

from handlers.events import routes as events
from handlers.registry import routes as registry
from handlers.training_jobs import routes as training_jobs
from tests.handlers.support import (
    ADMIN,
    ARTIFACTS,
    api_event,
    call,
    deployment_body,
    load_event,
    put_artifact,
    training_body,
    training_event,
)

SAMPLE = "aws_training_job_state_change.json"


def start_job(context, **overrides):
    reply = call(training_jobs, training_event(training_body(**overrides)), context)
    assert reply.status == 201
    return reply.body["id"]


def job_event(job_id, status="Completed", **detail):
    event = copy.deepcopy(load_event(SAMPLE))
    event["detail"].update(
        TrainingJobName=job_id, TrainingJobStatus=status, SecondaryStatus=status, **detail
    )
    return event


def artifact(job_id):
    return f"s3://{ARTIFACTS}/training/demo/{job_id}/output/model.tar.gz"


def described(job_id, status="Completed", accuracy=0.97, **extra):
    """DescribeTrainingJob's answer for a job that ended as `status`."""
    answer = {
        "TrainingJobName": job_id,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{job_id}",
        "TrainingJobStatus": status,
        "SecondaryStatus": status,
        "FinalMetricDataList": [
            {"MetricName": "train:loss", "Value": 0.12, "Timestamp": 0},
            {"MetricName": "validation:accuracy", "Value": accuracy, "Timestamp": 0},
        ],
        **extra,
    }
    if status == "Completed":
        answer["ModelArtifacts"] = {"S3ModelArtifacts": put_artifact(artifact(job_id))}
    return answer


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


def test_a_completed_job_becomes_a_version_with_sagemakers_metrics_and_artifact(
    sagemaker_calls, lambda_context
):
    job_id = start_job(lambda_context)
    sagemaker_calls.answers["DescribeTrainingJob"] = described(job_id)
    event = job_event(job_id)
    assert "FinalMetricDataList" not in event["detail"]  # as AWS documents the event

    result = events.handler(event, lambda_context)

    assert result["action"] == "completed"
    assert sagemaker_calls.last("DescribeTrainingJob") == {"TrainingJobName": job_id}
    listing = versions(lambda_context)
    assert [v["version"] for v in listing.body["items"]] == [1]
    version = listing.body["items"][0]
    assert version["artifact_uri"] == artifact(job_id)
    assert version["metrics"] == {"train:loss": 0.12, "validation:accuracy": 0.97}
    assert version["training_job"] == job_id
    job = read_job(job_id, lambda_context)
    assert (job["status"], job["registered_version"]) == ("Completed", 1)


@pytest.mark.parametrize("truth", ["InProgress", "Failed"])
def test_a_forged_completion_registers_nothing(sagemaker_calls, lambda_context, truth):
    """Anyone who may put events on the bus could claim a job completed with any metric and
    any artifact; only SageMaker's own answer counts."""
    job_id = start_job(lambda_context)
    sagemaker_calls.answers["DescribeTrainingJob"] = described(
        job_id, truth, accuracy=0.2, FailureReason="AlgorithmError: out of memory"
    )
    forged = job_event(
        job_id,
        ModelArtifacts={"S3ModelArtifacts": "s3://attacker-bucket/evil/model.tar.gz"},
        FinalMetricDataList=[{"MetricName": "validation:accuracy", "Value": 1.0}],
    )

    events.handler(forged, lambda_context)

    assert versions(lambda_context).status == 404
    job = read_job(job_id, lambda_context)
    assert (job["status"], job["registered_version"]) == (truth, None)


def test_a_failed_job_keeps_sagemakers_reason_and_registers_no_version(
    sagemaker_calls, lambda_context
):
    job_id = start_job(lambda_context)
    reason = "AlgorithmError: ExecuteUserScriptError: no *.npz files in the train channel"
    sagemaker_calls.answers["DescribeTrainingJob"] = described(
        job_id, "Failed", FailureReason=reason
    )

    result = events.handler(job_event(job_id, "Failed"), lambda_context)

    assert result == {"action": "recorded", "status": "Failed"}
    job = read_job(job_id, lambda_context)
    assert (job["status"], job["failure_reason"]) == ("Failed", reason)
    assert versions(lambda_context).status == 404


def test_a_progress_event_asks_sagemaker_nothing_and_changes_nothing(
    sagemaker_calls, lambda_context
):
    job_id = start_job(lambda_context)

    result = events.handler(job_event(job_id, "InProgress"), lambda_context)

    assert result == {"action": "progress", "status": "InProgress"}
    assert "DescribeTrainingJob" not in sagemaker_calls.requests


def test_a_replayed_completion_registers_nothing_new(sagemaker_calls, lambda_context):
    job_id = start_job(lambda_context)
    sagemaker_calls.answers["DescribeTrainingJob"] = described(job_id)

    events.handler(job_event(job_id), lambda_context)
    events.handler(job_event(job_id), lambda_context)

    assert [v["version"] for v in versions(lambda_context).body["items"]] == [1]


def test_a_completed_job_below_its_threshold_registers_no_version(sagemaker_calls, lambda_context):
    job_id = start_job(
        lambda_context, metric_threshold={"metric": "validation:accuracy", "value": 0.99}
    )
    sagemaker_calls.answers["DescribeTrainingJob"] = described(job_id)

    events.handler(job_event(job_id), lambda_context)

    job = read_job(job_id, lambda_context)
    assert job["status"] == "Completed"
    assert job["registered_version"] is None
    assert "not registered" in job["outcome"]
    assert versions(lambda_context).status == 404


def test_a_completed_job_with_auto_deploy_starts_a_deployment(sagemaker_calls, lambda_context):
    spec = deployment_body(1)
    spec.pop("version")
    job_id = start_job(lambda_context, auto_deploy=True, deployment=spec)
    sagemaker_calls.answers["DescribeTrainingJob"] = described(job_id)

    events.handler(job_event(job_id), lambda_context)
    replay = events.handler(job_event(job_id), lambda_context)

    job = read_job(job_id, lambda_context)
    assert job["deployment_id"]
    assert "deployment" not in replay  # nothing started this time
    assert len(sagemaker_calls.requests["CreateEndpoint"]) == 1


def test_events_from_other_jobs_and_sources_are_ignored(sagemaker_calls, lambda_context):
    foreign = job_event("someone-elses-job")
    other_source = dict(foreign, source="aws.ec2")

    assert events.handler(foreign, lambda_context)["action"] == "ignored"
    assert events.handler(other_source, lambda_context)["action"] == "ignored"
    assert "DescribeTrainingJob" not in sagemaker_calls.requests
