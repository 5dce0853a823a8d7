"""The model server says which version answered, in the response's CustomAttributes.

Every endpoint uses the one variant name (maas_contract.sagemaker.VARIANT_NAME), so during a
canary both fleets answer as `AllTraffic`. training/inference.py reads the version from the
SageMaker Model's container environment and sets `X-Amzn-SageMaker-Custom-Attributes` through
the serving toolkit's context (sagemaker-inference-toolkit passes the context to a handler
function that declares one more parameter; TorchServe's Context.set_response_header sets the
header); SageMaker returns that header as InvokeEndpoint's CustomAttributes:
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from maas_contract.sagemaker import (
    MODEL_VERSION_ENV,
    VARIANT_NAME,
    VERSION_ATTRIBUTE,
    parse_version_attribute,
    version_attribute,
)
from maas_local.sagemaker.model_worker import ServingContext
from tests.maas_local.sagemaker.emulator_helpers import (
    BUCKET,
    IMAGE,
    ROLE,
    create_config,
    unique,
    wait_endpoint,
    wait_for,
)

TRAINING = Path(__file__).resolve().parents[3] / "training"
HEADER = "X-Amzn-SageMaker-Custom-Attributes"


@pytest.fixture(scope="module")
def inference():
    name = "training_inference_under_test"  # not `inference`: tests/training imports that
    spec = importlib.util.spec_from_file_location(name, TRAINING / "inference.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_inference_py_uses_the_contracts_names(inference):
    assert inference.MODEL_VERSION_ENV == MODEL_VERSION_ENV
    assert inference.VERSION_ATTRIBUTE == VERSION_ATTRIBUTE
    assert inference.custom_attributes(None, "7") == version_attribute(7)


def test_callers_attributes_are_kept_and_the_version_appended(inference):
    answer = inference.custom_attributes("trace=abc,maas-version=99", "3")
    assert answer == "trace=abc,maas-version=3"  # a caller cannot speak for the model
    assert parse_version_attribute(answer) == 3
    assert inference.custom_attributes("x" * 1020, "3") == "maas-version=3"  # the 1,024 limit


def test_output_fn_sets_the_header_through_the_toolkits_context(inference, monkeypatch):
    context = ServingContext.for_request("/opt/ml/model", {HEADER.lower(): "trace=abc"})
    monkeypatch.setenv(MODEL_VERSION_ENV, "4")
    inference.report_version(context)
    assert context.get_response_headers(0) == {HEADER: "trace=abc,maas-version=4"}

    monkeypatch.delenv(MODEL_VERSION_ENV)
    quiet = ServingContext.for_request("/opt/ml/model", {})
    inference.report_version(quiet)
    assert quiet.get_response_headers(0) == {}


def tiny_model_archive(tmp_path: Path) -> bytes:
    """An untrained image-cnn in the repo's model.tar.gz layout, served by its inference.py."""
    from maas_training.artifacts import package, write_model_dir
    from maas_training.models import ImageCNN, ImageCNNConfig, model_config_dict

    model = ImageCNN(ImageCNNConfig(1, 8, 8, 3, base_channels=4, dropout=0.0)).eval()
    config = {
        "recipe": "image-cnn",
        "model_config": model_config_dict(model),
        "labels": [0, 1, 2],
        "input": {"kind": "image", "shape": [1, 8, 8], "dtype": "float32"},
    }
    model_dir = write_model_dir(tmp_path / "model", model, config)
    return package(model_dir, tmp_path / "model.tar.gz").read_bytes()


def create_versioned_model(sm, s3, archive: bytes, version: int) -> str:
    name = unique(f"v{version}")
    key = f"models/{name}/model.tar.gz"
    s3.put_object(Bucket=BUCKET, Key=key, Body=archive)
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": IMAGE,
            "ModelDataUrl": f"s3://{BUCKET}/{key}",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py", MODEL_VERSION_ENV: str(version)},
        },
    )
    return name


CANARY = {
    "BlueGreenUpdatePolicy": {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50},
            "WaitIntervalInSeconds": 3600,  # the canary holds for the whole test
        },
        "TerminationWaitInSeconds": 0,
    },
}


@pytest.mark.slow
def test_two_versions_behind_one_variant_each_name_themselves(sm, runtime, s3, emulator, tmp_path):
    archive = tiny_model_archive(tmp_path)
    first = create_config(
        sm, unique("cfg"), {VARIANT_NAME: (create_versioned_model(sm, s3, archive, 1), 1.0)}
    )
    second = create_config(
        sm, unique("cfg"), {VARIANT_NAME: (create_versioned_model(sm, s3, archive, 2), 1.0)}
    )
    endpoint = unique("versions")
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=first)
    assert wait_endpoint(sm, endpoint, timeout=120)["EndpointStatus"] == "InService"
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=second, DeploymentConfig=CANARY)
    wait_for(
        lambda: sm.describe_endpoint(EndpointName=endpoint).get("PendingDeploymentSummary"), 120
    )

    body = json.dumps({"instances": [[[[0.0] * 8] * 8]]})
    replies = [
        runtime.invoke_endpoint(
            EndpointName=endpoint,
            Body=body,
            ContentType="application/json",
            Accept="application/json",
            CustomAttributes="trace=t1",
        )
        for _ in range(40)
    ]
    stats = emulator.control.endpoints.stats()[endpoint]["variants"]
    sm.delete_endpoint(EndpointName=endpoint)

    assert {r["InvokedProductionVariant"] for r in replies} == {VARIANT_NAME}
    attributes = [r["CustomAttributes"] for r in replies]
    assert all(a.startswith("trace=t1,") for a in attributes)
    versions = [parse_version_attribute(a) for a in attributes]
    served = {v["config"]: v["invocations"] for v in stats}
    assert versions.count(1) == served[first] and versions.count(2) == served[second]
    assert versions.count(1) > 0 and versions.count(2) > 0
