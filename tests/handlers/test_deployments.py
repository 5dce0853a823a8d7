"""Deployment routes and endpoint events, through the real entry points, against moto.
UpdateEndpoint (which moto lacks) is answered by a recorder on the handlers' client."""

from __future__ import annotations

import copy

import pytest
from handler_support import (
    ADMIN,
    KMS,
    api_event,
    call,
    deployment_body,
    load_event,
    register,
    session,
)

from handlers import deployments, events, registry

DEPLOY = "/v1/models/{model}/deployments"


def deploy(version, context, key="dep-1", scopes=ADMIN, **overrides):
    event = api_event(
        "POST",
        DEPLOY,
        path_params={"model": "demo"},
        body=deployment_body(version, **overrides),
        headers={"Idempotency-Key": key},
        scopes=scopes,
    )
    return call(deployments, event, context)


def endpoint_event():
    return copy.deepcopy(load_event("endpoint_state_change.json"))


def model(context):
    return call(
        registry, api_event("GET", "/v1/models/{model}", path_params={"model": "demo"}), context
    ).body


@pytest.fixture
def demo(sagemaker_calls, lambda_context):
    for key in ("one", "two"):
        assert register("demo", lambda_context, key=key).status == 201
    sagemaker_calls.answers["UpdateEndpoint"] = {"EndpointArn": "arn:aws:sagemaker:::endpoint/x"}
    return sagemaker_calls


def test_a_first_deployment_creates_model_config_and_endpoint(demo, lambda_context):
    reply = deploy(1, lambda_context)

    assert reply.status == 202
    assert reply.body["status"] == "InProgress"
    sm = session().client("sagemaker")
    assert demo.last("CreateModel")["EnableNetworkIsolation"] is True
    created = sm.describe_model(ModelName=demo.last("CreateModel")["ModelName"])
    assert created["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert created["PrimaryContainer"]["ModelDataUrl"].endswith("/models/demo/model.tar.gz")
    config = demo.last("CreateEndpointConfig")
    assert config["KmsKeyId"] == KMS
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == "s3://maas-test-capture/demo"
    assert [v["VariantName"] for v in config["ProductionVariants"]] == ["v1"]
    assert (
        sm.describe_endpoint(EndpointName="maas-test-demo")["EndpointConfigName"]
        == (reply.body["endpoint_config_name"])
    )


def test_an_instance_type_with_local_storage_gets_no_volume_key(demo, lambda_context):
    assert deploy(1, lambda_context, instance_type="ml.g4dn.xlarge").status == 202

    assert "KmsKeyId" not in demo.last("CreateEndpointConfig")


def test_a_second_concurrent_deployment_of_one_model_is_a_409(demo, lambda_context):
    first = deploy(1, lambda_context, key="a")
    second = deploy(2, lambda_context, key="b")

    assert first.status == 202
    assert second.status == 409
    assert len(demo.requests["CreateModel"]) == 1


def test_an_endpoint_in_service_with_the_new_config_closes_the_deployment_as_succeeded(
    demo, lambda_context
):
    deployment_id = deploy(1, lambda_context).body["id"]

    result = events.handler(endpoint_event(), lambda_context)
    replay = events.handler(endpoint_event(), lambda_context)

    assert result["action"] == "closed"
    assert replay["action"] == "ignored"
    got = call(
        deployments,
        api_event(
            "GET",
            DEPLOY + "/{deployment_id}",
            path_params={"model": "demo", "deployment_id": deployment_id},
        ),
        lambda_context,
    )
    assert got.body["status"] == "Succeeded"
    assert model(lambda_context)["live_version"] == 1
    assert model(lambda_context)["active_deployment"] is None


def test_an_update_rolls_out_as_a_canary_with_alarm_rollback(demo, lambda_context):
    deploy(1, lambda_context, key="a")
    events.handler(endpoint_event(), lambda_context)

    reply = deploy(2, lambda_context, key="b", canary_percent=20, canary_wait_seconds=600)

    assert reply.status == 202
    update = demo.last("UpdateEndpoint")
    policy = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert policy["Type"] == "CANARY"
    assert policy["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 20}
    assert policy["WaitIntervalInSeconds"] == 600
    alarms = update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert [a["AlarmName"] for a in alarms] == ["maas-test-demo-5xx", "maas-test-demo-latency"]
    assert update["EndpointConfigName"] == reply.body["endpoint_config_name"]


def test_an_endpoint_that_kept_its_old_config_closes_the_deployment_as_rolled_back(
    demo, lambda_context
):
    deploy(1, lambda_context, key="a")
    events.handler(endpoint_event(), lambda_context)
    second = deploy(2, lambda_context, key="b").body
    # moto never applied the update: DescribeEndpoint still shows version 1's config.

    result = events.handler(endpoint_event(), lambda_context)

    assert result == {"action": "closed", "status": "InService"}
    got = call(
        deployments,
        api_event(
            "GET",
            DEPLOY + "/{deployment_id}",
            path_params={"model": "demo", "deployment_id": second["id"]},
        ),
        lambda_context,
    )
    assert got.body["status"] == "RolledBack"
    assert model(lambda_context)["live_version"] == 1


def test_rollback_redeploys_the_previous_live_version(demo, lambda_context):
    deploy(1, lambda_context, key="a")
    events.handler(endpoint_event(), lambda_context)
    second = deploy(2, lambda_context, key="b").body
    demo.answers["DescribeEndpoint"] = {
        "EndpointName": "maas-test-demo",
        "EndpointArn": "arn:aws:sagemaker:::endpoint/x",
        "EndpointConfigName": second["endpoint_config_name"],
        "EndpointStatus": "InService",
        "CreationTime": 0,
        "LastModifiedTime": 0,
    }
    events.handler(endpoint_event(), lambda_context)
    assert model(lambda_context)["live_version"] == 2

    reply = call(
        deployments,
        api_event(
            "POST", "/v1/models/{model}/rollback", path_params={"model": "demo"}, scopes=ADMIN
        ),
        lambda_context,
    )

    assert reply.status == 202
    assert (reply.body["kind"], reply.body["version"]) == ("rollback", 1)
    variants = demo.last("CreateEndpointConfig")["ProductionVariants"]
    assert variants[0]["VariantName"] == "v1"


def test_rollback_without_a_previous_version_is_a_409(demo, lambda_context):
    reply = call(
        deployments,
        api_event(
            "POST", "/v1/models/{model}/rollback", path_params={"model": "demo"}, scopes=ADMIN
        ),
        lambda_context,
    )

    assert reply.status == 409


def test_deploying_an_unknown_version_is_a_404(demo, lambda_context):
    reply = deploy(9, lambda_context)

    assert reply.status == 404
    assert "CreateModel" not in demo.requests


def test_deploying_needs_the_admin_scope_and_an_idempotency_key(demo, lambda_context):
    denied = deploy(1, lambda_context, scopes="maas/invoke")
    keyless = call(
        deployments,
        api_event(
            "POST", DEPLOY, path_params={"model": "demo"}, body=deployment_body(1), scopes=ADMIN
        ),
        lambda_context,
    )

    assert denied.status == 403
    assert keyless.status == 400


def test_a_deployment_without_rollback_alarms_is_a_400(demo, lambda_context):
    assert deploy(1, lambda_context, rollback_alarms=[]).status == 400


def test_an_unknown_deployment_is_a_404(demo, lambda_context):
    got = call(
        deployments,
        api_event(
            "GET",
            DEPLOY + "/{deployment_id}",
            path_params={"model": "demo", "deployment_id": "d000"},
        ),
        lambda_context,
    )

    assert got.status == 404
