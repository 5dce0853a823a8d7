"""UpdateEndpoint: blue/green canary with auto-rollback, as SageMaker deploys a new version."""

from __future__ import annotations

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError
from emulator_helpers import create_config, create_model, invoke, unique, wait_endpoint, wait_for

from maas_local.sagemaker import serve

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
    server = serve("127.0.0.1", 0, root, sink.url, seed=99, time_scale=TIME_SCALE)
    try:
        yield server
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def clients(emulator):
    import boto3
    from botocore.config import Config

    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    return (
        boto3.client("sagemaker", endpoint_url=emulator.url, config=cfg),
        boto3.client("sagemaker-runtime", endpoint_url=emulator.url, config=cfg),
    )


def live_endpoint(sm, s3, variant: str, **settings) -> tuple[str, str]:
    name = unique("dep")
    config = create_config(sm, unique("cfg"), {variant: (create_model(sm, s3, unique("m")), 1.0)})
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    assert wait_endpoint(sm, name)["EndpointStatus"] == "InService"
    return name, config


def new_config(sm, s3, variant: str, **settings) -> str:
    model = create_model(sm, s3, unique("m"), **settings)
    return create_config(sm, unique("cfg"), {variant: (model, 1.0)})


def test_canary_splits_traffic_then_shifts_everything_to_the_new_fleet(clients, s3, sink, emulator):
    sm, runtime = clients
    name, _ = live_endpoint(sm, s3, "v1")
    config = new_config(sm, s3, "v2")

    sm.update_endpoint(EndpointName=name, EndpointConfigName=config, DeploymentConfig=CANARY)
    wait_for(lambda: sm.describe_endpoint(EndpointName=name).get("PendingDeploymentSummary"))
    during = sm.describe_endpoint(EndpointName=name)
    hits = [invoke(runtime, name, ROWS)["InvokedProductionVariant"] for _ in range(200)]
    still = sm.describe_endpoint(EndpointName=name)
    with urllib.request.urlopen(f"{emulator.url}/_emulator/endpoints", timeout=10) as response:
        stats = {v["variant"]: v for v in json.loads(response.read())[name]["variants"]}

    assert during["EndpointStatus"] == "Updating" and still["EndpointStatus"] == "Updating"
    pending = during["PendingDeploymentSummary"]
    assert pending["EndpointConfigName"] == config
    assert pending["ProductionVariants"][0]["CurrentWeight"] == pytest.approx(0.25)
    assert during["ProductionVariants"][0]["CurrentWeight"] == pytest.approx(0.75)
    assert abs(hits.count("v2") / 200 - 0.25) <= 0.15  # the issue's ±15% of traffic
    assert stats["v2"]["fleet"] == "pending" and stats["v2"]["trafficShare"] == 0.25
    assert stats["v2"]["invocations"] == hits.count("v2")
    assert stats["v1"]["invocations"] >= hits.count("v1")
    done = wait_endpoint(sm, name, timeout=60)
    assert done["EndpointStatus"] == "InService"
    assert done["EndpointConfigName"] == config
    assert "FailureReason" not in done
    assert {invoke(runtime, name, ROWS)["InvokedProductionVariant"] for _ in range(10)} == {"v2"}
    final = [e for e in sink.of(name) if e["detail"]["EndpointStatus"] == "IN_SERVICE"][-1]
    assert final["detail"]["EndpointConfigName"] == config


def test_canary_with_failing_new_version_rolls_back_to_the_old_config(clients, s3, sink):
    sm, runtime = clients
    name, old_config = live_endpoint(sm, s3, "v1")
    config = new_config(sm, s3, "v2", fail_predict="weights drifted")

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
    assert {invoke(runtime, name, ROWS)["InvokedProductionVariant"] for _ in range(10)} == {"v1"}
    last = wait_for(lambda: sink.of(name)[-1]["detail"]["EndpointStatus"] == "IN_SERVICE")
    assert last
    assert sink.of(name)[-1]["detail"]["EndpointConfigName"] == old_config


def test_update_without_deployment_config_switches_when_the_new_fleet_is_up(clients, s3, emulator):
    sm, runtime = clients
    name, _ = live_endpoint(sm, s3, "v1")
    old_fleet = emulator.control.endpoints.endpoints[name].live
    config = new_config(sm, s3, "v2")

    sm.update_endpoint(EndpointName=name, EndpointConfigName=config)
    done = wait_endpoint(sm, name)

    assert done["EndpointConfigName"] == config
    assert invoke(runtime, name, ROWS)["InvokedProductionVariant"] == "v2"
    old_proc = old_fleet.variants["v1"]._proc
    wait_for(lambda: old_proc.poll() is not None, timeout=15)


def test_update_whose_model_cannot_load_keeps_the_old_config(clients, s3):
    sm, runtime = clients
    name, old_config = live_endpoint(sm, s3, "v1")
    config = new_config(sm, s3, "v2", fail_load="missing weights file")

    sm.update_endpoint(EndpointName=name, EndpointConfigName=config, DeploymentConfig=CANARY)
    done = wait_endpoint(sm, name)

    assert done["EndpointStatus"] == "InService"
    assert done["EndpointConfigName"] == old_config
    assert "missing weights file" in done["FailureReason"]
    assert invoke(runtime, name, ROWS)["InvokedProductionVariant"] == "v1"


def test_update_of_an_endpoint_that_is_updating_is_refused(clients, s3):
    sm, _ = clients
    name, _ = live_endpoint(sm, s3, "v1")
    config = new_config(sm, s3, "v2")
    sm.update_endpoint(EndpointName=name, EndpointConfigName=config, DeploymentConfig=CANARY)

    with pytest.raises(ClientError) as exc:
        sm.update_endpoint(EndpointName=name, EndpointConfigName=config)

    assert exc.value.response["Error"]["Code"] == "ValidationException"
    sm.delete_endpoint(EndpointName=name)
