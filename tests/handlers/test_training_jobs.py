"""Training-job routes through handlers.training_jobs.routes.handler, against moto."""

from __future__ import annotations

import pytest

from handlers.training_jobs import routes as training_jobs
from tests.handlers.support import (
    ADMIN,
    ARTIFACTS,
    DATA,
    KMS,
    api_event,
    call,
    error_of,
    parallel_calls,
    session,
    training_body,
    training_event,
)


def test_starting_a_job_sets_every_guardrail_on_create_training_job(
    sagemaker_calls, lambda_context
):
    reply = call(training_jobs, training_event(training_body()), lambda_context)

    assert reply.status == 201
    sent = sagemaker_calls.last("CreateTrainingJob")
    assert sent["TrainingJobName"] == reply.body["id"]
    assert sent["TrainingJobName"].startswith("maas-test-demo-")
    assert len(sent["TrainingJobName"]) <= 63
    assert sent["EnableNetworkIsolation"] is True
    assert sent["EnableManagedSpotTraining"] is True
    assert sent["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert sent["OutputDataConfig"]["KmsKeyId"] == KMS
    assert sent["ResourceConfig"]["InstanceType"] == "ml.g4dn.xlarge"
    assert sent["CheckpointConfig"]["S3Uri"].startswith("s3://maas-test-artifacts/checkpoints/")
    assert sent["EnableInterContainerTrafficEncryption"] is False
    names = [m["Name"] for m in sent["AlgorithmSpecification"]["MetricDefinitions"]]
    assert "validation:accuracy" in names
    hps = sent["HyperParameters"]
    assert hps["sagemaker_program"] == "train.py"
    assert hps["recipe"] == "image-cnn"
    assert (hps["epochs"], hps["lr"], hps["amp"]) == ("3", "0.001", "true")
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in sent["InputDataConfig"]
    }
    assert channels["train"] == f"s3://{DATA}/mnist/train/"
    assert channels["code"] == "s3://maas-test-artifacts/code/sourcedir.tar.gz"
    assert hps["sagemaker_submit_directory"] == "/opt/ml/input/data/code/sourcedir.tar.gz"


@pytest.mark.parametrize(
    "instance_type,volume_key",
    [("ml.g4dn.xlarge", False), ("ml.p3.2xlarge", True)],
)
def test_the_volume_key_is_set_only_on_instance_types_without_local_storage(
    sagemaker_calls, lambda_context, instance_type, volume_key
):
    """CreateTrainingJob refuses ResourceConfig.VolumeKmsKeyId for instance types with local
    NVMe storage ("You can't request a VolumeKmsKeyId when using an instance type with local
    storage"); the output stays encrypted with the platform key either way.
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ResourceConfig.html
    https://docs.aws.amazon.com/sagemaker/latest/dg/host-instance-storage.html"""
    body = training_body(instance_type=instance_type)

    reply = call(training_jobs, training_event(body), lambda_context)

    assert reply.status == 201
    sent = sagemaker_calls.last("CreateTrainingJob")
    assert ("VolumeKmsKeyId" in sent["ResourceConfig"]) is volume_key
    if volume_key:
        assert sent["ResourceConfig"]["VolumeKmsKeyId"] == KMS
    assert sent["OutputDataConfig"]["KmsKeyId"] == KMS


def test_a_job_without_an_instance_type_runs_on_the_stages_training_instance_type(
    sagemaker_calls, lambda_context, monkeypatch
):
    """The default comes from the stage (cdk.json `training_instance_type`, passed to the
    handlers as TRAINING_INSTANCE_TYPE), not from a type written into the request schema."""
    monkeypatch.setenv("TRAINING_INSTANCE_TYPE", "ml.p3.2xlarge")
    body = training_body()
    body.pop("instance_type")

    reply = call(training_jobs, training_event(body), lambda_context)

    assert reply.status == 201
    assert reply.body["instance_type"] == "ml.p3.2xlarge"
    assert sagemaker_calls.last("CreateTrainingJob")["ResourceConfig"]["InstanceType"] == (
        "ml.p3.2xlarge"
    )


def test_a_multi_instance_job_encrypts_inter_container_traffic_and_runs_torch_distributed(
    sagemaker_calls, lambda_context
):
    reply = call(training_jobs, training_event(training_body(instance_count=2)), lambda_context)

    assert reply.status == 201
    sent = sagemaker_calls.last("CreateTrainingJob")
    assert sent["EnableInterContainerTrafficEncryption"] is True
    assert sent["HyperParameters"]["sagemaker_torch_distributed_enabled"] == "true"


