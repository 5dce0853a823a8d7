"""UpdateEndpoint: blue/green canary with auto-rollback, as SageMaker deploys a new version.

Both configs keep the one variant name, as blue/green deployments require
(https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-exclusions.html); the
stub model answers with its own name, which tells the two fleets apart.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from maas_contract.sagemaker import VARIANT_NAME
from maas_local.sagemaker import serve
from tests.maas_local.sagemaker.emulator_helpers import (
    VERIFIER,
    create_config,
    create_model,
    emulator_client,
    emulator_internals,
    invoke,
    unique,
    wait_endpoint,
    wait_for,
)

pytestmark = pytest.mark.slow

ROWS = [[0.1, -0.2, 0.0, 0.3]]
TIME_SCALE = 0.1
CANARY = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25},
            "WaitIntervalInSeconds": 150,  # 15 s at the test's time scale
        },
        "TerminationWaitInSeconds": 10,
    },
    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "maas-canary-model-errors"}]},
}


@pytest.fixture(scope="module")
def emulator(moto_url, sink, tmp_path_factory):
    """An emulator of its own, with deployment waits scaled down."""
    root = tmp_path_factory.mktemp("sagemaker-deploy")
    server = serve(
        "127.0.0.1", 0, root, sink.url, seed=99, time_scale=TIME_SCALE, verifier=VERIFIER
    )
    try:
        yield server
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def clients(emulator):
    from botocore.config import Config

    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    return (
        emulator_client("sagemaker", emulator.url, cfg),
        emulator_client("sagemaker-runtime", emulator.url, cfg),
    )


def live_endpoint(sm, s3) -> tuple[str, str, str]:
    """An InService endpoint: (endpoint name, its config, the model answering)."""
    name = unique("dep")
    config, model = new_config(sm, s3)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    assert wait_endpoint(sm, name)["EndpointStatus"] == "InService"
    return name, config, model


def new_config(sm, s3, **settings) -> tuple[str, str]:
    """A config of one model under the fixed variant name: (config name, model name)."""
    model = create_model(sm, s3, unique("m"), answer_with_name=True, **settings)
    return create_config(sm, unique("cfg"), {VARIANT_NAME: (model, 1.0)}), model


def answered_by(runtime, endpoint: str) -> str:
    response = invoke(runtime, endpoint, ROWS)
    assert response["InvokedProductionVariant"] == VARIANT_NAME
    return response["json"]["model"]


def test_canary_splits_traffic_then_shifts_everything_to_the_new_fleet(clients, s3, sink, emulator):
    sm, runtime = clients
    name, _, old_model = live_endpoint(sm, s3)
    config, new_model = new_config(sm, s3)

    sm.update_endpoint(EndpointName=name, EndpointConfigName=config, DeploymentConfig=CANARY)
    wait_for(lambda: sm.describe_endpoint(EndpointName=name).get("PendingDeploymentSummary"))
    during = sm.describe_endpoint(EndpointName=name)
    hits = [answered_by(runtime, name) for _ in range(200)]
    still = sm.describe_endpoint(EndpointName=name)
    stats = {v["fleet"]: v for v in emulator_internals(emulator.url)[name]["variants"]}

    assert during["EndpointStatus"] == "Updating" and still["EndpointStatus"] == "Updating"
    pending = during["PendingDeploymentSummary"]
    assert pending["EndpointConfigName"] == config
    assert pending["ProductionVariants"][0]["CurrentWeight"] == pytest.approx(0.25)
    assert during["ProductionVariants"][0]["CurrentWeight"] == pytest.approx(0.75)
    assert set(hits) == {old_model, new_model}
    assert abs(hits.count(new_model) / 200 - 0.25) <= 0.15  # the issue's ±15% of traffic
    assert stats["pending"]["config"] == config and stats["pending"]["trafficShare"] == 0.25
    assert stats["pending"]["invocations"] == hits.count(new_model)
    assert stats["live"]["invocations"] >= hits.count(old_model)
    done = wait_endpoint(sm, name, timeout=60)
    assert done["EndpointStatus"] == "InService"
    assert done["EndpointConfigName"] == config
    assert "FailureReason" not in done
    assert {answered_by(runtime, name) for _ in range(10)} == {new_model}
    final = [e for e in sink.of(name) if e["detail"]["EndpointStatus"] == "IN_SERVICE"][-1]
    assert final["detail"]["EndpointConfigName"] == config
    # Each step of the blue/green update is announced as AWS's documented canary sample is.
    assert [s for s, _ in _deployment_steps(sink, name)] == [
        "ActivatingTraffic",
        "Baking",
        "Baking",
    ]


def test_canary_with_failing_new_version_rolls_back_to_the_old_config(clients, s3, sink):
    sm, runtime = clients
    name, old_config, old_model = live_endpoint(sm, s3)
    config, _ = new_config(sm, s3, fail_predict="weights drifted")

    sm.update_endpoint(EndpointName=name, EndpointConfigName=config, DeploymentConfig=CANARY)
    wait_for(lambda: sm.describe_endpoint(EndpointName=name).get("PendingDeploymentSummary"))
    model_errors = 0
    for _ in range(100):  # until the canary takes a request and fails it
        try:
            invoke(runtime, name, ROWS)
        except runtime.exceptions.ModelError:
            model_errors += 1
            break
    done = wait_endpoint(sm, name, timeout=30)

    assert model_errors == 1
    assert done["EndpointStatus"] == "InService"
    assert done["EndpointConfigName"] == old_config
    assert "maas-canary-model-errors" in done["FailureReason"]
    assert {answered_by(runtime, name) for _ in range(10)} == {old_model}
    last = wait_for(lambda: sink.of(name)[-1]["detail"]["EndpointStatus"] == "IN_SERVICE")
    assert last
    assert sink.of(name)[-1]["detail"]["EndpointConfigName"] == old_config
    steps = _deployment_steps(sink, name)
    assert steps[-1][0] == "Deleting" and "Terminating" in steps[-1][1]


def test_client_errors_during_a_canary_do_not_roll_it_back(clients, s3, emulator):
    """The cloud's rollback alarm watches Invocation5XXErrors, "the number of InvokeEndpoint
    requests where the model returned a 5xx HTTP response code"; a client's 4xx counts under
    Invocation4XXErrors and trips nothing
    (https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html)."""
    sm, runtime = clients
    name, _, _ = live_endpoint(sm, s3)
    config, new_model = new_config(sm, s3)

    sm.update_endpoint(EndpointName=name, EndpointConfigName=config, DeploymentConfig=CANARY)
    wait_for(lambda: emulator.control.endpoints.endpoints[name].pending)
    canary = emulator.control.endpoints.endpoints[name].pending
    refused = 0
    for _ in range(40):  # rows of two features; the model expects four: its own 400
        try:
            invoke(runtime, name, [[1.0, 2.0]])
        except runtime.exceptions.ModelError as exc:
            assert exc.response["OriginalStatusCode"] == 400
            refused += 1
    done = wait_endpoint(sm, name, timeout=60)

    assert refused == 40
    errors, calls = canary.error_counts()
    assert calls > 0 and errors == 0  # the canary took some of them, and counted none
    assert done["EndpointConfigName"] == config
    assert "FailureReason" not in done
    assert answered_by(runtime, name) == new_model


def _deployment_steps(sink, name: str) -> list[tuple[str, str]]:
    """(status, message) of each "SageMaker Endpoint Deployment State Change" for `name`,
    each checked against the shape of AWS's documented sample
    (https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html)."""
    from tests.maas_local.sagemaker.test_event_shapes import key_paths, sample

    steps = []
    for event in sink.of(name):
        if event["detail-type"] != "SageMaker Endpoint Deployment State Change":
            continue
        assert key_paths(event) == key_paths(sample("endpoint_deployment_state_change"))
        (status,) = event["detail"]["PendingDeploymentSummary"]["ProductionVariants"][0][
            "VariantStatus"
        ]
        steps.append((status["Status"], status["StatusMessage"]))
    return steps


def test_update_without_deployment_config_switches_when_the_new_fleet_is_up(clients, s3, emulator):
    sm, runtime = clients
    name, _, _ = live_endpoint(sm, s3)
    old_fleet = emulator.control.endpoints.endpoints[name].live
    config, new_model = new_config(sm, s3)

    sm.update_endpoint(EndpointName=name, EndpointConfigName=config)
    done = wait_endpoint(sm, name)

    assert done["EndpointConfigName"] == config
    assert answered_by(runtime, name) == new_model
    old_proc = old_fleet.variants[VARIANT_NAME]._proc
    wait_for(lambda: old_proc.poll() is not None, timeout=15)


def test_update_whose_model_cannot_load_keeps_the_old_config(clients, s3):
    sm, runtime = clients
    name, old_config, old_model = live_endpoint(sm, s3)
    config, _ = new_config(sm, s3, fail_load="missing weights file")

    sm.update_endpoint(EndpointName=name, EndpointConfigName=config, DeploymentConfig=CANARY)
    done = wait_endpoint(sm, name)

    assert done["EndpointStatus"] == "InService"
    assert done["EndpointConfigName"] == old_config
    assert "missing weights file" in done["FailureReason"]
    assert answered_by(runtime, name) == old_model


def test_update_of_an_endpoint_that_is_updating_is_refused(clients, s3):
    sm, _ = clients
    name, _, _ = live_endpoint(sm, s3)
    config, _ = new_config(sm, s3)
    sm.update_endpoint(EndpointName=name, EndpointConfigName=config, DeploymentConfig=CANARY)

    with pytest.raises(ClientError) as exc:
        sm.update_endpoint(EndpointName=name, EndpointConfigName=config)

    assert exc.value.response["Error"]["Code"] == "ValidationException"
    sm.delete_endpoint(EndpointName=name)
