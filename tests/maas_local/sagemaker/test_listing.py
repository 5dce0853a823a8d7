"""List* operations page with NextToken as SageMaker's do, driven by boto3's own paginators.

https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListModels.html (and
API_ListEndpointConfigs, API_ListEndpoints, API_ListTrainingJobs): MaxResults 1-100, a NextToken
when the result was truncated; ListEndpoints documents "This value defaults to 10".
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from maas_contract.sagemaker import VARIANT_NAME
from tests.maas_local.sagemaker.emulator_helpers import (
    BUCKET,
    IMAGE,
    ROLE,
    blobs,
    create_model,
    put_npz,
    unique,
    wait_endpoint,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def twelve_models(sm, s3) -> tuple[str, list[str]]:
    """Twelve models under one name prefix, created oldest first: (prefix, names)."""
    prefix = unique("page")
    names = [create_model(sm, s3, f"{prefix}-{i:02d}") for i in range(12)]
    return prefix, names


def pages(sm, operation: str, member: str, **params) -> list[list[dict]]:
    paginator = sm.get_paginator(operation)
    return [page[member] for page in paginator.paginate(**params)]


def validation_message(call, **params) -> str:
    with pytest.raises(ClientError) as exc:
        call(**params)
    assert exc.value.response["Error"]["Code"] == "ValidationException"
    return exc.value.response["Error"]["Message"]


def test_list_models_pages_newest_first_with_next_token(sm, twelve_models):
    prefix, names = twelve_models

    listed = pages(
        sm, "list_models", "Models", NameContains=prefix, PaginationConfig={"PageSize": 5}
    )

    assert [len(page) for page in listed] == [5, 5, 2]
    assert [m["ModelName"] for page in listed for m in page] == names[::-1]


def test_list_models_answers_ten_by_default_and_says_more_remain(sm, twelve_models):
    prefix, names = twelve_models

    first = sm.list_models(NameContains=prefix, SortBy="Name", SortOrder="Ascending")
    rest = sm.list_models(
        NameContains=prefix, SortBy="Name", SortOrder="Ascending", NextToken=first["NextToken"]
    )

    assert [m["ModelName"] for m in first["Models"]] == names[:10]
    assert [m["ModelName"] for m in rest["Models"]] == names[10:]
    assert "NextToken" not in rest


def test_next_token_continues_after_rows_deleted_between_pages(sm, s3):
    prefix = unique("shrink")
    names = [create_model(sm, s3, f"{prefix}-{i}") for i in range(4)]
    first = sm.list_models(NameContains=prefix, MaxResults=2, SortOrder="Ascending")
    sm.delete_model(ModelName=names[2])  # the row the next page would have started with

    rest = sm.list_models(
        NameContains=prefix, MaxResults=2, SortOrder="Ascending", NextToken=first["NextToken"]
    )

    assert [m["ModelName"] for m in first["Models"]] == names[:2]
    assert [m["ModelName"] for m in rest["Models"]] == names[3:]


def test_invalid_or_foreign_next_token_is_refused(sm, twelve_models):
    prefix, _ = twelve_models
    token = sm.list_models(NameContains=prefix, MaxResults=2)["NextToken"]

    garbage = validation_message(sm.list_models, NameContains=prefix, NextToken="not-a-token")
    foreign = validation_message(sm.list_endpoint_configs, NameContains=prefix, NextToken=token)
    other_query = validation_message(sm.list_models, NameContains="other", NextToken=token)

    assert garbage == foreign == other_query == "Invalid pagination token."


@pytest.mark.parametrize(
    ("max_results", "constraint"),
    [
        (0, "Member must have value greater than or equal to 1"),
        (101, "Member must have value less than or equal to 100"),
    ],
)
def test_max_results_outside_1_to_100_is_refused(unvalidated_sm, max_results, constraint):
    message = validation_message(unvalidated_sm.list_models, MaxResults=max_results)

    assert message == (
        f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to satisfy "
        f"constraint: {constraint}"
    )


def test_list_endpoint_configs_pages(sm, twelve_models):
    prefix, models = twelve_models
    configs = []
    for model in models[:3]:
        spec = {
            "VariantName": VARIANT_NAME,
            "ModelName": model,
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 1,
        }
        sm.create_endpoint_config(EndpointConfigName=f"{model}-cfg", ProductionVariants=[spec])
        configs.append(f"{model}-cfg")

    listed = pages(
        sm,
        "list_endpoint_configs",
        "EndpointConfigs",
        NameContains=prefix,
        SortBy="Name",
        SortOrder="Ascending",
        PaginationConfig={"PageSize": 2},
    )

    assert [[c["EndpointConfigName"] for c in page] for page in listed] == [
        configs[:2],
        configs[2:],
    ]


def test_list_endpoints_pages(sm, s3):
    """Endpoints whose model fails to load settle quickly and hold no worker."""
    prefix = unique("eps")
    model = create_model(sm, s3, unique("eps-model"), fail_load="not needed")
    spec = {
        "VariantName": VARIANT_NAME,
        "ModelName": model,
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1,
    }
    config = unique("eps-cfg")
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[spec])
    names = [f"{prefix}-{i}" for i in range(3)]
    for name in names:
        sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    for name in names:
        wait_endpoint(sm, name)

    listed = pages(
        sm, "list_endpoints", "Endpoints", NameContains=prefix, PaginationConfig={"PageSize": 2}
    )

    assert [[e["EndpointName"] for e in page] for page in listed] == [
        names[::-1][:2],
        names[::-1][2:],
    ]
    for name in names:
        sm.delete_endpoint(EndpointName=name)


def test_list_training_jobs_pages_oldest_first(sm, s3):
    """ListTrainingJobs sorts Ascending by default (API_ListTrainingJobs.html, SortOrder)."""
    prefix = unique("jobs")
    x, y = blobs()
    train = put_npz(s3, f"data/{prefix}/train/part-0.npz", x, y)
    names = [f"{prefix}-{i}" for i in range(3)]
    for name in names:
        sm.create_training_job(
            TrainingJobName=name,
            AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            RoleArn=ROLE,
            HyperParameters={"sagemaker_program": '"train.py"', "epochs": "1"},
            InputDataConfig=[
                {
                    "ChannelName": "train",
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": train}},
                }
            ],
            OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            StoppingCondition={"MaxRuntimeInSeconds": 600},
        )

    listed = pages(
        sm,
        "list_training_jobs",
        "TrainingJobSummaries",
        NameContains=prefix,
        PaginationConfig={"PageSize": 2},
    )

    assert [[j["TrainingJobName"] for j in page] for page in listed] == [names[:2], names[2:]]
    for name in names:
        wait_for(
            lambda n=name: (
                sm.describe_training_job(TrainingJobName=n)["TrainingJobStatus"]
                in ("Completed", "Failed")
            )
        )