def test_a_started_job_can_be_read_and_listed(sagemaker_calls, lambda_context):
    job_id = call(training_jobs, training_event(training_body()), lambda_context).body["id"]

    one = call(
        training_jobs,
        api_event(
            "GET", "/v1/training-jobs/{job_id}", path_params={"job_id": job_id}, scopes=ADMIN
        ),
        lambda_context,
    )
    listing = call(
        training_jobs, api_event("GET", "/v1/training-jobs", scopes=ADMIN), lambda_context
    )

    assert one.status == 200
    assert one.body["status"] == "InProgress"
    # as given, so that a client re-attaching knows how many epochs to expect
    assert one.body["hyperparameters"] == {"epochs": 3, "lr": 0.001, "amp": True}
    assert [j["id"] for j in listing.body["items"]] == [job_id]


def test_stopping_a_job_calls_stop_training_job(sagemaker_calls, lambda_context):
    job_id = call(training_jobs, training_event(training_body()), lambda_context).body["id"]
    sagemaker_calls.answers["StopTrainingJob"] = {}  # moto does not implement it

    reply = call(
        training_jobs,
        api_event(
            "DELETE", "/v1/training-jobs/{job_id}", path_params={"job_id": job_id}, scopes=ADMIN
        ),
        lambda_context,
    )

    assert reply.status == 202
    assert sagemaker_calls.last("StopTrainingJob")["TrainingJobName"] == job_id


def test_stopping_a_job_that_has_just_ended_is_a_409(sagemaker_calls, lambda_context):
    """The table still says InProgress (the job's end has not arrived yet) when SageMaker
    refuses to stop it: a refusal that depends on the job's state is a 409, never a 400."""
    from botocore.exceptions import ClientError

    job_id = call(training_jobs, training_event(training_body()), lambda_context).body["id"]
    ended = f"The training job {job_id} is not in progress; it cannot be stopped"

    def refuse() -> None:
        error = {"Code": "ValidationException", "Message": ended}
        raise ClientError({"Error": error}, "StopTrainingJob")

    sagemaker_calls.answers["StopTrainingJob"] = refuse

    reply = call(
        training_jobs,
        api_event(
            "DELETE", "/v1/training-jobs/{job_id}", path_params={"job_id": job_id}, scopes=ADMIN
        ),
        lambda_context,
    )

    assert reply.status == 409
    assert error_of(reply).code == "Conflict"
    assert ended in error_of(reply).message


def test_an_unknown_job_is_a_404(aws_backend, lambda_context):
    reply = call(
        training_jobs,
        api_event(
            "GET", "/v1/training-jobs/{job_id}", path_params={"job_id": "nope"}, scopes=ADMIN
        ),
        lambda_context,
    )

    assert reply.status == 404


def test_a_cpu_instance_is_refused(sagemaker_calls, lambda_context):
    reply = call(
        training_jobs, training_event(training_body(instance_type="ml.m5.xlarge")), lambda_context
    )

    assert reply.status == 400
    assert "GPU" in error_of(reply).message
    assert "CreateTrainingJob" not in sagemaker_calls.requests


def test_a_dataset_outside_the_data_bucket_is_refused(sagemaker_calls, lambda_context):
    body = training_body(datasets={"train": "s3://someone-elses-bucket/data/"})

    reply = call(training_jobs, training_event(body), lambda_context)

    assert reply.status == 400
    assert "CreateTrainingJob" not in sagemaker_calls.requests


def test_a_malformed_dataset_uri_is_a_400(aws_backend, lambda_context):
    reply = call(
        training_jobs,
        training_event(training_body(datasets={"train": "/etc/passwd"})),
        lambda_context,
    )

    assert reply.status == 400


# Whitespace to one regex dialect and not another: U+0085 is \s to Python and Rust (pydantic)
# but not to ECMAScript (JSON Schema), U+FEFF to ECMAScript only, U+001C to Python only.
@pytest.mark.parametrize("space", ["\x85", "\ufeff", "\x1c", "\u3000"])
def test_a_dataset_uri_with_whitespace_of_any_dialect_is_refused_as_the_document_says(
    sagemaker_calls, lambda_context, space
):
    import re

    from handlers.meta import rules
    from handlers.training_jobs.schemas import S3_URI

    uri = f"s3://{DATA}/digits{space}/train/"
    served: dict = {"Datasets": {"properties": {"train": {}}}}
    rules.for_stage(served, ARTIFACTS, DATA, [])

    reply = call(
        training_jobs, training_event(training_body(datasets={"train": uri})), lambda_context
    )

    assert reply.status == 400
    assert "CreateTrainingJob" not in sagemaker_calls.requests
    assert not re.search(S3_URI, uri)  # the committed document's pattern
    assert not re.search(served["Datasets"]["properties"]["train"]["pattern"], uri)  # served


