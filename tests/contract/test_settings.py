"""maas_contract.settings: the handlers' settings and their environment variables, defined once;
infra and the local stack write the environment with `to_env`, the handlers read it back."""

from __future__ import annotations

import dataclasses
import json

import pytest

from maas_contract.settings import HandlerSettings, MisconfiguredError, env_var, read

REQUIRED = dict(
    registry_table="maas-dev-registry",
    resource_prefix="maas-dev",
    artifact_bucket="maas-dev-artifacts",
    data_bucket="maas-dev-data",
    capture_bucket="maas-dev-capture",
    kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
    sagemaker_role_arn="arn:aws:iam::123456789012:role/sagemaker",
    training_image_uri="ecr/pytorch-training:2.5-gpu",
    inference_image_uri="ecr/pytorch-inference:2.5-gpu",
    inference_image_uri_cpu="ecr/pytorch-inference:2.5-cpu",
    source_dir_s3_uri="s3://maas-dev-artifacts/code/sourcedir.tar.gz",
    training_instance_type="ml.g5.xlarge",
)
METRICS = ({"Name": "validation:accuracy", "Regex": "val_acc=([0-9.]+)"},)


def test_the_environment_reads_back_as_the_settings_it_was_written_from():
    settings = HandlerSettings(
        **REQUIRED,
        metric_definitions=METRICS,
        model_5xx_per_min=3,
        model_p99_latency_ms=1500.5,
        alarm_topic_arn="arn:aws:sns:us-east-1:123456789012:alarms",
    )

    assert HandlerSettings.from_env(settings.to_env()) == settings


def test_every_setting_has_its_own_environment_variable():
    variables = [env_var(f.name) for f in dataclasses.fields(HandlerSettings)]

    assert len(set(variables)) == len(variables)
    assert env_var("registry_table") == "REGISTRY_TABLE"
    optional = {"ALARM_TOPIC_ARN", "GENERATION_IMAGE_URI", "TOKEN_USAGE_TABLE", "TOKEN_QUOTAS"}
    assert set(HandlerSettings(**REQUIRED).to_env()) == set(variables) - optional


def test_to_env_writes_values_as_given_so_cdk_tokens_pass_through():
    token = "${Token[TOKEN.123]}"
    env = HandlerSettings(**{**REQUIRED, "registry_table": token, "kms_key_arn": token}).to_env()

    assert env["REGISTRY_TABLE"] == token
    assert env["KMS_KEY_ARN"] == token


def test_numbers_and_metric_definitions_are_written_as_the_handlers_read_them():
    env = HandlerSettings(**REQUIRED, metric_definitions=METRICS, model_5xx_per_min=1).to_env()

    assert env["MODEL_5XX_PER_MIN"] == "1"
    assert env["MODEL_P99_LATENCY_MS"] == "1000"
    assert json.loads(env["METRIC_DEFINITIONS"]) == list(METRICS)


def test_a_missing_required_variable_is_named_in_a_misconfigured_error():
    env = HandlerSettings(**REQUIRED).to_env()
    del env["DATA_BUCKET"], env["SAGEMAKER_ROLE_ARN"]

    with pytest.raises(MisconfiguredError, match="DATA_BUCKET, SAGEMAKER_ROLE_ARN"):
        HandlerSettings.from_env(env)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MODEL_5XX_PER_MIN", "many"),
        ("MODEL_P99_LATENCY_MS", "-1"),
        ("MODEL_P99_LATENCY_MS", "nan"),
        ("METRIC_DEFINITIONS", "{not json"),
        ("METRIC_DEFINITIONS", '[{"Name": "x"}]'),
        ("RESOURCE_PREFIX", "a-prefix-far-too-long-for-sagemaker-names"),
    ],
)
def test_a_malformed_value_is_a_misconfigured_error(name, value):
    env = {**HandlerSettings(**REQUIRED).to_env(), name: value}

    with pytest.raises(MisconfiguredError, match=name):
        HandlerSettings.from_env(env)


def test_defaults_apply_when_optional_variables_are_unset():
    env = HandlerSettings(**REQUIRED).to_env()
    for optional in ("MODEL_5XX_PER_MIN", "METRIC_DEFINITIONS", "POWERTOOLS_SERVICE_NAME"):
        del env[optional]

    settings = HandlerSettings.from_env(env)

    assert (settings.model_5xx_per_min, settings.metric_definitions) == (1.0, ())
    assert settings.service_name == "maas"
    assert settings.alarm_topic_arn is None


def test_read_gives_one_text_setting_now():
    assert read("registry_table", {"REGISTRY_TABLE": "t"}) == "t"
    assert read("metrics_namespace", {}) == "maas"
    with pytest.raises(MisconfiguredError, match="REGISTRY_TABLE"):
        read("registry_table", {})
    with pytest.raises(KeyError):
        read("model_5xx_per_min", {})
    with pytest.raises(KeyError):
        read("no_such_setting", {})


def test_the_inference_image_follows_the_instance_type():
    settings = HandlerSettings(**REQUIRED)

    assert settings.inference_image("ml.g5.xlarge") == REQUIRED["inference_image_uri"]
    assert settings.inference_image("ml.m5.large") == REQUIRED["inference_image_uri_cpu"]


def test_settings_are_read_on_use_not_at_import(monkeypatch):
    monkeypatch.setenv("REGISTRY_TABLE", "first")
    first = read("registry_table")
    monkeypatch.setenv("REGISTRY_TABLE", "second")

    assert (first, read("registry_table")) == ("first", "second")
