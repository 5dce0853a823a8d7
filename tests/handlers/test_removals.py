"""Removing what costs money: DELETE an endpoint, a version and a model, through the real entry
points, against moto. Each is idempotent (a repeat answers as the first did) and refuses with
409 while something depends on what it would remove.

AWS's rules these pin:
- DeleteEndpoint is asynchronous (the endpoint is Deleting, then gone), and refused while the
  endpoint is being created, updated or maintained; a Failed endpoint can only be deleted.
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DeleteEndpoint.html
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html
- An auto-scaled variant is deregistered when its endpoint is deleted, on the caller's
  DeregisterScalableTarget permission; maas deregisters it itself, first.
  https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-delete-with-scaling.html
- Endpoint configs and models are deleted only when no endpoint uses them, and DeleteModel
  leaves the artifact in S3.
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DeleteEndpointConfig.html
  https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DeleteModel.html
- A transaction holds at most 100 actions, so a model's items are deleted 100 at a time.
  https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
- A DELETE of what is already gone succeeds, as S3's DeleteObject does for a missing key.
  https://docs.aws.amazon.com/AmazonS3/latest/API/SOAPDeleteObject.html
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from handlers.deployments import routes as deployments
from handlers.events import routes as events
from handlers.registry import routes as registry
from handlers.registry import service as registry_service
from handlers.shared import registry_lifecycle, registry_table
from maas_contract.alarms import errors_alarm_name, latency_alarm_name
from tests.handlers.support import (
    ADMIN,
    PREFIX,
    TABLE,
    api_event,
    call,
    error_of,
    register,
    session,
)
from tests.handlers.test_deployments import (
    ENDPOINT,
    deploy,
    endpoint_event,
    in_service_with,
    scalable_targets,
)

MODEL = "/v1/models/{model}"


def delete_endpoint(context, model="demo", scopes=ADMIN):
    event = api_event("DELETE", MODEL + "/endpoint", path_params={"model": model}, scopes=scopes)
    return call(deployments, event, context)


def delete_version(version, context, model="demo"):
    event = api_event(
        "DELETE",
        MODEL + "/versions/{version}",
        path_params={"model": model, "version": str(version)},
        scopes=ADMIN,
    )
    return call(registry, event, context)


def delete_model(context, model="demo"):
    event = api_event("DELETE", MODEL, path_params={"model": model}, scopes=ADMIN)
    return call(registry, event, context)


def get_model(context, model="demo"):
    return call(registry, api_event("GET", MODEL, path_params={"model": model}), context)


def versions(context, model="demo"):
    event = api_event("GET", MODEL + "/versions", path_params={"model": model})
    return [v["version"] for v in call(registry, event, context).body["items"]]


def endpoint_exists():
    try:
        session().client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    except ClientError:
        return False
    return True


def alarms():
    cloudwatch = session().client("cloudwatch")
    names = [errors_alarm_name(ENDPOINT), latency_alarm_name(ENDPOINT)]
    return [a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNames=names)["MetricAlarms"]]


def partition(model="demo"):
    found = (
        session()
        .client("dynamodb")
        .query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"MODEL#{model}"}},
        )
    )
    return [item["sk"]["S"] for item in found["Items"]]


@pytest.fixture
def demo(sagemaker_calls, lambda_context):
    """Versions 1 and 2 registered (test_deployments' fixture of the same name)."""
    for key in ("one", "two"):
        assert register("demo", lambda_context, key=key).status == 201
    sagemaker_calls.answers["UpdateEndpoint"] = {"EndpointArn": "arn:aws:sagemaker:::endpoint/x"}
    return sagemaker_calls


@pytest.fixture
def live_v1(demo, lambda_context):
    """Version 1 deployed and closed as Succeeded, so auto scaling is registered."""
    deploy(1, lambda_context, key="a")
    assert events.handler(endpoint_event(), lambda_context)["action"] == "closed"
    return demo


@pytest.fixture
def live_v2(live_v1, lambda_context):
    """Version 2 live, version 1 kept for a rollback."""
    second = deploy(2, lambda_context, key="b").body
    in_service_with(live_v1, second["endpoint_config_name"])
    assert events.handler(endpoint_event(), lambda_context)["action"] == "closed"
    current = get_model(lambda_context).body
    assert (current["live_version"], current["previous_version"]) == (2, 1)
    return live_v1


# -- DELETE /v1/models/{model}/endpoint ----------------------------------------------------------


def test_deleting_the_endpoint_removes_it_with_its_configs_models_scaling_and_alarms(
    live_v1, lambda_context
):
    # given version 1 live, auto-scaled and watched by its two rollback alarms
    deployment = registry_table.get_deployment(
        "demo", get_model(lambda_context).body["live_deployment"]
    )
    assert scalable_targets() and len(alarms()) == 2

    # when
    reply = delete_endpoint(lambda_context)

    # then
    assert reply.status == 202, reply.body
    assert reply.body == {
        "model": "demo",
        "endpoint_name": ENDPOINT,
        "status": "Deleting",
        "pending_cleanup": 0,
    }
    assert not endpoint_exists()
    assert scalable_targets() == []
    assert alarms() == []
    assert live_v1.last("DeleteEndpointConfig") == {
        "EndpointConfigName": deployment["endpoint_config_name"]
    }
    assert live_v1.last("DeleteModel") == {"ModelName": deployment["sagemaker_model"]}
    current = get_model(lambda_context).body
    assert current["live_version"] is None and current["previous_version"] is None
    assert current["latest_version"] == 2  # the versions stay registered


def test_a_repeated_endpoint_deletion_answers_202_again_and_says_deleted(live_v1, lambda_context):
    first = delete_endpoint(lambda_context)

    second = delete_endpoint(lambda_context)

    assert (first.status, second.status) == (202, 202)
    assert second.body["status"] == "Deleted" and second.body["pending_cleanup"] == 0
    # Nothing is deleted twice: the deployment record says its resources are gone.
    assert len(live_v1.sent("DeleteEndpoint")) == 1
    assert len(live_v1.sent("DeleteModel")) == 1


def test_the_endpoint_is_not_deleted_while_a_deployment_is_in_progress(demo, lambda_context):
    deploy(1, lambda_context)  # InProgress until the endpoint's event closes it

    reply = delete_endpoint(lambda_context)

    assert reply.status == 409
    assert "in progress" in error_of(reply).message
    assert reply.headers.get("Retry-After") == "60"
    assert endpoint_exists()
    assert "DeleteEndpoint" not in demo.requests


@pytest.mark.parametrize("status", ["Creating", "Updating", "SystemUpdating", "RollingBack"])
def test_an_endpoint_sagemaker_is_changing_is_not_deleted(live_v1, lambda_context, status):
    """DescribeEndpoint: SystemUpdating "cannot be updated or deleted"; the others are
    operations in flight that DeleteEndpoint would cut short."""
    described = session().client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    live_v1.answers["DescribeEndpoint"] = {**described, "EndpointStatus": status}

    reply = delete_endpoint(lambda_context)

    assert reply.status == 409 and status in error_of(reply).message
    assert "DeleteEndpoint" not in live_v1.requests
    assert get_model(lambda_context).body["live_version"] == 1  # nothing changed
    assert scalable_targets()


def test_an_endpoint_deployed_by_the_stack_is_not_deleted_through_the_api(demo, lambda_context):
    """A model declared in the stage's config has a CloudFormation endpoint under the same
    name; deleting it here would drift the stack."""
    sm = session().client("sagemaker")
    sm.create_model(
        ModelName=f"{PREFIX}-demo-v1-abc123",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
        PrimaryContainer={"Image": "image"},
    )
    sm.create_endpoint_config(
        EndpointConfigName="Config-Cfn1234",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": f"{PREFIX}-demo-v1-abc123",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="Config-Cfn1234")

    reply = delete_endpoint(lambda_context)

    assert reply.status == 409 and "not deployed through this API" in error_of(reply).message
    assert endpoint_exists()


def test_deleting_the_endpoint_of_an_unknown_model_is_404(aws_backend, lambda_context):
    assert delete_endpoint(lambda_context, model="nobody").status == 404


def test_deleting_an_endpoint_needs_the_admin_scope(live_v1, lambda_context):
    reply = delete_endpoint(lambda_context, scopes="maas/invoke")

    assert reply.status == 403
    assert endpoint_exists()


def test_no_deployment_starts_while_the_endpoint_is_being_deleted(demo, lambda_context):
    # given a removal holding the model (as while DeleteEndpoint runs)
    registry_lifecycle.hold_endpoint("demo", registry_table.now_iso())

    # when
    reply = deploy(1, lambda_context)

    # then
    assert reply.status == 409
    assert "CreateModel" not in demo.requests


def test_a_hold_left_by_a_removal_that_died_expires(demo, lambda_context):
    stale = datetime.now(UTC) - timedelta(seconds=registry_lifecycle.HOLD_STALE_S + 1)
    registry_lifecycle.hold_endpoint("demo", stale.isoformat(timespec="milliseconds"))

    assert deploy(1, lambda_context).status == 202


def test_after_the_endpoint_is_deleted_a_new_deployment_creates_a_new_one(live_v1, lambda_context):
    delete_endpoint(lambda_context)

    reply = deploy(2, lambda_context, key="again")

    assert reply.status == 202, reply.body
    assert endpoint_exists()
    assert (
        live_v1.last("CreateEndpoint")["EndpointConfigName"] == reply.body["endpoint_config_name"]
    )


# -- DELETE /v1/models/{model}/versions/{version} -------------------------------------------------


def test_a_version_that_is_not_live_is_deleted_and_a_repeat_is_not_an_error(demo, lambda_context):
    first = delete_version(2, lambda_context)
    second = delete_version(2, lambda_context)

    assert (first.status, second.status) == (204, 204)
    assert first.body is None
    assert versions(lambda_context) == [1]


def test_a_deleted_version_number_is_never_given_out_again(demo, lambda_context):
    delete_version(2, lambda_context)

    reply = register("demo", lambda_context, key="three")

    assert reply.status == 201 and reply.body["version"] == 3


def test_a_version_of_an_unknown_model_is_404(aws_backend, lambda_context):
    assert delete_version(1, lambda_context, model="nobody").status == 404


def test_the_live_version_and_the_rollback_version_are_not_deleted(live_v2, lambda_context):
    live = delete_version(2, lambda_context)
    previous = delete_version(1, lambda_context)

    assert live.status == 409 and "live" in error_of(live).message
    assert previous.status == 409 and "rollback" in error_of(previous).message
    assert versions(lambda_context) == [2, 1]


def test_a_version_being_deployed_is_not_deleted(demo, lambda_context):
    deploy(2, lambda_context)  # InProgress

    reply = delete_version(2, lambda_context)

    assert reply.status == 409 and "rolling version 2 out" in error_of(reply).message
    assert versions(lambda_context) == [2, 1]


def test_another_version_is_deleted_while_a_deployment_runs(demo, lambda_context):
    deploy(2, lambda_context)  # InProgress

    assert delete_version(1, lambda_context).status == 204
    assert versions(lambda_context) == [2]


def test_a_deployment_of_a_version_deleted_meanwhile_is_refused(demo, lambda_context):
    """The deployment's lock checks, in its own transaction, that the version is there: a
    deletion that lands between reading the version and taking the lock wins."""
    registry_service.delete_version("demo", 2)
    item = {"id": "d000000000001", "version": 2, "created_at": registry_table.now_iso()}

    with pytest.raises(Exception) as refused:
        registry_lifecycle.lock_deployment("demo", item)

    assert getattr(refused.value, "status", None) == 409
    assert get_model(lambda_context).body["active_deployment"] is None


def test_a_version_that_became_live_meanwhile_is_not_deleted(demo, lambda_context):
    """The deletion's condition is checked at the write, not only when it was read."""
    registry_table.update(registry_table.model_key("demo"), {"live_version": 2})

    with pytest.raises(Exception) as refused:
        registry_lifecycle.delete_version("demo", 2, active_deployment=None)

    assert getattr(refused.value, "status", None) == 409
    assert versions(lambda_context) == [2, 1]


# -- DELETE /v1/models/{model} --------------------------------------------------------------------


def test_a_model_with_a_live_endpoint_is_not_deleted(live_v1, lambda_context):
    reply = delete_model(lambda_context)

    assert reply.status == 409 and "/endpoint" in error_of(reply).message
    assert get_model(lambda_context).status == 200


def test_a_model_whose_sagemaker_resources_remain_is_not_deleted(demo, lambda_context):
    # given a deployment that failed: its SageMaker model and config are still there
    deployment = deploy(1, lambda_context).body
    described = session().client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    demo.answers["DescribeEndpoint"] = {**described, "EndpointStatus": "Failed"}
    events.handler(endpoint_event(), lambda_context)
    assert registry_table.get_deployment("demo", deployment["id"])["status"] == "Failed"

    reply = delete_model(lambda_context)

    assert reply.status == 409 and "1 deployment(s)" in error_of(reply).message


def test_a_model_is_deleted_once_its_endpoint_is_and_a_repeat_is_not_an_error(
    live_v1, lambda_context
):
    delete_endpoint(lambda_context)

    first = delete_model(lambda_context)
    second = delete_model(lambda_context)

    assert (first.status, second.status) == (204, 204)
    assert get_model(lambda_context).status == 404
    assert partition() == []  # versions and deployment records too


def test_a_model_with_more_items_than_one_transaction_is_deleted(demo, lambda_context):
    dynamodb = session().client("dynamodb")
    for version in range(3, 153):
        key = registry_table.version_key("demo", version)
        dynamodb.put_item(TableName=TABLE, Item={**key, "version": {"N": str(version)}})

    reply = delete_model(lambda_context)

    assert reply.status == 204
    assert partition() == []


def test_a_model_deletion_cut_short_refuses_registrations_and_a_repeat_finishes_it(
    demo, lambda_context
):
    dynamodb = session().client("dynamodb")
    for version in range(3, 153):
        key = registry_table.version_key("demo", version)
        dynamodb.put_item(TableName=TABLE, Item={**key, "version": {"N": str(version)}})

    # when the deadline passes after the first transaction
    with pytest.raises(Exception) as cut:
        registry_service.delete_model("demo", deadline=time.monotonic() - 1)
    assert getattr(cut.value, "status", None) == 409
    assert len(partition()) == 153 - 100  # the model item, and 52 versions left

    # then nothing new is registered or deployed meanwhile
    assert register("demo", lambda_context, key="late").status == 409
    left = {"id": "d000000000001", "version": 152, "created_at": registry_table.now_iso()}
    with pytest.raises(Exception) as locked:
        registry_lifecycle.lock_deployment("demo", left)
    assert getattr(locked.value, "status", None) == 409

    # and a repeat finishes it
    assert delete_model(lambda_context).status == 204
    assert partition() == []


def test_an_unknown_model_is_deleted_without_error(aws_backend, lambda_context):
    assert delete_model(lambda_context, model="nobody").status == 204
