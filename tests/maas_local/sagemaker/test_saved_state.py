"""A restarted emulator (after `maas local down` + `up`, or a crash) knows its records again,
serves its endpoints again through SystemUpdating, and ends a job that was running with a
reason (maas_local.sagemaker.saved_state).

SystemUpdating is one of DescribeEndpoint's documented EndpointStatus values ("the endpoint is
undergoing maintenance"): https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_DescribeEndpoint.html
"""

from __future__ import annotations

from contextlib import contextmanager

from botocore.config import Config

from maas_contract.sagemaker import VARIANT_NAME
from maas_local.sagemaker import serve
from maas_local.sagemaker.saved_state import RESTARTED, STATE_FILE
from tests.maas_local.sagemaker.emulator_helpers import (
    BUCKET,
    IMAGE,
    ROLE,
    ROLE_STATEMENTS,
    STUB_CODE,
    VERIFIER,
    create_config,
    create_model,
    emulator_client,
    invoke,
    role_policies,
    unique,
    wait_endpoint,
    wait_for,
)
from tests.maas_local.sagemaker.test_entry_script import code_channel

ROWS = [[0.1, -0.2, 0.0, 0.3]]
SLEEPER = b"import time\nprint('training', flush=True)\ntime.sleep(120)\n"


@contextmanager
def running(root, sink):
    server = serve(
        "127.0.0.1",
        0,
        root,
        sink.url,
        source_dir=STUB_CODE,
        seed=7,
        time_scale=1.0,
        verifier=VERIFIER,
        iam_policies=role_policies(root / "policies.json", {ROLE: ROLE_STATEMENTS}),
    )
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=120)
    try:
        yield (
            emulator_client("sagemaker", server.url, cfg),
            emulator_client("sagemaker-runtime", server.url, cfg),
        )
    finally:
        server.shutdown()


def _start_sleeping_job(sm, s3) -> str:
    name = unique("sleeper")
    sm.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={
            "TrainingImage": IMAGE,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["python3", "/opt/ml/input/data/code/entry.py"],
        },
        RoleArn=ROLE,
        InputDataConfig=[code_channel(s3, {"entry.py": SLEEPER})],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        StoppingCondition={"MaxRuntimeInSeconds": 600},
    )
    wait_for(
        lambda: sm.describe_training_job(TrainingJobName=name)["SecondaryStatus"] == "Training",
        60,
    )
    return name


def test_a_restart_serves_the_endpoints_again_and_ends_running_jobs_with_a_reason(
    s3, sink, tmp_path
):
    root = tmp_path / "sagemaker"
    root.mkdir()
    endpoint = unique("kept")
    with running(root, sink) as (sm, runtime):
        model = create_model(sm, s3, unique("m"), answer_with_name=True)
        config = create_config(sm, unique("cfg"), {VARIANT_NAME: (model, 1.0)})
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config)
        assert wait_endpoint(sm, endpoint)["EndpointStatus"] == "InService"
        before = invoke(runtime, endpoint, ROWS)["json"]
        job = _start_sleeping_job(sm, s3)
    assert (root / STATE_FILE).is_file()

    with running(root, sink) as (sm, runtime):
        restored = sm.describe_endpoint(EndpointName=endpoint)
        served = wait_endpoint(sm, endpoint)
        after = invoke(runtime, endpoint, ROWS)["json"]
        ended = sm.describe_training_job(TrainingJobName=job)
        models = [m["ModelName"] for m in sm.list_models()["Models"]]

    assert restored["EndpointStatus"] in ("SystemUpdating", "InService")
    assert served["EndpointStatus"] == "InService"
    assert served["EndpointConfigName"] == config
    assert after == before
    assert model in models
    assert ended["TrainingJobStatus"] == "Failed"
    assert RESTARTED in ended["FailureReason"]
    statuses = [e["detail"]["EndpointStatus"] for e in sink.of(endpoint)]
    assert statuses[-2:] == ["SYSTEM_UPDATING", "IN_SERVICE"]
    assert sink.of(job)[-1]["detail"]["TrainingJobStatus"] == "Failed"
