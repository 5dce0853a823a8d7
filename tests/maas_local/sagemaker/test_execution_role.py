"""What a job or an endpoint reads and writes in S3, the emulator authorises against its
execution role's policy (from the synthesised template, in the local stack), as SageMaker's
own calls are in the cloud: a role that may not read the data fails the job, one that may not
read the model fails the endpoint, each with S3's AccessDenied.

References: "How to use SageMaker AI execution roles"
(https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-roles.html) and "Amazon S3 API
operations and permissions"
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html).
"""

from __future__ import annotations

import pytest

from tests.maas_local.sagemaker.emulator_helpers import (
    BUCKET,
    IMAGE,
    create_config,
    put_model,
    unique,
    wait_endpoint,
)
from tests.maas_local.sagemaker.test_training_jobs import start_job, wait_job

pytestmark = pytest.mark.slow
STRANGER = "arn:aws:iam::123456789012:role/not-in-the-template"


def test_a_job_whose_role_may_not_list_its_channel_fails_with_access_denied(sm, s3):
    name = unique("train-denied")

    start_job(sm, s3, name, role=STRANGER, epochs="1")
    job = wait_job(sm, name)

    assert job["TrainingJobStatus"] == "Failed"
    reason = job["FailureReason"]
    assert "AccessDenied" in reason and "s3:ListBucket" in reason, reason
    assert "assumed-role/not-in-the-template/SageMaker" in reason


def test_an_endpoint_whose_model_role_may_not_read_the_artifact_fails(sm, s3):
    name = unique("denied-endpoint")
    url = put_model(s3, name)
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=STRANGER,
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": url},
    )
    create_config(sm, name, {"AllTraffic": (name, 1.0)})

    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    done = wait_endpoint(sm, name)

    assert done["EndpointStatus"] == "Failed"
    assert "AccessDenied" in done["FailureReason"], done["FailureReason"]
    assert f"arn:aws:s3:::{BUCKET}/" in done["FailureReason"]
