"""SageMaker's script-mode contract: how a training script is called and what it is told.

The SDK JSON-encodes hyperparameter values; the toolkit decodes them, passes the user's ones
(not `sagemaker_*`) as `--key value` arguments and as `SM_HPS`, and describes the job's folders
and channels in `SM_*` variables and `input/config/*.json`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

CONTAINER_ROOT = "/opt/ml/"


def decode_hyperparameters(raw: dict[str, str]) -> dict[str, Any]:
    """Values are JSON-encoded by the SageMaker SDK; plain strings pass through as they are."""
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            decoded[key] = json.loads(value)
        except ValueError:
            decoded[key] = value
    return decoded


def _as_arg(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class EntryPointError(Exception):
    """The job names no code to run, or code that is not there: the container's own failure."""


def command(request: dict[str, Any], name: str, paths: dict[str, Path], checkpoint_uri: str | None):
    """The job's argv and environment, as its container would build them.

    `AlgorithmSpecification.ContainerEntrypoint` (+ `ContainerArguments`) replaces the image's
    entry point, so that command runs as given and the training toolkit does not run. Otherwise
    the PyTorch container's toolkit runs `sagemaker_program` from the unpacked
    `sagemaker_submit_directory`. Anything else fails the job: the image has no code of ours.
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_AlgorithmSpecification.html
    """
    spec = request.get("AlgorithmSpecification") or {}
    if spec.get("ContainerEntrypoint"):
        return _entrypoint_command(request, name, paths)
    return _script_command(request, name, paths, checkpoint_uri)


def _entrypoint_command(request: dict[str, Any], name: str, paths: dict[str, Path]):
    """ContainerEntrypoint + ContainerArguments, with the container's /opt/ml/ mapped to the
    job's folder and `python`/`python3` to this interpreter."""
    spec = request["AlgorithmSpecification"]
    argv = [*spec["ContainerEntrypoint"], *(spec.get("ContainerArguments") or [])]
    job_root = str(paths["model"].parent) + "/"
    argv = [arg.replace(CONTAINER_ROOT, job_root) for arg in argv]
    if Path(argv[0]).name in ("python", "python3"):
        argv[0] = sys.executable
    env = dict(os.environ)
    env.update(request.get("Environment") or {})
    env.update(PYTHONUNBUFFERED="1", TRAINING_JOB_NAME=name)
    _write_config(request, paths["config"])
    return argv, env


def _script_command(request, name, paths, checkpoint_uri):
    hps = decode_hyperparameters(request.get("HyperParameters", {}))
    user_hps = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
    program = hps.get("sagemaker_program")
    if not program:
        raise EntryPointError(
            "No entry point: set AlgorithmSpecification.ContainerEntrypoint, or the "
            "hyperparameters sagemaker_program and sagemaker_submit_directory"
        )
    program = str(program)
    script = (paths["code"] / program).resolve()
    if not script.is_relative_to(paths["code"].resolve()) or not script.is_file():
        raise EntryPointError(
            f"sagemaker_program {program!r} not found in {CONTAINER_ROOT}code "
            "(the unpacked sagemaker_submit_directory)"
        )
    args: list[str] = []
    for key, value in user_hps.items():
        args += [f"--{key}", _as_arg(value)]
    if checkpoint_uri and not {"checkpoint-dir", "checkpoint_dir"} & user_hps.keys():
        args += ["--checkpoint-dir", str(paths["checkpoints"])]
    env = _environment(request, name, paths, user_hps, program, args)
    _write_config(request, paths["config"])
    interpreter = ["/bin/sh"] if program.endswith(".sh") else [sys.executable]
    return [*interpreter, program, *args], env


def _environment(request, name, paths, user_hps, program, args) -> dict[str, str]:
    channels = [c["ChannelName"] for c in request.get("InputDataConfig", [])]
    env = dict(os.environ)
    env.update(request.get("Environment") or {})  # CreateTrainingJob's container environment
    env.update(
        PYTHONUNBUFFERED="1",
        TRAINING_JOB_NAME=name,
        SM_MODEL_DIR=str(paths["model"]),
        SM_OUTPUT_DIR=str(paths["output"]),
        SM_OUTPUT_DATA_DIR=str(paths["output_data"]),
        SM_INPUT_DIR=str(paths["data"].parent),
        SM_INPUT_CONFIG_DIR=str(paths["config"]),
        SM_CHECKPOINT_DIR=str(paths["checkpoints"]),
        SM_HPS=json.dumps(user_hps),
        SM_CHANNELS=json.dumps(channels),
        SM_USER_ENTRY_POINT=program,
        SM_USER_ARGS=json.dumps(args),
        SM_MODULE_DIR=str(paths["code"]),
        SM_HOSTS=json.dumps(["algo-1"]),
        SM_CURRENT_HOST="algo-1",
        SM_NUM_GPUS="0",
        SM_NUM_CPUS=str(os.cpu_count() or 1),
    )
    for key, value in user_hps.items():
        env[f"SM_HP_{key.upper().replace('-', '_')}"] = _as_arg(value)
    for name in channels:
        env[f"SM_CHANNEL_{name.upper()}"] = str(paths["data"] / name)
    return env


def _write_config(request: dict[str, Any], config_dir: Path) -> None:
    channels = {c["ChannelName"]: c for c in request.get("InputDataConfig", [])}
    resource = {"current_host": "algo-1", "hosts": ["algo-1"]}
    files = {
        "hyperparameters.json": request.get("HyperParameters", {}),
        "inputdataconfig.json": channels,
        "resourceconfig.json": resource,
    }
    for name, content in files.items():
        (config_dir / name).write_text(json.dumps(content, default=str))
