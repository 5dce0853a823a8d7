"""Deployment routes and endpoint events, through the real entry points, against moto.
UpdateEndpoint (which moto lacks) is answered by a recorder on the handlers' client.

Endpoint events are AWS's documented sample (tests/events/aws_endpoint_state_change.json,
https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html)
naming this endpoint; the handler asks DescribeEndpoint what is really live.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from handlers.deployments import endpoint
from handlers.deployments import routes as deployments
from handlers.events import routes as events
from handlers.registry import routes as registry
from handlers.shared import aws
from maas_contract import generation, names
from maas_contract.sagemaker import MODEL_VERSION_ENV, VARIANT_NAME, is_gpu
from tests.handlers.support import (
    ADMIN,
    INFERENCE_CPU,
    INFERENCE_GPU,
    KMS,
    PREFIX,
    api_event,
    call,
    deployment_body,
    error_of,
    load_event,
    register,
    registration_event,
    session,
)

DEPLOY = "/v1/models/{model}/deployments"
ENDPOINT = "maas-test-demo"
SCALING_TARGET = {
    "ServiceNamespace": "sagemaker",
    "ResourceIds": [f"endpoint/{ENDPOINT}/variant/AllTraffic"],
    "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
}


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
    event = copy.deepcopy(load_event("aws_endpoint_state_change.json"))
    event["detail"]["EndpointName"] = ENDPOINT
    return event


def model(context):
    return call(
        registry, api_event("GET", "/v1/models/{model}", path_params={"model": "demo"}), context
    ).body


def read_deployment(deployment_id, context):
    return call(
        deployments,
        api_event(
            "GET",
            DEPLOY + "/{deployment_id}",
            path_params={"model": "demo", "deployment_id": deployment_id},
        ),
        context,
    ).body


def in_service_with(demo, config_name):
    """DescribeEndpoint says the update finished with `config_name` live (moto never
    applies an UpdateEndpoint)."""
    demo.answers["DescribeEndpoint"] = {
        "EndpointName": ENDPOINT,
        "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
        "EndpointConfigName": config_name,
        "EndpointStatus": "InService",
        "CreationTime": 0,
        "LastModifiedTime": 0,
    }


def scalable_targets():
    client = session().client("application-autoscaling")
    return client.describe_scalable_targets(**SCALING_TARGET)["ScalableTargets"]


def scaling_policies():
    client = session().client("application-autoscaling")
    target = {k: v for k, v in SCALING_TARGET.items() if k != "ResourceIds"}
    return client.describe_scaling_policies(ResourceId=SCALING_TARGET["ResourceIds"][0], **target)[
        "ScalingPolicies"
    ]


@pytest.fixture
def demo(sagemaker_calls, lambda_context):
    for key in ("one", "two"):
        assert register("demo", lambda_context, key=key).status == 201
    sagemaker_calls.answers["UpdateEndpoint"] = {"EndpointArn": "arn:aws:sagemaker:::endpoint/x"}
    return sagemaker_calls


@pytest.fixture
def live_v1(demo, lambda_context):
    """Version 1 deployed on ml.m5.large and closed as Succeeded (so scaling is registered)."""
    deploy(1, lambda_context, key="a")
    assert events.handler(endpoint_event(), lambda_context)["action"] == "closed"
    return demo


def test_a_deployment_without_batching_leaves_torchserve_to_the_toolkit(demo, lambda_context):
    """An artifact whose inference.py has no `handle` deploys with batching off: the Model
    names no TorchServe handler, so the toolkit's per-request path serves it."""
    reply = deploy(1, lambda_context, batching=False)

    assert reply.status == 202, reply.body
    environment = demo.last("CreateModel")["PrimaryContainer"]["Environment"]
    assert environment[MODEL_VERSION_ENV] == "1"
    assert not [name for name in environment if name.startswith(("TS_", "SAGEMAKER_TS_"))]


