"""The naming rules: model names, the resource prefix, and every SageMaker name built from them.

SageMaker names endpoints, endpoint configs, models and training jobs with
`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$`, so at most 63 characters:
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateEndpoint.html
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html

The longest name built here is a deployment's model, `{prefix}-{model}-v{version}-{suffix}`:
14 + 1 + 24 + 2 + 8 + 1 + 13 = 63. The prefix and model-name limits are chosen for it, so no
name that passes the rules below can make a SageMaker name too long (tests/contract proves it
for every builder with maximal inputs, and for the rollback alarms of maas_contract.alarms).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

SAGEMAKER_NAME_MAX = 63
SAGEMAKER_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
SAGEMAKER_NAME = re.compile(SAGEMAKER_NAME_PATTERN)

# Model names: lower-case letters, digits and inner hyphens.
MODEL_NAME_MAX = 24
MODEL_NAME_PATTERN = rf"^[a-z0-9](?:[a-z0-9-]{{0,{MODEL_NAME_MAX - 2}}}[a-z0-9])?$"
# A stage's resource prefix: a letter, then letters, digits and hyphens.
RESOURCE_PREFIX_MIN = 2
RESOURCE_PREFIX_MAX = 14
RESOURCE_PREFIX_PATTERN = (
    rf"^[a-z][a-z0-9-]{{{RESOURCE_PREFIX_MIN - 1},{RESOURCE_PREFIX_MAX - 1}}}$"
)
VERSION_MAX = 99_999_999
# What tells two SageMaker models of one version apart: a deployment id (`d` + 12 hex, or
# `j` + 11 hex for one a training job started) or infra's 6-hex fingerprint.
MODEL_SUFFIX_MAX = 13
MODEL_SUFFIX_PATTERN = rf"^[a-z0-9]{{1,{MODEL_SUFFIX_MAX}}}$"
JOB_TOKEN_HEX = 4
_JOB_TIME = "%Y%m%d%H%M%S"

_MODEL_NAME = re.compile(MODEL_NAME_PATTERN)
_RESOURCE_PREFIX = re.compile(RESOURCE_PREFIX_PATTERN)
_MODEL_SUFFIX = re.compile(MODEL_SUFFIX_PATTERN)


def is_model_name(name: str) -> bool:
    return bool(_MODEL_NAME.match(name))


def is_resource_prefix(prefix: str) -> bool:
    return bool(_RESOURCE_PREFIX.match(prefix))


def check_model_name(name: str) -> str:
    if not is_model_name(name):
        raise ValueError(f"model name {name!r}: use 1-{MODEL_NAME_MAX} of a-z, 0-9 and inner '-'")
    return name


def check_resource_prefix(prefix: str) -> str:
    if not is_resource_prefix(prefix):
        raise ValueError(
            f"resource prefix {prefix!r}: use {RESOURCE_PREFIX_MIN}-{RESOURCE_PREFIX_MAX} of"
            " a-z, 0-9 and '-', starting with a letter"
        )
    return prefix


def _sagemaker(name: str) -> str:
    if not SAGEMAKER_NAME.match(name):
        raise ValueError(
            f"{name!r} is not a SageMaker name (at most {SAGEMAKER_NAME_MAX} of a-z, A-Z, 0-9"
            " and '-', starting and ending with a letter or digit)"
        )
    return name


def endpoint_name(prefix: str, model: str) -> str:
    return _sagemaker(f"{check_resource_prefix(prefix)}-{check_model_name(model)}")


def model_of_endpoint(prefix: str, endpoint: str) -> str | None:
    """The model whose endpoint this is, or None for an endpoint maas did not name."""
    model = endpoint.removeprefix(f"{prefix}-")
    return model if model != endpoint and is_model_name(model) else None


def new_deployment_id() -> str:
    return f"d{secrets.token_hex(6)}"


def auto_deployment_id(job_id: str) -> str:
    """The deployment a training job starts: one id per job, so a replayed event finds it."""
    return "j" + hashlib.sha256(job_id.encode()).hexdigest()[:11]


def endpoint_config_name(prefix: str, model: str, deployment_id: str) -> str:
    suffix = _check_suffix(deployment_id)
    return _sagemaker(f"{endpoint_name(prefix, model)}-{suffix}")


def model_name(prefix: str, model: str, version: int, suffix: str) -> str:
    """A SageMaker model of one version: `{endpoint}-v{version}-{suffix}`."""
    if not 1 <= version <= VERSION_MAX:
        raise ValueError(f"version {version} is not in 1..{VERSION_MAX}")
    return _sagemaker(f"{endpoint_name(prefix, model)}-v{version}-{_check_suffix(suffix)}")


def training_job_name(prefix: str, model: str, started: datetime, token: str) -> str:
    """`{prefix}-{model}-{YYYYmmddHHMMSS}-{4 hex}`: sortable by start, unique per start."""
    if not re.fullmatch(rf"[0-9a-f]{{{JOB_TOKEN_HEX}}}", token):
        raise ValueError(f"token {token!r} is not {JOB_TOKEN_HEX} hex digits")
    return _sagemaker(f"{endpoint_name(prefix, model)}-{started:{_JOB_TIME}}-{token}")


def new_training_job_name(prefix: str, model: str, started: datetime) -> str:
    return training_job_name(prefix, model, started, secrets.token_hex(JOB_TOKEN_HEX // 2))


def _check_suffix(suffix: str) -> str:
    if not _MODEL_SUFFIX.match(suffix):
        raise ValueError(f"name suffix {suffix!r}: use 1-{MODEL_SUFFIX_MAX} of a-z and 0-9")
    return suffix
