"""SageMaker's script-mode contract: how a training script is called and what it is told.

The SDK JSON-encodes hyperparameter values; the toolkit decodes them, passes the user's ones
(not `sagemaker_*`) as `--key value` arguments and as `SM_HPS`, and describes the job's folders
and channels in `SM_*` variables and `input/config/*.json`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from maas_local.sagemaker.protocol import validation


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


def command(request: dict[str, Any], name: str, paths: dict[str, Path], checkpoint_uri: str | None):
    """The script's argv (program first) and environment, as SageMaker's toolkit builds them."""
    hps = decode_hyperparameters(request.get("HyperParameters", {}))
    user_hps = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
    program = str(hps.get("sagemaker_program") or "train.py")
    script = (paths["code"] / program).resolve()
    if not script.is_relative_to(paths["code"].resolve()) or not script.is_file():
        raise validation(f"sagemaker_program {program!r} not found in the source directory")
    args: list[str] = []
    for key, value in user_hps.items():
        args += [f"--{key}", _as_arg(value)]
    if checkpoint_uri and not {"checkpoint-dir", "checkpoint_dir"} & user_hps.keys():
        args += ["--checkpoint-dir", str(paths["checkpoints"])]
    env = _environment(request, name, paths, user_hps, program, args)
    _write_config(request, paths["config"])
    return [program, *args], env


def _environment(request, name, paths, user_hps, program, args) -> dict[str, str]:
    channels = [c["ChannelName"] for c in request.get("InputDataConfig", [])]
    env = dict(os.environ)
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
