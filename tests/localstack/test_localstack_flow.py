"""The platform's end-to-end flow with LocalStack as the AWS backend for S3, KMS, SQS and
EventBridge: DynamoDB stays on moto's server and SageMaker on our emulator.

SageMaker's state changes travel as they do in the cloud: the emulator puts them on EventBridge,
a rule on `aws.sagemaker` sends them to a queue, and the local stack drains that queue into the
same event handler. If they did not, no version would be registered and nothing deployed.
"""

from __future__ import annotations

import json

import pytest
import requests

from maas import Client
from maas import demo_steps as steps
from maas_local import lifecycle
from maas_local.aws_resources import local_client, stack_credentials
from maas_local.config import StackPaths, read_json
from maas_local.event_queue import QUEUE_NAME, RULE_NAME
from maas_local.stack import StackOptions

pytestmark = [pytest.mark.localstack, pytest.mark.e2e, pytest.mark.slow]
EPOCHS = 6


def say(line: str) -> None:
    print(line, flush=True)


@pytest.fixture(scope="module")
def stack_on_localstack(localstack, tmp_path_factory):
    paths = StackPaths(tmp_path_factory.mktemp("maas-home"))
    options = StackOptions(localstack_url=localstack.url)
    try:
        assert lifecycle.up(paths, foreground=False, options=options) == 0
        state = read_json(paths.state_file)
        yield paths, state, Client.local(paths.home)
    finally:
        assert lifecycle.down(paths, quiet=True) == 0


def test_state_changes_route_through_an_eventbridge_rule_to_a_queue(
    localstack, stack_on_localstack
):
    events = local_client("events", localstack.url)
    pattern = json.loads(events.describe_rule(Name=RULE_NAME)["EventPattern"])
    (target,) = events.list_targets_by_rule(Rule=RULE_NAME)["Targets"]

    assert pattern["source"] == ["aws.sagemaker"]
    assert set(pattern["detail-type"]) == {
        "SageMaker Training Job State Change",
        "SageMaker Endpoint State Change",
    }
    assert target["Arn"].endswith(f":{QUEUE_NAME}")


def test_flow_trains_registers_deploys_and_predicts_with_localstack_storage_and_events(
    localstack, stack_on_localstack
):
    paths, state, api = stack_on_localstack
    assert state["localstack_url"] == localstack.url

    # Given the digits uploaded to LocalStack's S3 (moto holds no bucket at all)
    channels, held = steps.prepare_and_upload(localstack.url, say, None)
    issued = stack_credentials(paths.keys)
    moto_url = state["parts"]["moto"]["url"]
    moto_buckets = local_client("s3", moto_url, issued).list_buckets()["Buckets"]
    assert moto_buckets == []

    # When a job trains through the API and asks for auto-deploy
    spec = steps.training_request(channels, seed=1, epochs=EPOCHS, auto_deploy=True)
    job = steps.train(api, spec, say)

    # Then the queue-borne events register the version and close the deployment
    assert job["status"] == "Completed", job
    job = steps.wait_for_version(api, job["id"])
    version = job["registered_version"]
    assert version is not None, job
    assert steps.follow_auto_deployment(api, job["id"], say)["status"] == "Succeeded"
    assert steps.wait_until_live(api, version, say)["live_version"] == version

    # And the model artefact sits in LocalStack's artifact bucket
    artifacts = local_client("s3", localstack.url).list_objects_v2(Bucket="maas-local-artifacts")
    assert any(o["Key"].endswith("output/model.tar.gz") for o in artifacts.get("Contents", []))

    # And the deployed model answers held-out digits right
    labels, answered = steps.predict_labels(api, held.x[:50])
    assert answered == version
    correct = sum(int(p == t) for p, t in zip(labels, held.y[:50], strict=True))
    assert correct >= 48, f"{correct}/50 right"

    # And every event was taken off the queue
    sqs = local_client("sqs", localstack.url)
    queue_url = sqs.get_queue_url(QueueName=QUEUE_NAME)["QueueUrl"]
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert int(attributes["ApproximateNumberOfMessages"]) == 0
    health = requests.get(f"{state['api_url']}/_local/health", timeout=10).json()
    assert health["queue_events_delivered"] >= 4, health  # job: training, completed; endpoint
    assert health["queue_events_failed"] == 0, health
    assert health["events_delivered"] == 0, health  # nothing came the direct way