def test_an_unknown_threshold_metric_is_refused(sagemaker_calls, lambda_context):
    body = training_body(metric_threshold={"metric": "validation:f1", "value": 0.5})

    assert call(training_jobs, training_event(body), lambda_context).status == 400


def test_starting_a_job_needs_an_idempotency_key(sagemaker_calls, lambda_context):
    reply = call(training_jobs, training_event(training_body(), key=None), lambda_context)

    assert reply.status == 400
    assert error_of(reply).code == "IdempotencyKeyMissing"


def test_training_routes_need_the_admin_scope(aws_backend, lambda_context):
    start = call(
        training_jobs, training_event(training_body(), scopes="maas/invoke"), lambda_context
    )
    listing = call(
        training_jobs, api_event("GET", "/v1/training-jobs", scopes="maas/invoke"), lambda_context
    )

    assert (start.status, listing.status) == (403, 403)


def test_a_key_reused_with_another_body_is_a_409(sagemaker_calls, lambda_context):
    call(training_jobs, training_event(training_body(), key="k1"), lambda_context)

    reply = call(training_jobs, training_event(training_body(spot=False), key="k1"), lambda_context)

    assert reply.status == 409
    assert error_of(reply).code == "IdempotencyKeyReused"
    assert len(sagemaker_calls.requests["CreateTrainingJob"]) == 1


def test_twenty_parallel_starts_with_one_idempotency_key_start_exactly_one_job(
    moto_server, lambda_context
):
    events = [training_event(training_body(), key="one-key") for _ in range(20)]

    replies = parallel_calls(training_jobs, events, lambda_context)

    jobs = session().client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert len(jobs) == 1
    assert {r.status for r in replies} <= {201, 409}
    started = {r.body["id"] for r in replies if r.status == 201}
    assert started == {jobs[0]["TrainingJobName"]}


def test_a_pretrained_folder_travels_as_its_own_channel_for_fine_tuning(
    sagemaker_calls, lambda_context
):
    """SageMaker copies each channel to /opt/ml/input/data/<name> and names it in
    SM_CHANNEL_<NAME>; train.py's --pretrained-path defaults to SM_CHANNEL_PRETRAINED.
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_Channel.html
    https://github.com/aws/sagemaker-training-toolkit/blob/master/ENVIRONMENT_VARIABLES.md"""
    datasets = {"train": f"s3://{DATA}/text/train/", "pretrained": f"s3://{DATA}/lm/base/"}
    body = training_body(
        recipe="text-generation",
        datasets=datasets,
        hyperparameters={"epochs": 1, "lora-r": 8},
        metric_threshold=None,
    )

    reply = call(training_jobs, training_event(body), lambda_context)

    assert reply.status == 201, reply.body
    sent = sagemaker_calls.last("CreateTrainingJob")
    channels = {
        c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in sent["InputDataConfig"]
    }
    assert channels["pretrained"] == f"s3://{DATA}/lm/base/"
    assert sent["HyperParameters"]["lora-r"] == "8"


@pytest.mark.parametrize(
    "recipe,datasets,hyperparameters,why",
    [
        ("text-generation", {}, {"lora-r": 8}, "lora-r needs datasets.pretrained"),
        ("image-cnn", {"pretrained": f"s3://{DATA}/lm/base/"}, {}, "text-generation recipe only"),
    ],
)
def test_lora_without_a_model_to_adapt_or_a_foreign_recipe_is_a_400(
    sagemaker_calls, lambda_context, recipe, datasets, hyperparameters, why
):
    body = training_body(
        recipe=recipe,
        datasets={"train": f"s3://{DATA}/text/train/", **datasets},
        hyperparameters=hyperparameters,
        metric_threshold=None,
    )

    reply = call(training_jobs, training_event(body), lambda_context)

    assert reply.status == 400
    assert why in str(reply.body)
    assert sagemaker_calls.sent("CreateTrainingJob") == []


def test_an_outside_pretrained_folder_is_refused_like_any_dataset(sagemaker_calls, lambda_context):
    datasets = {"train": f"s3://{DATA}/text/train/", "pretrained": "s3://elsewhere/lm/"}
    body = training_body(recipe="text-generation", datasets=datasets, metric_threshold=None)

    reply = call(training_jobs, training_event(body), lambda_context)

    assert reply.status == 400
    assert sagemaker_calls.sent("CreateTrainingJob") == []
