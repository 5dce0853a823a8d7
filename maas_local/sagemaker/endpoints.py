"""Endpoints: status, the fleets behind them, request routing, and the runtime's error shapes."""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from maas_local.sagemaker import deployment, rules
from maas_local.sagemaker.fleet import Fleet, LoadError, VariantServer
from maas_local.sagemaker.protocol import AwsError, now, validation


@dataclass
class Endpoint:
    name: str
    record: dict[str, Any]
    tags: list[dict[str, str]]
    live: Fleet | None = None
    pending: Fleet | None = None
    share: float = 0.0  # of requests that go to the pending fleet
    pending_since: Any = None
    deleted: threading.Event = field(default_factory=threading.Event)
    lock: threading.RLock = field(default_factory=threading.RLock)


class Endpoints:
    def __init__(self, ctx: Any, configs: Any, models: Any) -> None:
        self.ctx = ctx
        self.configs = configs  # name -> DescribeEndpointConfig record
        self.models = models  # name -> DescribeModel record
        self.endpoints: dict[str, Endpoint] = {}
        self._lock = threading.Lock()
        self._retiring: set[Fleet] = set()

    def arn(self, name: str) -> str:
        return f"arn:aws:sagemaker:{self.ctx.region}:{self.ctx.account}:endpoint/{name.lower()}"

    # -- control plane ---------------------------------------------------------------------
    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["EndpointName"]
        config = self._config(params["EndpointConfigName"])
        stamp = now()
        record = {
            "EndpointName": name,
            "EndpointArn": self.arn(name),
            "EndpointConfigName": config["EndpointConfigName"],
            "EndpointStatus": "Creating",
            "CreationTime": stamp,
            "LastModifiedTime": stamp,
        }
        endpoint = Endpoint(name, record, list(params.get("Tags", [])))
        with self._lock:
            if name in self.endpoints:
                raise validation(f'Cannot create already existing endpoint "{self.arn(name)}".')
            self.endpoints[name] = endpoint
        self.emit(endpoint)
        threading.Thread(target=self._bring_up, args=(endpoint, config), daemon=True).start()
        return {"EndpointArn": record["EndpointArn"]}

    def update(self, params: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._get(params["EndpointName"])
        config = self._config(params["EndpointConfigName"])
        deploy = params.get("DeploymentConfig") or {}
        with endpoint.lock:
            rules.check_deployment(deploy, self._current_config(endpoint), config)
            status = endpoint.record["EndpointStatus"]
            if status != "InService":
                raise validation(f"Cannot update endpoint {endpoint.name} in status {status}.")
            endpoint.record.pop("FailureReason", None)
            if params.get("DeploymentConfig"):
                endpoint.record["LastDeploymentConfig"] = params["DeploymentConfig"]
            self._set_status(endpoint, "Updating")
        thread = threading.Thread(
            target=deployment.roll_out,
            args=(self, endpoint, config, deploy),
            daemon=True,
        )
        thread.start()
        return {"EndpointArn": endpoint.record["EndpointArn"]}

    def update_weights(self, params: dict[str, Any]) -> dict[str, Any]:
        endpoint = self._get(params["EndpointName"])
        with endpoint.lock:
            if endpoint.record["EndpointStatus"] != "InService" or endpoint.live is None:
                raise validation(f"Cannot update endpoint {endpoint.name} while it is changing.")
            variants = endpoint.live.variants
            for desired in params["DesiredWeightsAndCapacities"]:
                if desired["VariantName"] not in variants:
                    raise validation(f"The variant {desired['VariantName']} does not exist.")
            self._set_status(endpoint, "Updating")
            for desired in params["DesiredWeightsAndCapacities"]:
                variant = variants[desired["VariantName"]]
                variant.weight = float(desired.get("DesiredWeight", variant.weight))
                variant.instances = int(desired.get("DesiredInstanceCount", variant.instances))
            self._set_status(endpoint, "InService")
        return {"EndpointArn": endpoint.record["EndpointArn"]}

    def describe(self, name: str) -> dict[str, Any]:
        endpoint = self._get(name)
        with endpoint.lock:
            record = dict(endpoint.record)
            if endpoint.live is not None:
                fraction = 1.0 - endpoint.share if endpoint.pending else 1.0
                record["ProductionVariants"] = _variants(endpoint.live, fraction)
            if endpoint.pending is not None:
                record["PendingDeploymentSummary"] = {
                    "EndpointConfigName": endpoint.pending.config_name,
                    "ProductionVariants": _variants(endpoint.pending, endpoint.share),
                    "StartTime": endpoint.pending_since,
                }
        return record

    def summaries(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """ListEndpoints rows that pass the request's filters, in no particular order."""
        keys = ("EndpointName", "EndpointArn", "CreationTime", "LastModifiedTime", "EndpointStatus")
        rows = []
        for name in list(self.endpoints):
            try:
                record = self.describe(name)
            except AwsError:
                continue  # deleted meanwhile
            if params.get("NameContains", "") not in name:
                continue
            if params.get("StatusEquals") not in (None, record["EndpointStatus"]):
                continue
            rows.append({k: record[k] for k in keys})
        return rows

    def delete(self, name: str) -> None:
        endpoint = self._get(name)
        with endpoint.lock:
            endpoint.deleted.set()
            self._set_status(endpoint, "Deleting")
            fleets = [f for f in (endpoint.live, endpoint.pending) if f is not None]
            endpoint.live = endpoint.pending = None
        with self._lock:
            self.endpoints.pop(name, None)
        for fleet in fleets:
            fleet.stop()
        shutil.rmtree(self.ctx.root / "endpoints" / name, ignore_errors=True)

    def stats(self) -> dict[str, Any]:
        """Per-variant counters for `maas local status` and the demo's traffic split."""
        result: dict[str, Any] = {}
        for name, endpoint in list(self.endpoints.items()):
            with endpoint.lock:
                fleets = [
                    ("live", endpoint.live, 1.0 - endpoint.share if endpoint.pending else 1.0)
                ]
                fleets.append(("pending", endpoint.pending, endpoint.share))
                status = endpoint.record["EndpointStatus"]
            variants = [
                {
                    "fleet": role,
                    "config": fleet.config_name,
                    "variant": v.name,
                    "trafficShare": round(fleet.shares()[v.name] * fraction, 4),
                    "state": v.state,
                    "invocations": v.invocations,
                    "modelErrors": v.model_errors,
                    "restarts": v.restarts,
                    "pid": v.pid,
                    "log": str(v.log_path),
                }
                for role, fleet, fraction in fleets
                if fleet is not None
                for v in fleet.variants.values()
            ]
            result[name] = {"status": status, "variants": variants}
        return result

    def shutdown(self) -> None:
        """Stops every model server. The endpoints stay as they are (saved_state brings them
        up again at the next start): stopping the emulator deletes nothing."""
        for endpoint in list(self.endpoints.values()):
            with endpoint.lock:
                fleets = [f for f in (endpoint.live, endpoint.pending) if f is not None]
                endpoint.live = endpoint.pending = None
            for fleet in fleets:
                fleet.stop()
        for fleet in list(self._retiring):
            self._stop_retired(fleet)

    def retire(self, fleet: Fleet, delay_s: float = 2.0) -> None:
        """Stops a fleet that no longer takes traffic, once requests already on it finish."""
        self._retiring.add(fleet)
        timer = threading.Timer(delay_s, self._stop_retired, (fleet,))
        timer.daemon = True
        timer.start()

    def _stop_retired(self, fleet: Fleet) -> None:
        fleet.stop()
        self._retiring.discard(fleet)

    # -- fleets ----------------------------------------------------------------------------
    def build_fleet(self, endpoint: Endpoint, config: dict[str, Any]) -> Fleet:
        stamp = now().strftime("%Y%m%dT%H%M%S%f")
        fleet_dir = f"{config['EndpointConfigName']}-{stamp}"
        base = self.ctx.root / "endpoints" / endpoint.name / fleet_dir
        logs = self.ctx.root / "logs" / "endpoints" / endpoint.name
        variants = []
        for spec in config["ProductionVariants"]:
            model = self.models(spec["ModelName"])
            log = logs / f"{spec['VariantName']}.log"
            variants.append(VariantServer(spec, model, base / spec["VariantName"], log))
        return Fleet(config, variants)

    def _bring_up(self, endpoint: Endpoint, config: dict[str, Any]) -> None:
        try:
            fleet = self.build_fleet(endpoint, config)
            fleet.start(self.ctx.load_timeout_s)
        except (LoadError, AwsError) as exc:
            self._fail(endpoint, exc)
            return
        self._go_live(endpoint, fleet)

    def bring_up_again(self, endpoint: Endpoint, config: dict[str, Any]) -> None:
        """An endpoint restored after a restart: its fleet again, from its model data in S3,
        which may take the stack a few seconds to serve again (retried for load_timeout_s)."""
        shutil.rmtree(self.ctx.root / "endpoints" / endpoint.name, ignore_errors=True)
        deadline = time.monotonic() + self.ctx.load_timeout_s
        while True:
            try:
                fleet = self.build_fleet(endpoint, config)
                fleet.start(self.ctx.load_timeout_s)
                break
            except Exception as exc:  # S3 or the policies not there yet, or a bad model
                if time.monotonic() + 2 > deadline:
                    self._fail(endpoint, exc)
                    return
                time.sleep(2)
        self._go_live(endpoint, fleet)

    def _fail(self, endpoint: Endpoint, exc: Exception) -> None:
        with endpoint.lock:
            endpoint.record["FailureReason"] = str(exc)[:1024]
            self._set_status(endpoint, "Failed")

    def _go_live(self, endpoint: Endpoint, fleet: Fleet) -> None:
        """The fleet serves the endpoint, unless it was deleted while the fleet started."""
        with endpoint.lock:
            if endpoint.deleted.is_set():
                fleet.stop()
                return
            endpoint.live = fleet
            self._set_status(endpoint, "InService")

    def set_status(self, endpoint: Endpoint, status: str) -> None:
        with endpoint.lock:
            self._set_status(endpoint, status)

    def _set_status(self, endpoint: Endpoint, status: str) -> None:
        if endpoint.deleted.is_set() and status != "Deleting":
            return
        endpoint.record.update(EndpointStatus=status, LastModifiedTime=now())
        self.emit(endpoint)

    def emit(self, endpoint: Endpoint) -> None:
        self.ctx.emit_endpoint(self.describe(endpoint.name), endpoint.tags)

    def _config(self, name: str) -> dict[str, Any]:
        config = self.configs(name)
        for spec in config["ProductionVariants"]:
            self.models(spec["ModelName"])  # raises if the model is gone
        return config

    def _current_config(self, endpoint: Endpoint) -> dict[str, Any]:
        """The config serving now: the live fleet's, which outlives a deleted config record."""
        if endpoint.live is not None:
            return endpoint.live.config
        return self.configs(endpoint.record["EndpointConfigName"])

    def _get(self, name: str) -> Endpoint:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            raise validation(f'Could not find endpoint "{self.arn(name)}".')
        return endpoint


def _variants(fleet: Fleet, fraction: float) -> list[dict[str, Any]]:
    return [
        {
            "VariantName": v.name,
            "CurrentWeight": v.weight * fraction,
            "DesiredWeight": v.weight,
            "CurrentInstanceCount": v.instances if v.state == "InService" else 0,
            "DesiredInstanceCount": v.instances,
        }
        for v in fleet.variants.values()
    ]
