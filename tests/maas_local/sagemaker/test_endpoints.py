"""Endpoints serve real inference through the model's inference.py, as sagemaker-runtime does."""

from __future__ import annotations

import json
import os
import signal

import pytest
from botocore.exceptions import ClientError

from tests.maas_local.sagemaker.emulator_helpers import (
    create_config,
    create_model,
    emulator_internals,
    invoke,
    unique,
    wait_endpoint,
    wait_for,
)

pytestmark = pytest.mark.slow

CLUSTER_ROWS = [[0.1, -0.2, 0.0, 0.3], [5.2, 4.9, 5.1, 5.0], [-5.0, 5.1, -4.8, 5.2]]


def deploy(sm, s3, variants: dict[str, dict], name: str | None = None) -> str:
    """Creates a model per variant ({variant: {"weight": w, **settings}}) and an endpoint."""
    name = name or unique("ep")
    spec = {}
    for variant, settings in variants.items():
        settings = dict(settings)
        weight = settings.pop("weight", 1.0)
        spec[variant] = (create_model(sm, s3, unique(f"m-{variant}"), **settings), weight)
    config = create_config(sm, unique("cfg"), spec)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    return name


@pytest.fixture(scope="module")
def two_variants(sm, s3):
    """One endpoint with variants a (weight 0.7) and b (weight 0.3), shared by several tests."""
    name = deploy(sm, s3, {"a": {"weight": 0.7}, "b": {"weight": 0.3}})
    assert wait_endpoint(sm, name)["EndpointStatus"] == "InService"
    return name


def test_endpoint_serves_real_inference_through_inference_py(sm, runtime, two_variants):
    response = invoke(runtime, two_variants, CLUSTER_ROWS)

    assert response["json"] == {"predictions": [0, 1, 2]}
    assert response["ContentType"] == "application/json"
    assert response["InvokedProductionVariant"] in {"a", "b"}
    described = sm.describe_endpoint(EndpointName=two_variants)
    weights = {v["VariantName"]: v["CurrentWeight"] for v in described["ProductionVariants"]}
    assert weights == pytest.approx({"a": 0.7, "b": 0.3})


def test_target_variant_is_honoured(runtime, two_variants):
    answered = {
        invoke(runtime, two_variants, CLUSTER_ROWS, TargetVariant="b")["InvokedProductionVariant"]
        for _ in range(10)
    }
    assert answered == {"b"}


def test_variant_weights_split_traffic(runtime, two_variants):
    calls = 200
    hits = [
        invoke(runtime, two_variants, CLUSTER_ROWS[:1])["InvokedProductionVariant"]
        for _ in range(calls)
    ]
    share_b = hits.count("b") / calls
    assert abs(share_b - 0.3) <= 0.15  # the issue's ±15% of traffic
    assert 0 < hits.count("b") < calls  # both variants really served
    assert hits.count("a") + hits.count("b") == calls


def test_model_error_has_the_runtime_error_shape_and_the_models_message(runtime, two_variants):
    with pytest.raises(runtime.exceptions.ModelError) as exc:
        invoke(runtime, two_variants, [[1.0, 2.0]])  # two features; the model expects four

    error = exc.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 400
    assert "expected rows of 4 features" in error["OriginalMessage"]
    assert "expected rows of 4 features" in error["Error"]["Message"]
    assert error["LogStreamArn"].startswith("arn:aws:logs:us-east-1:123456789012:log-group:")


def test_unknown_endpoint_and_unknown_variant_are_validation_errors(runtime, two_variants):
    with pytest.raises(ClientError) as missing:
        invoke(runtime, unique("nope"), CLUSTER_ROWS)
    assert missing.value.response["Error"]["Code"] == "ValidationError"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as variant:
        invoke(runtime, two_variants, CLUSTER_ROWS, TargetVariant="zzz")
    assert variant.value.response["Error"]["Code"] == "ValidationError"


def test_endpoint_answers_model_not_ready_while_loading(sm, s3, runtime):
    name = deploy(sm, s3, {"slow": {"load_delay_s": 3}})

    with pytest.raises(runtime.exceptions.ModelNotReadyException) as exc:
        invoke(runtime, name, CLUSTER_ROWS)
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "Creating"

    assert wait_endpoint(sm, name)["EndpointStatus"] == "InService"
    assert invoke(runtime, name, CLUSTER_ROWS)["json"]["predictions"] == [0, 1, 2]
    sm.delete_endpoint(EndpointName=name)


def test_model_that_cannot_load_fails_the_endpoint_with_its_reason(sm, s3, sink):
    name = deploy(sm, s3, {"broken": {"fail_load": "weights are corrupt"}})

    described = wait_endpoint(sm, name)

    assert described["EndpointStatus"] == "Failed"
    assert "weights are corrupt" in described["FailureReason"]
    event = wait_for(
        lambda: [e for e in sink.of(name) if e["detail"]["EndpointStatus"] == "FAILED"]
    )[0]
    # AWS's sample endpoint event has no FailureReason: DescribeEndpoint (above) carries it.
    assert "FailureReason" not in event["detail"]


