"""The control plane speaks AWS JSON 1.1 as botocore's service model defines it."""

from __future__ import annotations

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from maas_local.sagemaker import protocol
from tests.maas_local.sagemaker.emulator_helpers import (
    ROLE,
    create_config,
    create_model,
    signed_call,
    unique,
)


def test_models_and_endpoint_configs_round_trip(sm, s3):
    model = create_model(sm, s3, unique("model"))
    config = create_config(sm, unique("cfg"), {"v1": (model, 1.0)})

    described = sm.describe_model(ModelName=model)
    assert described["ModelArn"].endswith(f":model/{model}")
    assert described["PrimaryContainer"]["ModelDataUrl"].endswith("/model.tar.gz")
    assert described["ExecutionRoleArn"] == ROLE
    cfg = sm.describe_endpoint_config(EndpointConfigName=config)
    assert cfg["ProductionVariants"][0]["ModelName"] == model
    assert cfg["CreationTime"].year >= 2024  # a timestamp botocore parsed

    sm.delete_endpoint_config(EndpointConfigName=config)
    sm.delete_model(ModelName=model)
    with pytest.raises(ClientError) as exc:
        sm.describe_model(ModelName=model)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    assert "Could not find model" in exc.value.response["Error"]["Message"]


def test_invalid_input_is_refused_with_botocores_own_validation(unvalidated_sm):
    with pytest.raises(ClientError) as exc:
        unvalidated_sm.create_model(ModelName="no-container", ExecutionRoleArn=123)

    error = exc.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "ValidationException"
    assert "ExecutionRoleArn" in error["Error"]["Message"]


def test_missing_required_member_and_unknown_member_are_validation_errors(unvalidated_sm, emulator):
    with pytest.raises(ClientError) as missing:
        unvalidated_sm.describe_endpoint()
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    assert "EndpointName" in missing.value.response["Error"]["Message"]
    body = json.dumps({"EndpointName": "x", "Surprise": 1}).encode()
    status, error = signed_call(emulator.url, "SageMaker.DescribeEndpoint", body)
    assert status == 400
    assert error["__type"] == "ValidationException" and "Surprise" in error["message"]
    status, error = signed_call(emulator.url, "SageMaker.DescribeEndpoint", b"{not json")
    assert status == 400 and error["__type"] == "SerializationException"


def test_endpoint_config_with_unknown_model_is_refused(sm):
    with pytest.raises(ClientError) as exc:
        create_config(sm, unique("cfg"), {"v1": (unique("ghost"), 1.0)})
    assert exc.value.response["Error"]["Code"] == "ValidationException"


def test_duplicate_model_name_is_refused(sm, s3):
    model = create_model(sm, s3, unique("model"))
    with pytest.raises(ClientError) as exc:
        create_model(sm, s3, model)
    assert "already existing" in exc.value.response["Error"]["Message"]


def test_tags_can_be_added_listed_and_deleted(sm, s3):
    arn = sm.describe_model(ModelName=create_model(sm, s3, unique("model")))["ModelArn"]

    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "ml"}])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    sm.delete_tags(ResourceArn=arn, TagKeys=["team"])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == []


def test_operation_the_emulator_does_not_implement_is_named_in_the_error(sm):
    with pytest.raises(ClientError) as exc:
        sm.list_notebook_instances()
    assert exc.value.response["Error"]["Code"] == "UnknownOperationException"
    assert "ListNotebookInstances" in exc.value.response["Error"]["Message"]


def test_unsigned_request_is_refused_and_health_answers(emulator):
    request = urllib.request.Request(
        emulator.url + "/",
        data=b"{}",
        headers={"X-Amz-Target": "SageMaker.ListEndpoints"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request, timeout=10)
    assert exc.value.code == 403
    with urllib.request.urlopen(emulator.url + "/_emulator/health", timeout=10) as response:
        assert json.loads(response.read())["status"] == "ok"


def test_response_checker_catches_a_shape_the_service_would_not_send():
    operation = protocol.operation("sagemaker", "DescribeEndpoint")
    with pytest.raises(AssertionError, match="EndpointArn"):
        protocol.check_response(operation, {"EndpointName": "x", "EndpointStatus": "InService"})
