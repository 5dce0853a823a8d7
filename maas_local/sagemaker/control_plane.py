"""The `sagemaker` control plane: one method per operation, over in-memory records."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maas_local.sagemaker import events
from maas_local.sagemaker.endpoints import Endpoints
from maas_local.sagemaker.protocol import AwsError, now, project, validation
from maas_local.sagemaker.training_jobs import TrainingJobs

ACCOUNT = "123456789012"  # moto's default account, so ARNs line up across the local stack


@dataclass
class Context:
    """What every part of the emulator shares: where it writes, how it routes, where events go."""

    root: Path
    region: str
    sink: events.EventSink
    account: str = ACCOUNT
    seed: int | None = None
    time_scale: float = 0.1
    canary_error_threshold: float = 0.1
    load_timeout_s: float = 300.0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - traffic splitting, not security

    def emit_training(self, describe: dict[str, Any], tags: list) -> None:
        event = events.training_job_event(describe, tags, account=self.account, region=self.region)
        self.sink.emit(event)

    def emit_endpoint(self, describe: dict[str, Any], tags: list) -> None:
        event = events.endpoint_event(describe, tags, account=self.account, region=self.region)
        self.sink.emit(event)


class ControlPlane:
    def __init__(self, ctx: Context, source_dir: Path) -> None:
        self.ctx = ctx
        self.models: dict[str, dict[str, Any]] = {}
        self.configs: dict[str, dict[str, Any]] = {}
        self.tags: dict[str, list[dict[str, str]]] = {}
        self._lock = threading.Lock()
        self.training = TrainingJobs(ctx, source_dir)
        self.endpoints = Endpoints(ctx, self._config, self._model)

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        method = getattr(self, f"op_{operation}", None)
        if method is None:
            raise AwsError("UnknownOperationException", f"{operation} is not emulated locally")
        return method(params) or {}

    def shutdown(self) -> None:
        self.endpoints.shutdown()
        self.training.shutdown()

    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:sagemaker:{self.ctx.region}:{self.ctx.account}:{kind}/{name.lower()}"

    # -- training jobs ---------------------------------------------------------------------
    def op_CreateTrainingJob(self, p):  # noqa: N802 - AWS operation names
        result = self.training.create(p)
        self.tags[result["TrainingJobArn"]] = list(p.get("Tags", []))
        return result

    def op_DescribeTrainingJob(self, p):  # noqa: N802
        return self.training.describe(p["TrainingJobName"])

    def op_ListTrainingJobs(self, p):  # noqa: N802
        return self.training.list(p)

    def op_StopTrainingJob(self, p):  # noqa: N802
        self.training.stop(p["TrainingJobName"])

    # -- models and endpoint configs -------------------------------------------------------
    def op_CreateModel(self, p):  # noqa: N802
        name = p["ModelName"]
        if not (p.get("PrimaryContainer") or p.get("Containers")):
            raise validation("A model needs a PrimaryContainer or Containers.")
        record = project("DescribeModel", p)
        record.update(ModelArn=self._arn("model", name), CreationTime=now())
        self._put(self.models, name, record, f'Cannot create already existing model "{name}".')
        self.tags[record["ModelArn"]] = list(p.get("Tags", []))
        return {"ModelArn": record["ModelArn"]}

    def op_DescribeModel(self, p):  # noqa: N802
        return self._model(p["ModelName"])

    def op_DeleteModel(self, p):  # noqa: N802
        self._model(p["ModelName"])
        self.models.pop(p["ModelName"], None)

    def op_ListModels(self, p):  # noqa: N802
        return {"Models": _listing(self.models, p, "ModelName", "ModelArn")}

    def op_ListEndpointConfigs(self, p):  # noqa: N802
        rows = _listing(self.configs, p, "EndpointConfigName", "EndpointConfigArn")
        return {"EndpointConfigs": rows}

    def op_CreateEndpointConfig(self, p):  # noqa: N802
        name = p["EndpointConfigName"]
        for spec in p["ProductionVariants"]:
            self._model(spec["ModelName"])
        names = [spec["VariantName"] for spec in p["ProductionVariants"]]
        if len(set(names)) != len(names):
            raise validation("VariantName must be unique within an endpoint config.")
        record = project("DescribeEndpointConfig", p)
        record.update(EndpointConfigArn=self._arn("endpoint-config", name), CreationTime=now())
        message = f'Cannot create already existing endpoint configuration "{name}".'
        self._put(self.configs, name, record, message)
        self.tags[record["EndpointConfigArn"]] = list(p.get("Tags", []))
        return {"EndpointConfigArn": record["EndpointConfigArn"]}

    def op_DescribeEndpointConfig(self, p):  # noqa: N802
        return self._config(p["EndpointConfigName"])

    def op_DeleteEndpointConfig(self, p):  # noqa: N802
        self._config(p["EndpointConfigName"])
        self.configs.pop(p["EndpointConfigName"], None)

    # -- endpoints -------------------------------------------------------------------------
    def op_CreateEndpoint(self, p):  # noqa: N802
        result = self.endpoints.create(p)
        self.tags[result["EndpointArn"]] = list(p.get("Tags", []))
        return result

    def op_UpdateEndpoint(self, p):  # noqa: N802
        return self.endpoints.update(p)

    def op_UpdateEndpointWeightsAndCapacities(self, p):  # noqa: N802
        return self.endpoints.update_weights(p)

    def op_DescribeEndpoint(self, p):  # noqa: N802
        return self.endpoints.describe(p["EndpointName"])

    def op_ListEndpoints(self, p):  # noqa: N802
        return self.endpoints.list(p)

    def op_DeleteEndpoint(self, p):  # noqa: N802
        self.endpoints.delete(p["EndpointName"])

    # -- tags ------------------------------------------------------------------------------
    def op_AddTags(self, p):  # noqa: N802
        current = {t["Key"]: t for t in self.tags.setdefault(p["ResourceArn"], [])}
        current.update({t["Key"]: t for t in p["Tags"]})
        self.tags[p["ResourceArn"]] = list(current.values())
        return {"Tags": p["Tags"]}

    def op_ListTags(self, p):  # noqa: N802
        return {"Tags": self.tags.get(p["ResourceArn"], [])}

    def op_DeleteTags(self, p):  # noqa: N802
        keys = set(p["TagKeys"])
        tags = self.tags.get(p["ResourceArn"], [])
        self.tags[p["ResourceArn"]] = [t for t in tags if t["Key"] not in keys]

    # -- records ---------------------------------------------------------------------------
    def _put(self, table: dict, name: str, record: dict, exists_message: str) -> None:
        with self._lock:
            if name in table:
                raise validation(exists_message)
            table[name] = record

    def _model(self, name: str) -> dict[str, Any]:
        if name not in self.models:
            raise validation(f'Could not find model "{self._arn("model", name)}".')
        return self.models[name]

    def _config(self, name: str) -> dict[str, Any]:
        if name not in self.configs:
            arn = self._arn("endpoint-config", name)
            raise validation(f'Could not find endpoint configuration "{arn}".')
        return self.configs[name]


def _listing(table: dict[str, dict[str, Any]], p: dict[str, Any], name: str, arn: str) -> list:
    """ListModels / ListEndpointConfigs: summaries filtered by NameContains, newest first."""
    rows = [
        {name: key, arn: record[arn], "CreationTime": record["CreationTime"]}
        for key, record in list(table.items())
        if p.get("NameContains", "") in key
    ]
    rows.sort(key=lambda row: row["CreationTime"], reverse=p.get("SortOrder") != "Ascending")
    return rows[: p.get("MaxResults", 100)]
