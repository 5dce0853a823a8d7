"""The emulator's events have exactly the keys of AWS's documented sample events.

The samples are `tests/events/aws_*.json`, copied from "Events that Amazon SageMaker AI sends to
Amazon EventBridge" (tests/events/SOURCES.md):
https://docs.aws.amazon.com/sagemaker/latest/dg/automating-sagemaker-with-eventbridge.html
Keys are compared recursively; the keys inside HyperParameters and Tags are the caller's own.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from maas_local.sagemaker import events
from tests.maas_local.sagemaker.emulator_helpers import (
    BUCKET,
    IMAGE,
    ROLE,
    blobs,
    create_config,
    create_model,
    put_npz,
    put_sourcedir,
    unique,
    wait_endpoint,
    wait_for,
)

EVENTS = Path(__file__).resolve().parents[2] / "events"
FREE_MAPS = {"HyperParameters", "Tags"}
ACCOUNT, REGION = "123456789012", "us-east-1"
T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def sample(name: str) -> dict:
    return json.loads((EVENTS / f"aws_{name}.json").read_text())


def key_paths(value, prefix: str = "") -> set[str]:
    """Every key path in a document: `detail.ResourceConfig.InstanceType`, `x[].y`."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            if key not in FREE_MAPS:
                paths |= key_paths(child, path)
    elif isinstance(value, list):
        for child in value:
            paths |= key_paths(child, prefix + "[]")
    return paths


def full_training_describe(status: str = "Completed") -> dict:
    """DescribeTrainingJob with every field the sample shows, and some it does not."""
    return {
        "TrainingJobName": "job-1",
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/job-1",
        "TrainingJobStatus": status,
        "SecondaryStatus": status,
        "HyperParameters": {"epochs": "3"},
        "AlgorithmSpecification": {
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "loss", "Regex": "loss=(.*)"}],
            "EnableSageMakerMetricsTimeSeries": False,
        },
        "RoleArn": ROLE,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://b/train",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "application/x-npz",
                "CompressionType": "None",
                "RecordWrapperType": "None",
                "InputMode": "File",
            }
        ],
        "OutputDataConfig": {"KmsKeyId": "alias/k", "S3OutputPath": "s3://b/out"},
        "ResourceConfig": {
            "InstanceType": "ml.m5.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 20,
            "VolumeKmsKeyId": "alias/k",
            "KeepAlivePeriodInSeconds": 0,
        },
        "VpcConfig": {},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 120},
        "CreationTime": T0,
        "TrainingStartTime": T0,
        "TrainingEndTime": T0,
        "LastModifiedTime": T0,
        "SecondaryStatusTransitions": [],
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/out/job-1/output/model.tar.gz"},
        "FinalMetricDataList": [{"MetricName": "loss", "Value": 0.1, "Timestamp": T0}],
        "EnableNetworkIsolation": True,
        "EnableManagedSpotTraining": True,
        "TrainingTimeInSeconds": 10,
        "BillableTimeInSeconds": 10,
        "FailureReason": "AlgorithmError: boom",
    }


def endpoint_describe(pending: bool = False) -> dict:
    variant = {
        "VariantName": "AllTraffic",
        "CurrentWeight": 1.0,
        "DesiredWeight": 1.0,
        "CurrentInstanceCount": 1,
        "DesiredInstanceCount": 1,
    }
    describe = {
        "EndpointName": "ep",
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/ep",
        "EndpointConfigName": "ep-config-1",
        "ProductionVariants": [variant],
        "EndpointStatus": "Updating" if pending else "InService",
        "CreationTime": T0,
        "LastModifiedTime": T0,
        "LastDeploymentConfig": {"BlueGreenUpdatePolicy": {}},
    }
    if pending:
        describe["PendingDeploymentSummary"] = {
            "EndpointConfigName": "ep-config-2",
            "ProductionVariants": [dict(variant, CurrentWeight=0.25)],
            "StartTime": T0,
        }
    return describe


def test_completed_training_job_event_has_the_samples_keys_and_no_others():
    event = events.training_job_event(
        full_training_describe(), [{"Key": "k", "Value": "v"}], account=ACCOUNT, region=REGION
    )
    assert key_paths(event) == key_paths(sample("training_job_state_change"))
    assert event["detail"]["CreationTime"] == str(int(T0.timestamp() * 1000))  # as the sample


def test_failed_training_job_event_adds_only_the_documented_failure_reason():
    event = events.training_job_event(
        full_training_describe("Failed"), [], account=ACCOUNT, region=REGION
    )
    expected = key_paths(sample("training_job_state_change")) | {"detail.FailureReason"}
    assert key_paths(event) == expected


def test_endpoint_event_has_the_samples_keys_and_value_formats():
    event = events.endpoint_event(endpoint_describe(), [], account=ACCOUNT, region=REGION)
    assert key_paths(event) == key_paths(sample("endpoint_state_change"))
    assert event["detail"]["EndpointStatus"] == "IN_SERVICE"
    assert event["detail"]["CreationTime"] == T0.timestamp() * 1000
    assert isinstance(event["detail"]["CreationTime"], float)


def test_deployment_event_during_a_canary_has_the_samples_keys():
    event = events.endpoint_deployment_event(
        endpoint_describe(pending=True),
        [],
        stage="Baking",
        message="Baking for 600 seconds (TerminationWaitInSeconds)",
        account=ACCOUNT,
        region=REGION,
        started=T0,
    )
    assert event["detail-type"] == "SageMaker Endpoint Deployment State Change"
    assert key_paths(event) == key_paths(sample("endpoint_deployment_state_change"))
    status = event["detail"]["PendingDeploymentSummary"]["ProductionVariants"][0]["VariantStatus"]
    assert status == [
        {
            "Status": "Baking",
            "StatusMessage": status[0]["StatusMessage"],
            "StartTime": int(T0.timestamp() * 1000),
        }
    ]


def test_deployment_stage_must_be_a_documented_status():
    with pytest.raises(ValueError, match="Baking"):
        events.variant_status("Shifting", "", T0)


@pytest.mark.slow
def test_emulated_training_job_and_endpoint_send_no_key_the_samples_lack(sm, s3, sink):
    name = unique("shape-job")
    x, y = blobs()
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        RoleArn=ROLE,
        HyperParameters={**put_sourcedir(s3), "epochs": "1"},
        InputDataConfig=[
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": put_npz(s3, f"data/{name}/train/d.npz", x, y),
                    }
                },
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    endpoint = unique("shape-ep")
    config = create_config(
        sm, unique("cfg"), {"AllTraffic": (create_model(sm, s3, unique("m")), 1.0)}
    )
    sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
    wait_endpoint(sm, endpoint)
    finished = wait_for(
        lambda: [e for e in sink.of(name) if e["detail"]["TrainingJobStatus"] == "Completed"]
    )
    in_service = wait_for(
        lambda: [e for e in sink.of(endpoint) if e["detail"]["EndpointStatus"] == "IN_SERVICE"]
    )
    sm.delete_endpoint(EndpointName=endpoint)

    for event in sink.of(name):
        assert key_paths(event) <= key_paths(sample("training_job_state_change"))
    assert key_paths(in_service[-1]) == key_paths(sample("endpoint_state_change"))
    assert finished[-1]["detail"]["TrainingJobStatus"] == "Completed"