def test_a_first_deployment_creates_model_config_and_endpoint(demo, lambda_context):
    reply = deploy(1, lambda_context)

    assert reply.status == 202
    assert reply.body["status"] == "InProgress"
    deployment_id = reply.body["id"]
    assert reply.body["endpoint_config_name"] == names.endpoint_config_name(
        PREFIX, "demo", deployment_id
    )
    assert demo.last("CreateModel")["ModelName"] == names.model_name(
        PREFIX, "demo", 1, deployment_id
    )
    sm = session().client("sagemaker")
    assert demo.last("CreateModel")["EnableNetworkIsolation"] is True
    created = sm.describe_model(ModelName=demo.last("CreateModel")["ModelName"])
    assert created["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    # TorchServe hands inference.py's `handle` batches of up to 8 requests, waiting at most
    # 5 ms: the one serving environment infra's Model carries too (maas_contract.sagemaker).
    assert demo.last("CreateModel")["PrimaryContainer"]["Environment"] == {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_REGION": aws.region(),
        MODEL_VERSION_ENV: "1",
        "TS_DEFAULT_SERVICE_HANDLER": "/opt/ml/model/code/inference.py:handle",
        "SAGEMAKER_TS_BATCH_SIZE": "8",
        "SAGEMAKER_TS_MAX_BATCH_DELAY": "5",
        "SAGEMAKER_TS_MIN_WORKERS": "1",
        "SAGEMAKER_TS_MAX_WORKERS": "1",
        "SAGEMAKER_TS_RESPONSE_TIMEOUT": "60",
    }
    # Deployed from the pinned copy: the artifact's SHA-256 names it.
    digest = hashlib.sha256(b"model of models/demo/model.tar.gz").hexdigest()
    assert created["PrimaryContainer"]["ModelDataUrl"] == (
        f"s3://maas-test-artifacts/pinned/sha256/{digest}/model.tar.gz"
    )
    config = demo.last("CreateEndpointConfig")
    assert config["KmsKeyId"] == KMS
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == "s3://maas-test-capture/demo"
    assert (
        sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]
        == (reply.body["endpoint_config_name"])
    )


def test_every_version_runs_under_the_one_variant_name_and_carries_its_version(
    live_v1, lambda_context
):
    """Blue/green and rolling updates need the new endpoint config to keep the old config's
    variant name ("Exclusions",
    https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html),
    so the version travels in the container environment, the tags and the config name."""
    second = deploy(2, lambda_context, key="b").body

    configs = live_v1.sent("CreateEndpointConfig")
    assert [c["ProductionVariants"][0]["VariantName"] for c in configs] == [VARIANT_NAME] * 2
    models = live_v1.sent("CreateModel")
    versions_env = [m["PrimaryContainer"]["Environment"][MODEL_VERSION_ENV] for m in models]
    assert versions_env == ["1", "2"]
    assert {"Key": "maas:version", "Value": "2"} in models[-1]["Tags"]
    assert {"Key": "maas:version", "Value": "2"} in configs[-1]["Tags"]
    assert live_v1.last("UpdateEndpoint")["EndpointConfigName"] == second["endpoint_config_name"]


@pytest.mark.parametrize(
    "instance_type,volume_key",
    [
        ("ml.m5.large", True),
        ("ml.c5.xlarge", True),
        ("ml.g4dn.xlarge", False),
        ("ml.g5.xlarge", False),
        ("ml.p4d.24xlarge", False),
        ("ml.trn1.2xlarge", False),
        ("ml.gr6.4xlarge", False),
    ],
)
def test_the_config_key_is_left_out_exactly_where_sagemaker_refuses_it(
    demo, lambda_context, instance_type, volume_key
):
    """AWS: "If you specify a value for KmsKeyId when using any nitro-based instances with local
    storage, the call to CreateEndpointConfig fails."
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpointConfig.html
    (moto knows few instance types, so its CreateEndpointConfig is answered here)."""
    demo.answers["CreateEndpointConfig"] = {"EndpointConfigArn": "arn:aws:sagemaker:::c/x"}
    demo.answers["CreateEndpoint"] = {"EndpointArn": "arn:aws:sagemaker:::endpoint/x"}

    assert deploy(1, lambda_context, instance_type=instance_type).status == 202

    assert ("KmsKeyId" in demo.last("CreateEndpointConfig")) is volume_key


@pytest.mark.parametrize(
    "instance_type,image", [("ml.m5.large", INFERENCE_CPU), ("ml.g4dn.xlarge", INFERENCE_GPU)]
)
def test_the_inference_image_matches_the_instance_type(demo, lambda_context, instance_type, image):
    assert deploy(1, lambda_context, instance_type=instance_type).status == 202

    assert demo.last("CreateModel")["PrimaryContainer"]["Image"] == image


