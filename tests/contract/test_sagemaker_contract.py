"""maas_contract.sagemaker: the SageMaker rules infra, handlers and the emulator share.

- Instance store volumes: https://docs.aws.amazon.com/sagemaker/latest/dg/host-instance-storage.html
- ResourceConfig.VolumeKmsKeyId: https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ResourceConfig.html
"""

from __future__ import annotations

import botocore.session
import pytest

from maas_contract import sagemaker as contract


def _enum(shape: str) -> list[str]:
    model = botocore.session.get_session().get_service_model("sagemaker")
    return list(model.shape_for(shape).enum)


@pytest.mark.parametrize("shape", ["TrainingInstanceType", "ProductionVariantInstanceType"])
def test_every_instance_type_sagemaker_accepts_has_a_family(shape):
    for instance_type in _enum(shape):
        assert contract.instance_family(instance_type), instance_type


@pytest.mark.parametrize(
    ("instance_type", "local"),
    [
        ("ml.g5.xlarge", True),
        ("ml.g4dn.xlarge", True),
        ("ml.p4d.24xlarge", True),
        ("ml.p5.48xlarge", True),
        ("ml.g6e.xlarge", True),
        ("ml.m5d.large", True),
        ("ml.m5.large", False),
        ("ml.c5.xlarge", False),
        ("ml.p3.2xlarge", False),
        ("ml.m7i-flex.large", False),
    ],
)
def test_local_storage_decides_whether_a_volume_key_may_be_set(instance_type, local):
    assert contract.has_local_storage(instance_type) is local
    assert contract.volume_kms_allowed([instance_type]) is not local


def test_one_local_storage_variant_rules_out_the_key_for_the_whole_config():
    assert not contract.volume_kms_allowed(["ml.m5.large", "ml.g5.xlarge"])
    assert contract.volume_kms_allowed(["ml.m5.large", "ml.c5.large"])


def test_something_that_is_not_an_instance_type_is_refused():
    with pytest.raises(ValueError):
        contract.instance_family("g5.xlarge")


@pytest.mark.parametrize(
    ("value", "version"),
    [
        ("maas-version=3", 3),
        ("trace=abc,maas-version=12", 12),
        ("trace=abc", None),
        (None, None),
        ("maas-version=x", None),
    ],
)
def test_the_version_a_model_server_reports_is_read_from_custom_attributes(value, version):
    assert contract.parse_version_attribute(value) == version


def test_the_version_attribute_round_trips():
    assert contract.parse_version_attribute(contract.version_attribute(7)) == 7


def test_batched_serving_environment_names_the_handler_and_torchserves_batch_settings():
    """The AWS PyTorch inference container runs TorchServe under the SageMaker PyTorch
    inference toolkit. The toolkit's TorchServe config sets enable_envvars_config=true, so
    TorchServe reads any property from a TS_<NAME> variable: TS_DEFAULT_SERVICE_HANDLER
    replaces the toolkit's handler, which runs input_fn/predict_fn/output_fn once per request,
    with code/inference.py's `handle`, which gets the whole batch
    (https://pytorch.org/serve/configuration.html). The toolkit reads SAGEMAKER_TS_BATCH_SIZE,
    SAGEMAKER_TS_MAX_BATCH_DELAY (ms), SAGEMAKER_TS_MIN_WORKERS, SAGEMAKER_TS_MAX_WORKERS and
    SAGEMAKER_TS_RESPONSE_TIMEOUT (s) into TorchServe's model config, defaulting to batch 1,
    100 ms, 1 worker and 60 s once any of them is set (aws/sagemaker-pytorch-inference-toolkit,
    src/sagemaker_pytorch_serving_container/ts_parameters.py and ts_environment.py)."""
    assert contract.batched_serving_environment() == {
        "TS_DEFAULT_SERVICE_HANDLER": "/opt/ml/model/code/inference.py:handle",
        "SAGEMAKER_TS_BATCH_SIZE": "8",
        "SAGEMAKER_TS_MAX_BATCH_DELAY": "5",
        "SAGEMAKER_TS_MIN_WORKERS": "1",
        "SAGEMAKER_TS_MAX_WORKERS": "1",
        "SAGEMAKER_TS_RESPONSE_TIMEOUT": "60",
    }
    chosen = contract.batched_serving_environment(batch_size=16, max_batch_delay_ms=0)
    assert (chosen["SAGEMAKER_TS_BATCH_SIZE"], chosen["SAGEMAKER_TS_MAX_BATCH_DELAY"]) == (
        "16",
        "0",
    )


@pytest.mark.parametrize(
    "settings", [{"batch_size": 0}, {"max_batch_delay_ms": -1}, {"workers": 0}]
)
def test_batched_serving_environment_refuses_settings_torchserve_cannot_run(settings):
    with pytest.raises(ValueError, match="positive"):
        contract.batched_serving_environment(**settings)
