"""Stage settings, read from `cdk.json` context and checked before any construct is built."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from maas_contract.names import VERSION_MAX, check_model_name, check_resource_prefix

# API client names become Cognito app client and usage plan names.
_CLIENT_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")


class ConfigError(ValueError):
    """A stage's settings in cdk.json are missing or wrong; the message says which."""


@dataclass(frozen=True)
class DeclaredModel:
    """A model version that `cdk deploy` serves from a real-time endpoint."""

    name: str
    version: int
    artifact_key: str
    instance_type: str = "ml.g5.xlarge"
    initial_instance_count: int = 1
    min_instances: int = 1
    max_instances: int = 2
    target_invocations_per_instance: int = 100
    scale_in_cooldown_s: int = 300
    scale_out_cooldown_s: int = 60
    canary_percent: int = 10
    canary_wait_s: int = 300
    capture_percent: int = 20
    # Serve batches through the artifact's code/inference.py `handle` (what train.py writes);
    # false for an artifact whose inference.py has none.
    batching: bool = True

    def __post_init__(self) -> None:
        try:
            check_model_name(self.name)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if self.version < 1:
            raise ConfigError(f"model {self.name}: version must be >= 1")
        if not self.artifact_key.endswith(".tar.gz") or self.artifact_key.startswith("/"):
            raise ConfigError(
                f"model {self.name}: artifact_key is a key like models/x/1/model.tar.gz"
            )
        if not 1 <= self.min_instances <= self.initial_instance_count <= self.max_instances:
            raise ConfigError(
                f"model {self.name}: need 1 <= min_instances <= initial_instance_count"
                " <= max_instances"
            )
        if not 1 <= self.canary_percent <= 50:
            raise ConfigError(f"model {self.name}: canary_percent must be 1..50")


@dataclass(frozen=True)
class ApiClient:
    """One client application: an OAuth2 app client, an API key and a usage plan, and its
    token budget on the OpenAI-compatible routes (prompt plus completion tokens), which the
    openai function enforces itself: a usage plan counts requests, not tokens."""

    name: str
    scopes: tuple[str, ...]
    rate_limit: float
    burst_limit: int
    quota_per_day: int
    tokens_per_minute: int
    tokens_per_day: int

    def __post_init__(self) -> None:
        if not _CLIENT_NAME.match(self.name):
            raise ConfigError(f"client name {self.name!r}: use a-z, 0-9 and '-'")
        unknown = set(self.scopes) - {"invoke", "admin"}
        if not self.scopes or unknown:
            raise ConfigError(f"client {self.name}: scopes must be a subset of invoke, admin")
        if not 1 <= self.tokens_per_minute <= self.tokens_per_day:
            raise ConfigError(f"client {self.name}: need 1 <= tokens_per_minute <= tokens_per_day")


@dataclass(frozen=True)
class Alarms:
    """Thresholds for the alarms that page people and roll deployments back."""

    api_5xx_per_5min: int = 5
    api_p99_latency_ms: int = 3000
    model_5xx_per_min: int = 1
    model_p99_latency_ms: int = 1000
    training_failures_per_hour: int = 1


@dataclass(frozen=True)
class StageConfig:
    """Everything environment-specific; constructs receive these values as typed props."""

    stage: str
    region: str
    account: str | None
    resource_prefix: str
    retain_data: bool
    log_retention_days: int
    training_instance_type: str
    framework_version: str
    py_version: str
    waf_requests_per_5min_per_ip: int
    stage_rate_limit: float
    stage_burst_limit: int
    clients: tuple[ApiClient, ...]
    alarms: Alarms
    models: tuple[DeclaredModel, ...] = field(default_factory=tuple)
    alarm_email: str | None = None
    capture_retention_days: int = 30

    @classmethod
    def from_context(cls, stage: str, stages: dict[str, Any]) -> StageConfig:
        if stage not in stages:
            raise ConfigError(
                f"stage {stage!r} is not in cdk.json context maas:stages ({sorted(stages)})"
            )
        raw = dict(stages[stage])
        known = {f.name for f in fields(cls)} - {"stage"}
        unknown = set(raw) - known
        if unknown:
            raise ConfigError(f"stage {stage}: unknown settings {sorted(unknown)}")
        try:
            raw["clients"] = tuple(
                ApiClient(**{**c, "scopes": tuple(c["scopes"])}) for c in raw.get("clients", [])
            )
            raw["alarms"] = Alarms(**raw.get("alarms", {}))
            raw["models"] = tuple(DeclaredModel(**m) for m in raw.get("models", []))
            config = cls(stage=stage, **raw)
        except TypeError as exc:
            raise ConfigError(f"stage {stage}: {exc}") from exc
        config.check()
        return config

    def check(self) -> None:
        try:
            check_resource_prefix(self.resource_prefix)
        except ValueError as exc:
            raise ConfigError(f"resource_prefix: {exc}") from None
        if self.log_retention_days not in (7, 14, 30, 90, 180, 365, 731):
            raise ConfigError("log_retention_days must be one of 7, 14, 30, 90, 180, 365, 731")
        if not self.clients:
            raise ConfigError(f"stage {self.stage}: declare at least one API client")
        names = [m.name for m in self.models]
        if len(names) != len(set(names)):
            raise ConfigError(f"stage {self.stage}: a model is declared twice")
        for model in self.models:
            if model.version > VERSION_MAX:
                raise ConfigError(f"model {model.name}: version must be <= {VERSION_MAX}")