def test_a_deployment_gives_the_endpoint_its_own_alarms(demo, lambda_context, monkeypatch):
    """Invocation5XXErrors (Sum per minute) and ModelLatency p99, which SageMaker reports in
    microseconds, per EndpointName and VariantName.
    https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html"""
    monkeypatch.setenv("MODEL_5XX_PER_MIN", "3")
    monkeypatch.setenv("MODEL_P99_LATENCY_MS", "1500")

    assert deploy(1, lambda_context).status == 202

    found = session().client("cloudwatch").describe_alarms(AlarmNamePrefix=ENDPOINT)
    alarms = {a["AlarmName"]: a for a in found["MetricAlarms"]}
    assert set(alarms) == {f"{ENDPOINT}-5xx", f"{ENDPOINT}-p99-latency"}
    errors, latency = alarms[f"{ENDPOINT}-5xx"], alarms[f"{ENDPOINT}-p99-latency"]
    dimensions = [
        {"Name": "EndpointName", "Value": ENDPOINT},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/SageMaker", "Invocation5XXErrors")
    assert (errors["Statistic"], errors["Period"], errors["Threshold"]) == ("Sum", 60, 3.0)
    assert errors["Dimensions"] == dimensions
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("ModelLatency", "p99")
    assert latency["Threshold"] == 1_500_000.0
    assert latency["Dimensions"] == dimensions


def test_an_update_rolls_out_as_a_canary_rolled_back_by_its_own_and_the_callers_alarms(
    live_v1, lambda_context
):
    reply = deploy(2, lambda_context, key="b", canary_percent=20, canary_wait_seconds=600)

    assert reply.status == 202
    update = live_v1.last("UpdateEndpoint")
    policy = update["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert policy["Type"] == "CANARY"
    assert policy["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 20}
    assert policy["WaitIntervalInSeconds"] == 600
    alarms = update["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]
    assert [a["AlarmName"] for a in alarms] == [
        f"{ENDPOINT}-5xx",
        f"{ENDPOINT}-p99-latency",
        "maas-test-demo-5xx-extra",
        "maas-test-demo-latency",
    ]
    assert update["EndpointConfigName"] == reply.body["endpoint_config_name"]


def test_a_deployment_without_caller_alarms_is_still_guarded_by_the_endpoints_own(
    live_v1, lambda_context
):
    assert deploy(2, lambda_context, key="b", rollback_alarms=[]).status == 202

    alarms = live_v1.last("UpdateEndpoint")["DeploymentConfig"]["AutoRollbackConfiguration"]
    assert [a["AlarmName"] for a in alarms["Alarms"]] == [
        f"{ENDPOINT}-5xx",
        f"{ENDPOINT}-p99-latency",
    ]


def test_more_caller_alarms_than_rollback_takes_is_a_400(demo, lambda_context):
    """AutoRollbackConfig takes at most 10 alarms; two are the endpoint's own.
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_AutoRollbackConfig.html"""
    reply = deploy(1, lambda_context, rollback_alarms=[f"alarm-{i}" for i in range(9)])

    assert reply.status == 400
    assert "CreateModel" not in demo.requests


@pytest.mark.parametrize(
    "bounds",
    [
        {"min_instances": 2, "instance_count": 1},
        {"max_instances": 2, "instance_count": 3},
        {"min_instances": 3, "max_instances": 2, "instance_count": 2},
    ],
)
def test_scaling_bounds_that_do_not_hold_the_instance_count_are_a_400(demo, lambda_context, bounds):
    assert deploy(1, lambda_context, **bounds).status == 400


def test_scaling_is_registered_once_the_endpoint_is_in_service_and_not_before(demo, lambda_context):
    """Application Auto Scaling registers a variant of an endpoint that exists; AWS's update
    procedure registers it again only once DescribeEndpoint says InService.
    https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-prerequisites.html
    https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html"""
    deploy(1, lambda_context, max_instances=4, target_invocations_per_instance=50)
    assert scalable_targets() == []

    events.handler(endpoint_event(), lambda_context)

    [target] = scalable_targets()
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    [policy] = scaling_policies()
    assert policy["PolicyType"] == "TargetTrackingScaling"
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 50.0
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }


def _targets_at_update(demo):
    """Answers UpdateEndpoint, noting whether the variant was a scalable target then."""
    seen = []

    def answer():
        seen.append(len(scalable_targets()))
        return {"EndpointArn": "arn:aws:sagemaker:::endpoint/x"}

    demo.answers["UpdateEndpoint"] = answer
    return seen


def test_an_update_that_changes_the_instance_type_deregisters_scaling_before_it(
    live_v1, lambda_context
):
    """AWS: "If the update would change the instance type for any model that is a target for auto
    scaling, the update fails" unless the variant is deregistered first.
    https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html"""
    seen = _targets_at_update(live_v1)

    second = deploy(2, lambda_context, key="b", instance_type="ml.c5.xlarge", max_instances=3)
    assert seen == [0]
    in_service_with(live_v1, second.body["endpoint_config_name"])
    events.handler(endpoint_event(), lambda_context)

    [target] = scalable_targets()
    assert target["MaxCapacity"] == 3
    assert len(scaling_policies()) == 1


def test_an_update_that_keeps_the_instance_type_keeps_scaling_in_place(live_v1, lambda_context):
    seen = _targets_at_update(live_v1)

    assert deploy(2, lambda_context, key="b").status == 202

    assert seen == [1]


def test_an_update_that_rolled_back_gets_the_live_versions_scaling_back(live_v1, lambda_context):
    deploy(2, lambda_context, key="b", instance_type="ml.c5.xlarge", max_instances=5)
    assert scalable_targets() == []
    # moto never applied the update: DescribeEndpoint still shows version 1's config.

    events.handler(endpoint_event(), lambda_context)

    [target] = scalable_targets()
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 2)  # version 1's bounds


def test_an_update_sagemaker_refuses_gives_the_live_fleet_its_scaling_back(live_v1, lambda_context):
    def refuse():
        error = {"Error": {"Code": "ValidationException", "Message": "refused"}}
        raise ClientError(error, "UpdateEndpoint")

    live_v1.answers["UpdateEndpoint"] = refuse

    reply = deploy(2, lambda_context, key="b", instance_type="ml.c5.xlarge")

    assert reply.status == 400
    assert len(scalable_targets()) == 1
    assert model(lambda_context)["active_deployment"] is None


def test_a_second_concurrent_deployment_of_one_model_is_a_409(demo, lambda_context):
    first = deploy(1, lambda_context, key="a")
    second = deploy(2, lambda_context, key="b")

    assert first.status == 202
    assert error_of(second) == ("Conflict", "a deployment of demo is already in progress")
    assert len(demo.requests["CreateModel"]) == 1


def test_an_endpoint_in_service_with_the_new_config_closes_the_deployment_as_succeeded(
    demo, lambda_context
):
    deployment_id = deploy(1, lambda_context).body["id"]

    result = events.handler(endpoint_event(), lambda_context)
    replay = events.handler(endpoint_event(), lambda_context)

    assert result["action"] == "closed"
    assert replay["action"] == "ignored"
    assert read_deployment(deployment_id, lambda_context)["status"] == "Succeeded"
    assert model(lambda_context)["live_version"] == 1
    assert model(lambda_context)["active_deployment"] is None


def test_an_endpoint_that_kept_its_old_config_closes_the_deployment_as_rolled_back(
    live_v1, lambda_context
):
    second = deploy(2, lambda_context, key="b").body
    # moto never applied the update: DescribeEndpoint still shows version 1's config.

    result = events.handler(endpoint_event(), lambda_context)

    assert result == {"action": "closed", "status": "InService"}
    assert read_deployment(second["id"], lambda_context)["status"] == "RolledBack"
    assert model(lambda_context)["live_version"] == 1


def test_rollback_redeploys_the_previous_live_version(live_v1, lambda_context):
    second = deploy(2, lambda_context, key="b").body
    in_service_with(live_v1, second["endpoint_config_name"])
    events.handler(endpoint_event(), lambda_context)
    assert model(lambda_context)["live_version"] == 2

    reply = rollback(lambda_context, key="back")

    assert reply.status == 202
    assert (reply.body["kind"], reply.body["version"]) == ("rollback", 1)
    container = live_v1.last("CreateModel")["PrimaryContainer"]
    assert container["Environment"][MODEL_VERSION_ENV] == "1"
    variants = live_v1.last("CreateEndpointConfig")["ProductionVariants"]
    assert variants[0]["VariantName"] == VARIANT_NAME


def test_a_retried_rollback_replays_the_first_answer_and_flips_nothing(live_v1, lambda_context):
    second = deploy(2, lambda_context, key="b").body
    in_service_with(live_v1, second["endpoint_config_name"])
    events.handler(endpoint_event(), lambda_context)
    first = rollback(lambda_context, key="back")
    updates = len(live_v1.requests.get("UpdateEndpoint", []))

    retried = rollback(lambda_context, key="back")

    assert retried.status == 202
    assert retried.body == first.body
    assert len(live_v1.requests.get("UpdateEndpoint", [])) == updates


def test_a_rollback_without_an_idempotency_key_is_a_400(live_v1, lambda_context):
    reply = rollback(lambda_context, key=None)

    assert reply.status == 400
    assert "Idempotency-Key" in error_of(reply)[1]


def rollback(context: Any, *, key: str | None) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    event = api_event(
        "POST",
        "/v1/models/{model}/rollback",
        path_params={"model": "demo"},
        scopes=ADMIN,
        headers=headers,
    )
    return call(deployments, event, context)


def test_rollback_without_a_previous_version_is_a_409(demo, lambda_context):
    reply = rollback(lambda_context, key="none-yet")

    assert reply.status == 409


def test_deploying_an_unknown_version_is_a_404(demo, lambda_context):
    reply = deploy(9, lambda_context)

    assert reply.status == 404
    assert error_of(reply) == ("NotFound", "version 9 of model demo is not registered")
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


# --- text generation: the LMI container ------------------------------------------------------

GENERATION_IMAGE = (
    "763104351884.dkr.ecr.eu-west-1.amazonaws.com/djl-inference:0.36.0-lmi27.0.0-cu130"
)


@pytest.fixture
def generator(sagemaker_calls, lambda_context, monkeypatch):
    """Model `demo` with version 1 registered as a text-generation model, and the stage's LMI
    image in the environment (GENERATION_IMAGE_URI, as infra sets it)."""
    monkeypatch.setenv("GENERATION_IMAGE_URI", GENERATION_IMAGE)
    event = registration_event("demo", key="gen-1")
    body = json.loads(event["body"])
    event["body"] = json.dumps({**body, "recipe": "text-generation"})
    assert call(registry, event, lambda_context).status == 201
    # moto knows no ml.g5 type; these two answer for it.
    sagemaker_calls.answers["CreateEndpointConfig"] = {"EndpointConfigArn": "arn:aws:sagemaker:::c"}
    sagemaker_calls.answers["CreateEndpoint"] = {"EndpointArn": "arn:aws:sagemaker:::endpoint/x"}
    return sagemaker_calls


def test_a_generation_version_runs_on_the_lmi_image_from_its_pinned_archive(
    generator, lambda_context
):
    """The LMI container serves the Hugging Face folder SageMaker extracts from ModelDataUrl
    ("a single gzip compressed tar archive",
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ContainerDefinition.html) to
    /opt/ml/model, configured through its environment (OPTION_* variables,
    https://docs.djl.ai/docs/serving/serving/docs/lmi/deployment_guide/configurations.html)."""
    reply = deploy(1, lambda_context, instance_type="ml.g5.xlarge")

    assert reply.status == 202, reply.body
    primary = generator.last("CreateModel")["PrimaryContainer"]
    assert primary["Image"] == GENERATION_IMAGE
    assert primary["Environment"] == {
        **generation.container_environment(),
        MODEL_VERSION_ENV: "1",
    }
    assert generation.is_generation_container(primary["Image"], primary["Environment"])
    digest = hashlib.sha256(b"model of models/demo/model.tar.gz").hexdigest()
    assert primary["ModelDataUrl"] == (
        f"s3://maas-test-artifacts/pinned/sha256/{digest}/model.tar.gz"
    )
    assert generator.last("CreateModel")["EnableNetworkIsolation"] is True
    # The rest is every model's path: capture, no volume key on local NVMe, the endpoint.
    config = generator.last("CreateEndpointConfig")
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g5.xlarge"
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == "s3://maas-test-capture/demo"
    assert "KmsKeyId" not in config
    assert generator.last("CreateEndpoint")["EndpointName"] == ENDPOINT


def test_a_generation_version_takes_a_gpu_instance_when_the_request_names_none(
    generator, lambda_context
):
    body = deployment_body(1)
    del body["instance_type"]
    event = api_event(
        "POST",
        DEPLOY,
        path_params={"model": "demo"},
        body=body,
        headers={"Idempotency-Key": "gen-default"},
        scopes=ADMIN,
    )

    assert call(deployments, event, lambda_context).status == 202
    instance_type = generator.last("CreateEndpointConfig")["ProductionVariants"][0]["InstanceType"]
    assert instance_type == endpoint.GENERATION_INSTANCE_TYPE
    assert is_gpu(instance_type)


def test_a_generation_version_on_a_cpu_instance_is_a_400_and_creates_nothing(
    generator, lambda_context
):
    reply = deploy(1, lambda_context, instance_type="ml.m5.large")

    assert reply.status == 400
    assert "GPU" in error_of(reply)[1]
    assert generator.sent("CreateModel") == []


def test_a_generation_deployment_without_the_lmi_image_set_fails_and_releases_the_model(
    generator, lambda_context, monkeypatch
):
    monkeypatch.delenv("GENERATION_IMAGE_URI")

    reply = deploy(1, lambda_context, instance_type="ml.g5.xlarge")

    assert reply.status == 500
    assert generator.sent("CreateModel") == []
    assert model(lambda_context)["active_deployment"] is None
