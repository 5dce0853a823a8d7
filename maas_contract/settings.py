"""The handlers' settings and the environment variables that carry them, defined once.

infra builds each function's environment with `HandlerSettings(...).to_env()`, and so does the
local stack; the handlers read it back with `HandlerSettings.from_env()` (or `read(...)` for a
single value on a hot path), on use rather than at import, so one process can point the
handlers at other tables between calls. Reading checks values; `to_env` writes them as given,
because infra passes CDK token strings that only CloudFormation resolves.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from maas_contract.names import is_resource_prefix
from maas_contract.sagemaker import is_gpu

_ENV = "env"
_PARSE = "parse"


class MisconfiguredError(RuntimeError):
    """A setting is missing or malformed: a deployment fault, never the caller's."""


def _text(name: str, text: str) -> str:
    return text


def _prefix(name: str, text: str) -> str:
    if not is_resource_prefix(text):
        raise MisconfiguredError(f"environment variable {name}: {text!r} breaks the prefix rule")
    return text


def _positive(name: str, text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise MisconfiguredError(f"environment variable {name} is not a number") from None
    if not number > 0:  # also refuses NaN
        raise MisconfiguredError(f"environment variable {name} must be positive")
    return number


def _metric_definitions(name: str, text: str) -> tuple[dict[str, str], ...]:
    try:
        parsed = json.loads(text)
    except ValueError:
        raise MisconfiguredError(f"environment variable {name} is not JSON") from None
    valid = isinstance(parsed, list) and all(
        isinstance(d, dict) and isinstance(d.get("Name"), str) and isinstance(d.get("Regex"), str)
        for d in parsed
    )
    if not valid:
        raise MisconfiguredError(f"environment variable {name}: want [{{Name, Regex}}, ...]")
    return tuple({"Name": d["Name"], "Regex": d["Regex"]} for d in parsed)


def _setting(env: str, default: Any = MISSING, parse: Callable[[str, str], Any] = _text) -> Any:
    return field(default=default, metadata={_ENV: env, _PARSE: parse})


@dataclass(frozen=True)
class HandlerSettings:
    registry_table: str = _setting("REGISTRY_TABLE")
    resource_prefix: str = _setting("RESOURCE_PREFIX", parse=_prefix)
    artifact_bucket: str = _setting("ARTIFACT_BUCKET")
    data_bucket: str = _setting("DATA_BUCKET")
    capture_bucket: str = _setting("CAPTURE_BUCKET")
    kms_key_arn: str = _setting("KMS_KEY_ARN")
    sagemaker_role_arn: str = _setting("SAGEMAKER_ROLE_ARN")
    training_image_uri: str = _setting("TRAINING_IMAGE_URI")
    # GPU and CPU flavours; a deployment picks by its instance type (`inference_image`).
    inference_image_uri: str = _setting("INFERENCE_IMAGE_URI")
    inference_image_uri_cpu: str = _setting("INFERENCE_IMAGE_URI_CPU")
    source_dir_s3_uri: str = _setting("SOURCE_DIR_S3_URI")
    # The stage's default (cdk.json `training_instance_type`).
    training_instance_type: str = _setting("TRAINING_INSTANCE_TYPE")
    # [{"Name": ..., "Regex": ...}], as training/metric_definitions.json lists them.
    metric_definitions: tuple[dict[str, str], ...] = _setting(
        "METRIC_DEFINITIONS", (), _metric_definitions
    )
    # The large-model-inference (LMI, vLLM) image that serves text-generation versions, resolved
    # at synth like the others (maas_contract.generation says what that container speaks).
    generation_image_uri: str | None = _setting("GENERATION_IMAGE_URI", None)
    # The OpenAI-compatible function's token accounting: the table that counts each client's
    # prompt and completion tokens, and each client's limits (JSON, cdk.json `clients`).
    token_usage_table: str | None = _setting("TOKEN_USAGE_TABLE", None)
    token_quotas: str | None = _setting("TOKEN_QUOTAS", None)
    # The thresholds of the rollback alarms the handlers give each endpoint (cdk.json `alarms`).
    model_5xx_per_min: float = _setting("MODEL_5XX_PER_MIN", 1.0, _positive)
    model_p99_latency_ms: float = _setting("MODEL_P99_LATENCY_MS", 1000.0, _positive)
    alarm_topic_arn: str | None = _setting("ALARM_TOPIC_ARN", None)
    # Powertools reads these two itself; they are settings all the same.
    service_name: str = _setting("POWERTOOLS_SERVICE_NAME", "maas")
    metrics_namespace: str = _setting("POWERTOOLS_METRICS_NAMESPACE", "maas")

    def to_env(self) -> dict[str, str]:
        """The functions' environment. Optional settings left unset are left out."""
        env = {}
        for setting in fields(self):
            value = getattr(self, setting.name)
            if value is not None:
                env[setting.metadata[_ENV]] = _env_text(value)
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HandlerSettings:
        """Every setting, read now. A MisconfiguredError names every required variable that is
        missing, or the first value that does not parse."""
        source = os.environ if environ is None else environ
        given = {s.name: source.get(s.metadata[_ENV]) for s in fields(cls)}
        missing = [s.metadata[_ENV] for s in fields(cls) if _required(s) and not given[s.name]]
        if missing:
            raise MisconfiguredError(f"environment variables not set: {', '.join(missing)}")
        return cls(
            **{
                s.name: s.metadata[_PARSE](s.metadata[_ENV], given[s.name])
                for s in fields(cls)
                if given[s.name]
            }
        )

    def inference_image(self, instance_type: str) -> str:
        """The GPU image on GPU instances; on CPU ones the CUDA image would not start."""
        return self.inference_image_uri if is_gpu(instance_type) else self.inference_image_uri_cpu


def env_var(setting: str) -> str:
    """The environment variable of a setting, by field name: `env_var("registry_table")`."""
    return str(_field(setting).metadata[_ENV])


def read(setting: str, environ: Mapping[str, str] | None = None) -> str:
    """One text setting, by field name, read now: for a hot path that needs only that one.
    MisconfiguredError when it is unset and has no default."""
    found = _field(setting)
    if found.metadata[_PARSE] is not _text:
        raise KeyError(f"{setting} is not a text setting; use HandlerSettings.from_env()")
    value = (os.environ if environ is None else environ).get(env_var(setting))
    if value:
        return value
    if _required(found) or found.default is None:
        raise MisconfiguredError(f"environment variable {env_var(setting)} is not set")
    return str(found.default)


def _field(setting: str) -> Field[Any]:
    for candidate in fields(HandlerSettings):
        if candidate.name == setting:
            return candidate
    raise KeyError(f"no handler setting {setting!r}")


def _required(setting: Field[Any]) -> bool:
    return setting.default is MISSING


def _env_text(value: Any) -> str:
    if isinstance(value, tuple | list):
        return json.dumps(list(value), separators=(",", ":"))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
