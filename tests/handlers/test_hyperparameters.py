"""A job's hyperparameters cannot reach train.py's paths or the script-mode keys, and stay
within SageMaker's limits on CreateTrainingJob's HyperParameters (at most 100 entries, keys of
at most 256 characters, values of at most 2,500: botocore's model of the API,
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html)."""

from __future__ import annotations

import pytest

from handlers.training_jobs import routes as training_jobs
from handlers.training_jobs.schemas import RESERVED_HYPERPARAMETERS
from tests.handlers.support import call, error_of, training_body, training_event
from train import build_parser


@pytest.mark.parametrize(
    "key",
    [
        "train",
        "validation",
        "model-dir",
        "model_dir",
        "output-data-dir",
        "output_data_dir",
        "checkpoint-dir",
        "checkpoint_dir",
        "pretrained-path",
        "pretrained_path",
        "recipe",
        "sagemaker_program",
        "sagemaker_submit_directory",
        "sagemaker_distributed_dataparallel_enabled",
        "sagemaker-program",
    ],
)
def test_a_path_option_or_a_script_mode_key_is_refused(sagemaker_calls, lambda_context, key):
    body = training_body(hyperparameters={key: "/etc"})

    reply = call(training_jobs, training_event(body), lambda_context)

    assert reply.status == 400, reply.body
    assert key in error_of(reply).message
    assert "CreateTrainingJob" not in sagemaker_calls.requests


def test_a_value_past_sagemakers_2500_characters_is_refused(sagemaker_calls, lambda_context):
    fits = training_body(hyperparameters={"anomaly-class": "x" * 2500})
    too_long = training_body(hyperparameters={"anomaly-class": "x" * 2501})

    assert call(training_jobs, training_event(fits), lambda_context).status == 201
    assert call(training_jobs, training_event(too_long), lambda_context).status == 400


def test_ordinary_hyperparameters_still_pass(sagemaker_calls, lambda_context):
    body = training_body(hyperparameters={"epochs": 3, "lr": 0.001, "compile": False})

    reply = call(training_jobs, training_event(body), lambda_context)

    assert reply.status == 201, reply.body
    sent = sagemaker_calls.last("CreateTrainingJob")["HyperParameters"]
    assert (sent["epochs"], sent["lr"], sent["compile"]) == ("3", "0.001", "false")


def test_the_reserved_names_are_every_path_option_of_train_py():
    options = {
        flag.removeprefix("--")
        for action in build_parser()._actions
        for flag in action.option_strings
        if flag.startswith("--")
    }
    paths = {
        name
        for name in options
        if name.replace("_", "-").endswith(("-dir", "-path")) or name in ("train", "validation")
    }

    assert paths <= RESERVED_HYPERPARAMETERS
    assert RESERVED_HYPERPARAMETERS - {"recipe"} <= options  # each still names a real option
