"""The `sagemaker` control plane: one method per operation, over in-memory records."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maas_local.sagemaker import events, rules
from maas_local.sagemaker.endpoints import Endpoints
from maas_local.sagemaker.event_publisher import EventPublisher
from maas_local.sagemaker.protocol import AwsError, now, project, validation
from maas_local.sagemaker.saved_state import SavedState
from maas_local.sagemaker.training_jobs import TrainingJobs

ACCOUNT = "123456789012"  # moto's default account, so ARNs line up across the local stack


@dataclass
class Context:
    """What every part of the emulator shares: where it writes, how it routes, where events go."""

    root: Path
    region: str
    sink: EventPublisher
    account: str = ACCOUNT
    seed: int | None = None
    time_scale: float = 0.1
    canary_error_threshold: float = 0.1
    load_timeout_s: float = 300.0
    rng: random.Random = field(init=False)
    # Called before each event goes out: the change it announces is saved first.
    on_change: Callable[[], None] = lambda: None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - traffic splitting, not security

    def emit_training(self, describe: dict[str, Any], tags: list) -> None:
        event = events.training_job_event(describe, tags, account=self.account, region=self.region)
        self.on_change()
        self.sink.emit(event)

    def emit_endpoint(self, describe: dict[str, Any], tags: list) -> None:
        event = events.endpoint_event(describe, tags, account=self.account, region=self.region)
        self.on_change()
        self.sink.emit(event)

    def emit_deployment(
        self, describe: dict[str, Any], tags: list, *, stage: str, message: str
    ) -> None:
        """A "SageMaker Endpoint Deployment State Change" for a blue/green update's step."""
        event = events.endpoint_deployment_event(
            describe, tags, stage=stage, message=message, account=self.account, region=self.region
        )
        self.on_change()
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
        self.saved = SavedState(self)
        ctx.on_change = self.saved.save

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        method = getattr(self, f"op_{operation}", None)
        if method is None:
            raise AwsError("UnknownOperationException", f"{operation} is not emulated locally")
        rules.check_request(operation, params)
        result = method(params) or {}
        if not operation.startswith(("Describe", "List")):
            self.saved.save()  # before the caller hears of the change
        return result

    def shutdown(self) -> None:
        self.saved.save()
        self.saved.closing = True
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
        rows = self.training.summaries(p)
        return _page("ListTrainingJobs", rows, p, "TrainingJobSummaries")

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
        rows = _summaries(self.models, p, "ModelName", "ModelArn")
        return _page("ListModels", rows, p, "Models")

    def op_ListEndpointConfigs(self, p):  # noqa: N802
        rows = _summaries(self.configs, p, "EndpointConfigName", "EndpointConfigArn")
        return _page("ListEndpointConfigs", rows, p, "EndpointConfigs")

    def op_CreateEndpointConfig(self, p):  # noqa: N802
        name = p["EndpointConfigName"]
        for spec in p["ProductionVariants"]:
            self._model(spec["ModelName"])
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
        rows = self.endpoints.summaries(p)
        return _page("ListEndpoints", rows, p, "Endpoints")

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


def _summaries(table: dict[str, dict[str, Any]], p: dict[str, Any], name: str, arn: str) -> list:
    """ListModels / ListEndpointConfigs rows that pass NameContains, in no particular order."""
    return [
        {name: key, arn: record[arn], "CreationTime": record["CreationTime"]}
        for key, record in list(table.items())
        if p.get("NameContains", "") in key
    ]


# Sorting and paging of the List* operations. Their API reference pages:
# https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ListTrainingJobs.html (and
# API_ListEndpoints, API_ListModels, API_ListEndpointConfigs). Default sort: CreationTime;
# default order: Ascending for training jobs, Descending for the others. ListEndpoints documents
# MaxResults "defaults to 10"; the service pages the other three by 10 as well.
_DEFAULT_ORDER = {"ListTrainingJobs": "Ascending"}
_NAME_FIELD = {
    "ListTrainingJobs": "TrainingJobName",
    "ListEndpoints": "EndpointName",
    "ListModels": "ModelName",
    "ListEndpointConfigs": "EndpointConfigName",
}
_STATUS_FIELD = {"ListTrainingJobs": "TrainingJobStatus", "ListEndpoints": "EndpointStatus"}
DEFAULT_MAX_RESULTS = 10


def _page(operation: str, rows: list[dict], p: dict[str, Any], member: str) -> dict[str, Any]:
    """One page of `rows`, sorted as asked, with a NextToken when more remain.

    The token names the last row returned (its sort key), so a page continues after it even
    when rows are created or deleted between calls, and it only fits the query that made it.
    """
    name_field = _NAME_FIELD[operation]
    by = p.get("SortBy", "CreationTime")

    def key(row: dict[str, Any]) -> list:
        if by == "Name":
            return [row[name_field], ""]
        if by == "Status":
            return [row[_STATUS_FIELD[operation]], row[name_field]]
        return [row["CreationTime"].timestamp(), row[name_field]]

    descending = p.get("SortOrder", _DEFAULT_ORDER.get(operation, "Descending")) == "Descending"
    rows = sorted(rows, key=key, reverse=descending)
    scope = _query_scope(operation, p)
    if p.get("NextToken"):
        after = _read_token(p["NextToken"], scope)
        rows = [r for r in rows if (key(r) < after if descending else key(r) > after)]
    size = p.get("MaxResults", DEFAULT_MAX_RESULTS)
    result: dict[str, Any] = {member: rows[:size]}
    if len(rows) > size:
        result["NextToken"] = _write_token(key(rows[size - 1]), scope)
    return result


def _query_scope(operation: str, p: dict[str, Any]) -> str:
    query = {k: v for k, v in p.items() if k not in ("NextToken", "MaxResults")}
    text = json.dumps([operation, query], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_token(after: list, scope: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after, "scope": scope}).encode()).decode()


def _read_token(token: str, scope: str) -> list:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        if decoded["scope"] == scope and isinstance(decoded["after"], list):
            return decoded["after"]
    except (ValueError, binascii.Error, KeyError, TypeError):
        pass
    raise validation("Invalid pagination token.")
