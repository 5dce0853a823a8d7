"""maas_contract.names: one model-name rule, and every SageMaker name built from it fits.

SageMaker's names (endpoints, endpoint configs, models, training jobs) are at most 63 of
a-z, A-Z, 0-9 and '-', starting and ending with a letter or digit: botocore's service model
carries each shape's pattern and limit, as the API reference lists them, e.g.
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpoint.html
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import botocore.session
import pytest

from maas_contract import alarms, names

LONGEST_PREFIX = "p" * names.RESOURCE_PREFIX_MAX
LONGEST_MODEL = "m" * names.MODEL_NAME_MAX
LONGEST_SUFFIX = "d" + "f" * (names.MODEL_SUFFIX_MAX - 1)
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
ENDPOINT = names.endpoint_name(LONGEST_PREFIX, LONGEST_MODEL)
# Every name built from a stage's prefix and a model name, with the longest inputs allowed,
# beside the SageMaker request field it goes into.
LONGEST_MODEL_NAME = names.model_name(
    LONGEST_PREFIX, LONGEST_MODEL, names.VERSION_MAX, LONGEST_SUFFIX
)
LONGEST_NAMES = [
    ("CreateEndpointInput", "EndpointName", ENDPOINT),
    (
        "CreateEndpointConfigInput",
        "EndpointConfigName",
        names.endpoint_config_name(LONGEST_PREFIX, LONGEST_MODEL, LONGEST_SUFFIX),
    ),
    ("CreateModelInput", "ModelName", LONGEST_MODEL_NAME),
    (
        "CreateTrainingJobRequest",
        "TrainingJobName",
        names.training_job_name(LONGEST_PREFIX, LONGEST_MODEL, LATEST, "ffff"),
    ),
    # The endpoint's own rollback alarms, named in its AutoRollbackConfiguration.
    ("AlarmDetails", "AlarmName", alarms.errors_alarm_name(ENDPOINT)),
    ("AlarmDetails", "AlarmName", alarms.latency_alarm_name(ENDPOINT)),
]


def _shape(operation_input: str, member: str):
    model = botocore.session.get_session().get_service_model("sagemaker")
    return model.shape_for(operation_input).members[member]


@pytest.mark.parametrize(("operation_input", "member", "name"), LONGEST_NAMES)
def test_every_name_built_from_the_longest_inputs_fits_sagemaker(operation_input, member, name):
    shape = _shape(operation_input, member)

    assert len(name) <= names.SAGEMAKER_NAME_MAX
    assert names.SAGEMAKER_NAME.match(name), name
    assert len(name) <= shape.metadata["max"]
    assert re.match(shape.metadata["pattern"], name), (shape.metadata["pattern"], name)


def test_the_deployment_model_name_is_the_longest_and_uses_every_character():
    assert len(LONGEST_MODEL_NAME) == names.SAGEMAKER_NAME_MAX


@pytest.mark.parametrize(
    ("operation_input", "member"),
    [
        ("CreateEndpointInput", "EndpointName"),
        ("CreateEndpointConfigInput", "EndpointConfigName"),
        ("CreateModelInput", "ModelName"),
        ("CreateTrainingJobRequest", "TrainingJobName"),
    ],
)
def test_a_name_the_contract_takes_sagemaker_takes(operation_input, member):
    shape = _shape(operation_input, member)
    samples = ["a", "a-b", "a--b", "A1-b2", "x" * 63, "x" * 64, "-a", "a-", "a_b", "a.b"]

    assert shape.metadata["max"] == names.SAGEMAKER_NAME_MAX
    for sample in filter(names.SAGEMAKER_NAME.match, samples):
        assert re.fullmatch(shape.metadata["pattern"].strip("^$"), sample), sample


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("digits", True),
        ("a", True),
        ("a-1", True),
        (LONGEST_MODEL, True),
        (LONGEST_MODEL + "m", False),
        ("-digits", False),
        ("digits-", False),
        ("Digits", False),
        ("dig_its", False),
        ("", False),
    ],
)
def test_the_model_name_rule(name, valid):
    assert names.is_model_name(name) is valid
    assert bool(re.match(names.MODEL_NAME_PATTERN, name)) is valid


@pytest.mark.parametrize(
    ("prefix", "valid"),
    [("maas-dev", True), ("ab", True), (LONGEST_PREFIX, True), (LONGEST_PREFIX + "p", False)]
    + [("a", False), ("1maas", False), ("Maas", False), ("maas_dev", False)],
)
def test_the_resource_prefix_rule(prefix, valid):
    assert names.is_resource_prefix(prefix) is valid


def test_builders_refuse_inputs_outside_the_rules():
    with pytest.raises(ValueError, match="model name"):
        names.endpoint_name("maas", LONGEST_MODEL + "m")
    with pytest.raises(ValueError, match="resource prefix"):
        names.endpoint_name(LONGEST_PREFIX + "p", "digits")
    with pytest.raises(ValueError, match="version"):
        names.model_name("maas", "digits", names.VERSION_MAX + 1, "d1")
    with pytest.raises(ValueError, match="suffix"):
        names.endpoint_config_name("maas", "digits", "D-1")
    with pytest.raises(ValueError, match="token"):
        names.training_job_name("maas", "digits", LATEST, "xyz")


def test_the_names_a_deployment_and_a_job_get():
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    assert names.endpoint_name("maas", "digits") == "maas-digits"
    assert names.endpoint_config_name("maas", "digits", "d0123") == "maas-digits-d0123"
    assert names.model_name("maas", "digits", 3, "d0123") == "maas-digits-v3-d0123"
    assert names.training_job_name("maas", "digits", started, "beef") == (
        "maas-digits-20260102030405-beef"
    )


def test_generated_ids_fit_the_suffix_rule_and_an_auto_deployment_id_is_stable():
    generated = [names.new_deployment_id(), names.auto_deployment_id("maas-digits-job")]

    assert all(re.match(names.MODEL_SUFFIX_PATTERN, i) for i in generated)
    assert len(generated[0]) == names.MODEL_SUFFIX_MAX
    assert names.auto_deployment_id("job") == names.auto_deployment_id("job")
    assert names.new_deployment_id() != names.new_deployment_id()


def test_the_model_of_an_endpoint_is_read_back_only_from_a_name_maas_built():
    assert names.model_of_endpoint("maas", "maas-digits") == "digits"
    assert names.model_of_endpoint("maas", "other-digits") is None
    assert names.model_of_endpoint("maas", "maas-Not_A_Model") is None