def test_killed_model_server_is_restarted_and_the_next_request_succeeds(sm, s3, runtime, emulator):
    name = deploy(sm, s3, {"solo": {}})
    wait_endpoint(sm, name)
    variant = emulator.control.endpoints.endpoints[name].live.variants["solo"]
    old_pid = variant.pid
    os.kill(old_pid, signal.SIGKILL)
    wait_for(lambda: variant._proc.poll() is not None, timeout=10)

    with pytest.raises(ClientError) as exc:
        invoke(runtime, name, CLUSTER_ROWS)
    assert exc.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503

    assert invoke(runtime, name, CLUSTER_ROWS)["json"]["predictions"] == [0, 1, 2]
    assert variant.pid != old_pid and variant.restarts == 1
    sm.delete_endpoint(EndpointName=name)


def test_model_server_crashing_mid_request_is_restarted(sm, s3, runtime, emulator):
    name = deploy(sm, s3, {"fragile": {"crash_on": [9, 9, 9, 9]}})
    wait_endpoint(sm, name)

    with pytest.raises(ClientError) as exc:
        invoke(runtime, name, [[9, 9, 9, 9]])
    assert exc.value.response["Error"]["Code"] == "ModelError"
    assert exc.value.response["OriginalStatusCode"] == 500

    assert invoke(runtime, name, CLUSTER_ROWS)["json"]["predictions"] == [0, 1, 2]
    sm.delete_endpoint(EndpointName=name)


def test_endpoint_state_changes_arrive_as_eventbridge_events(sm, s3, sink):
    name = deploy(sm, s3, {"ev": {}})
    wait_endpoint(sm, name)

    events = wait_for(
        lambda: [e for e in sink.of(name) if e["detail"]["EndpointStatus"] == "IN_SERVICE"]
    )
    event = events[0]
    assert event["detail-type"] == "SageMaker Endpoint State Change"
    assert event["source"] == "aws.sagemaker"
    assert event["resources"] == [sm.describe_endpoint(EndpointName=name)["EndpointArn"]]
    detail = event["detail"]
    assert detail["EndpointName"] == name
    # As AWS's sample: a variant carries only its desired weight and instance count.
    assert detail["ProductionVariants"] == [{"DesiredWeight": 1.0, "DesiredInstanceCount": 1.0}]
    assert [e["detail"]["EndpointStatus"] for e in sink.of(name)][0] == "CREATING"
    json.dumps(event)  # a plain JSON document
    sm.delete_endpoint(EndpointName=name)


def test_update_weights_and_capacities_moves_traffic(sm, s3, runtime):
    name = deploy(sm, s3, {"x": {"weight": 1.0}, "y": {"weight": 1.0}})
    wait_endpoint(sm, name)

    sm.update_endpoint_weights_and_capacities(
        EndpointName=name,
        DesiredWeightsAndCapacities=[
            {"VariantName": "x", "DesiredWeight": 0.0},
            {"VariantName": "y", "DesiredWeight": 1.0},
        ],
    )

    hits = {invoke(runtime, name, CLUSTER_ROWS)["InvokedProductionVariant"] for _ in range(20)}
    assert hits == {"y"}
    sm.delete_endpoint(EndpointName=name)


def test_delete_endpoint_stops_its_model_servers(sm, s3, emulator):
    name = deploy(sm, s3, {"gone": {}})
    wait_endpoint(sm, name)
    proc = emulator.control.endpoints.endpoints[name].live.variants["gone"]._proc

    sm.delete_endpoint(EndpointName=name)

    assert proc.poll() is not None
    with pytest.raises(ClientError) as exc:
        sm.describe_endpoint(EndpointName=name)
    assert exc.value.response["Error"]["Code"] == "ValidationException"


def test_a_model_server_answers_only_the_emulator_that_started_it(emulator, sm, s3, runtime):
    """A model server listens on loopback, but another local user can reach loopback too: it
    answers only requests carrying the token its emulator gave it (in its environment, never
    on its command line)."""
    import http.client

    import psutil

    name = deploy(sm, s3, {"main": {}})
    wait_endpoint(sm, name)
    (variant,) = emulator_internals(emulator.url)[name]["variants"]
    server = psutil.Process(variant["pid"])
    (port,) = {
        c.laddr.port for c in server.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN
    }
    assert not any("token" in part.lower() for part in server.cmdline())

    def post(headers: dict[str, str]) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        body = json.dumps({"instances": CLUSTER_ROWS})
        conn.request("POST", "/invocations", body, {"Content-Type": "application/json", **headers})
        status = conn.getresponse().status
        conn.close()
        return status

    assert post({}) == 403
    assert post({"X-Maas-Worker-Token": "0" * 32}) == 403
    assert invoke(runtime, name, CLUSTER_ROWS)["json"]["predictions"] == [0, 1, 2]
    sm.delete_endpoint(EndpointName=name)


def test_custom_attributes_past_1024_characters_are_refused_as_sagemaker_refuses_them(
    runtime, two_variants
):
    """botocore checks no maximum; SageMaker does: CustomAttributes is at most 1024 characters
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html)."""
    with pytest.raises(ClientError) as refused:
        invoke(runtime, two_variants, CLUSTER_ROWS, CustomAttributes="a" * 1025)

    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert "less than or equal to 1024" in refused.value.response["Error"]["Message"]
    assert invoke(runtime, two_variants, CLUSTER_ROWS, CustomAttributes="a" * 1024)
