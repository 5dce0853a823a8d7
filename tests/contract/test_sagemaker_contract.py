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
