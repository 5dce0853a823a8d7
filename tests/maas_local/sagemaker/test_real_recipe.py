"""The repo's own training/ recipe, end to end on the emulator: train, deploy, predict digits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from botocore.config import Config

from maas_local.sagemaker import serve
from maas_training.prepare_digits import write_digits
from tests.maas_local.sagemaker.emulator_helpers import (
    BUCKET,
    IMAGE,
    ROLE,
    VERIFIER,
    create_config,
    emulator_client,
    put_sourcedir,
    unique,
    wait_endpoint,
    wait_for,
)

pytestmark = pytest.mark.slow

TRAINING = Path(__file__).resolve().parents[3] / "training"


@pytest.fixture(scope="module")
def clients(moto_url, sink, tmp_path_factory):
    """An emulator of its own; jobs run the repo's training/ folder, shipped as a sourcedir."""
    server = serve(
        "127.0.0.1",
        0,
        tmp_path_factory.mktemp("sagemaker-real"),
        sink.url,
        seed=5,
        verifier=VERIFIER,
    )
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=120)
    try:
        yield (
            emulator_client("sagemaker", server.url, cfg),
            emulator_client("sagemaker-runtime", server.url, cfg),
        )
    finally:
        server.shutdown()


def test_image_cnn_trains_deploys_and_predicts_held_out_digits(clients, s3, tmp_path):
    sm, runtime = clients
    write_digits(tmp_path)
    prefix = f"digits/{unique('set')}"
    for channel in ("train", "validation"):
        data = (tmp_path / channel / "digits.npz").read_bytes()
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{channel}/digits.npz", Body=data)
    job = unique("digits")
    sm.create_training_job(
        TrainingJobName=job,
        AlgorithmSpecification={
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            "MetricDefinitions": json.loads((TRAINING / "metric_definitions.json").read_text()),
        },
        RoleArn=ROLE,
        HyperParameters={**put_sourcedir(s3, TRAINING), "recipe": '"image-cnn"', "epochs": "3"},
        InputDataConfig=[
            {
                "ChannelName": channel,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{BUCKET}/{prefix}/{channel}",
                    }
                },
            }
            for channel in ("train", "validation")
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/real-output"},
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 900},
        CheckpointConfig={"S3Uri": f"s3://{BUCKET}/checkpoints/{job}"},
    )

    described = wait_for(
        lambda: (
            (d := sm.describe_training_job(TrainingJobName=job))["TrainingJobStatus"]
            in ("Completed", "Failed", "Stopped")
            and d
        ),
        timeout=300,
        every=1.0,
    )
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    metrics = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert metrics["validation:accuracy"] >= 0.9

    model = unique("digits-model")
    sm.create_model(
        ModelName=model,
        ExecutionRoleArn=ROLE,
        PrimaryContainer={
            "Image": IMAGE,
            "ModelDataUrl": described["ModelArtifacts"]["S3ModelArtifacts"],
        },
    )
    endpoint = unique("digits")
    sm.create_endpoint(
        EndpointName=endpoint,
        EndpointConfigName=create_config(sm, unique("cfg"), {"v1": (model, 1.0)}),
    )
    assert wait_endpoint(sm, endpoint, timeout=120)["EndpointStatus"] == "InService"

    test = np.load(tmp_path / "test" / "digits.npz")
    x, y = test["x"][:50], test["y"][:50]
    response = runtime.invoke_endpoint(
        EndpointName=endpoint,
        Body=json.dumps({"instances": x.tolist()}),
        ContentType="application/json",
        Accept="application/json",
    )
    predictions = json.loads(response["Body"].read())["predictions"]
    accuracy = np.mean([str(p["label"]) == str(t) for p, t in zip(predictions, y, strict=True)])
    assert accuracy >= 0.95
    assert response["InvokedProductionVariant"] == "v1"
    sm.delete_endpoint(EndpointName=endpoint)
