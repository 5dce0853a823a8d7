"""Failure reasons name no path of the machine that failed (invoke-scope callers read them)."""

from __future__ import annotations

import pytest

from handlers.deployments.schemas import DeploymentOut
from handlers.shared.errors import public_reason
from handlers.training_jobs.schemas import TrainingJobOut

HOST_REASON = (
    'ModelError: File "/home/alice/.maas/sagemaker/endpoints/e1/model/code/inference.py", '
    "line 12; weights in /home/alice/.maas/sagemaker/models/m1/ not readable"
)


@pytest.mark.parametrize(
    ("reason", "public"),
    [
        (
            HOST_REASON,
            'ModelError: File ".../inference.py", line 12; weights in .../m1 not readable',
        ),
        ("s3://maas-local-artifacts/models/a/model.tar.gz: NoSuchKey", None),
        ("AlarmTriggered: maas-local-digits-canary-5xx in ALARM", None),
        ("loss went 1/2/3 ways", None),
        (None, None),
    ],
)
def test_paths_are_cut_to_their_last_part_and_uris_kept(reason, public):
    assert public_reason(reason) == (public if public is not None else reason)


def test_deployment_and_job_answers_carry_the_public_reason():
    times = {"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
    deployment = DeploymentOut(
        id="d1",
        model="m",
        version=1,
        kind="canary",
        status="Failed",
        failure_reason=HOST_REASON,
        endpoint_name="e",
        **times,
    )
    job = TrainingJobOut(
        id="j",
        model="m",
        recipe="image-cnn",
        status="Failed",
        failure_reason=HOST_REASON,
        instance_type="ml.g5.xlarge",
        instance_count=1,
        spot=True,
        **times,
    )

    for answer in (deployment, job):
        assert "/home/alice" not in answer.model_dump_json()
        assert "inference.py" in (answer.failure_reason or "")
