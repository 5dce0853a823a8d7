"""The emulator's records on disk: after `maas local down` + `up`, or a restart of the emulator
alone, it knows its models, endpoint configs, endpoints and training jobs again, serves every
endpoint that was serving, and closes what was in flight with a reason.

The records (what Describe* answers, tags included) are written to `<root>/control-plane.pkl`
after every change, whole or not at all (maas_local.config.write_durably), before the
change is announced as an event. At start they are read back:

- an endpoint that was `InService` or `Creating` is brought up again from its config, through
  `SystemUpdating` (SageMaker's status for an endpoint under maintenance) to `InService`;
- an endpoint caught `Updating` or `RollingBack` comes back on the config it was serving
  before the update, with a FailureReason that says the update was not applied, so the
  deployment that asked for it is closed rather than left in progress;
- a managed spot training job caught `InProgress` was interrupted, as a spot instance is, and
  is started again the way SageMaker restarts one: same name, record and TrainingStartTime,
  `InProgress` through `Interrupted` and `Starting` (the documented lifecycle,
  https://docs.aws.amazon.com/sagemaker/latest/dg/model-managed-spot-training-status.html),
  with the checkpoints in its CheckpointConfig.S3Uri copied back into its checkpoint folder
  before its script starts (model-managed-spot-training.html). Its MaxWaitTimeInSeconds goes on
  counting from its creation; past it, the job ends `Stopped` / `MaxWaitTimeExceeded`;
- any other training job caught `InProgress` ends `Failed` (`Stopping`: `Stopped`) with a
  FailureReason: its process died with the emulator.

Each of these is announced with the same events as any other change.
"""

from __future__ import annotations

import logging
import pickle  # noqa: S403 - our own file, in the owner-only state directory
import threading
import time
from typing import TYPE_CHECKING, Any

from maas_local.config import write_durably
from maas_local.sagemaker.endpoints import Endpoint
from maas_local.sagemaker.protocol import now
from maas_local.sagemaker.training_jobs import Job, spot_deadline

if TYPE_CHECKING:
    from maas_local.sagemaker.control_plane import ControlPlane

log = logging.getLogger("maas_local.sagemaker.saved_state")
STATE_FILE = "control-plane.pkl"
RESTARTED = "the SageMaker emulator restarted"
_SERVING = ("InService", "Creating", "SystemUpdating")
_MID_UPDATE = ("Updating", "RollingBack")


class SavedState:
    def __init__(self, control: ControlPlane) -> None:
        self.control = control
        self.path = control.ctx.root / STATE_FILE
        self._lock = threading.Lock()
        self.closing = False  # set at shutdown: stopping servers is not a change to record

    def save(self) -> None:
        if self.closing:
            return
        with self._lock:
            for _ in range(3):  # a record may change under the copy; copy again
                try:
                    snapshot = self._snapshot()
                    break
                except RuntimeError:
                    time.sleep(0.01)
            else:
                log.error("could not copy the records to save them")
                return
            write_durably(self.path, pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL))

    def _snapshot(self) -> dict[str, Any]:
        control = self.control
        return {
            "models": dict(control.models),
            "configs": dict(control.configs),
            "tags": dict(control.tags),
            "endpoints": {
                name: {"record": dict(e.record), "tags": list(e.tags)}
                for name, e in list(control.endpoints.endpoints.items())
            },
            "jobs": {
                name: {"record": control.training.describe(name), "tags": list(job.tags)}
                for name, job in list(control.training.jobs.items())
            },
        }

    def restore(self) -> None:
        """Reads the saved records back; brings endpoints up on background threads."""
        if not self.path.is_file():
            return
        saved = pickle.loads(self.path.read_bytes())  # noqa: S301 - our own file
        self.closing = True  # nothing half-restored is saved over the file it came from
        control = self.control
        control.models.update(saved["models"])
        control.configs.update(saved["configs"])
        control.tags.update(saved["tags"])
        interrupted: list[Job] = []
        for name, job in saved["jobs"].items():
            if self._restore_job(name, job["record"], job["tags"]):
                interrupted.append(control.training.jobs[name])
        for name, endpoint in saved["endpoints"].items():
            self._restore_endpoint(name, endpoint["record"], endpoint["tags"])
        self.closing = False
        self.save()
        for job in interrupted:  # once every record is back: their runs save as they go
            control.training.resume(job)
        log.info(
            "restored %d models, %d configs, %d endpoints, %d training jobs",
            len(saved["models"]),
            len(saved["configs"]),
            len(saved["endpoints"]),
            len(saved["jobs"]),
        )

    def _restore_job(self, name: str, record: dict[str, Any], tags: list) -> bool:
        """Puts the job back; True when it is a spot job to start again."""
        training = self.control.training
        job = Job(record=record, tags=tags)
        training.jobs[name] = job
        status = record["TrainingJobStatus"]
        if status not in ("InProgress", "Stopping"):
            return False
        if status == "InProgress" and record.get("EnableManagedSpotTraining"):
            return self._interrupt(job)
        record["FailureReason"] = (
            f"InternalServerError: {RESTARTED} while the job ran, and its training process "
            "ended with it. Only a managed spot job is started again by itself; a new job with "
            "the same CheckpointConfig resumes from its last checkpoint."
        )
        record.setdefault("TrainingEndTime", now())
        final = "Stopped" if status == "Stopping" else "Failed"
        training._transition(job, final, final, f"Training job {final.lower()}: {RESTARTED}")
        return False

    def _interrupt(self, job: Job) -> bool:
        """Interrupted, as a spot instance is; True unless MaxWaitTimeInSeconds ran out."""
        training = self.control.training
        training._transition(job, None, "Interrupted", f"Training job interrupted: {RESTARTED}")
        deadline = spot_deadline(job.record)
        if deadline is not None and time.time() >= deadline:
            job.record.setdefault("TrainingEndTime", now())
            message = "Training job stopped: MaxWaitTimeInSeconds exceeded"
            training._transition(job, "Stopped", "MaxWaitTimeExceeded", message)
            return False
        return True

    def _restore_endpoint(self, name: str, record: dict[str, Any], tags: list) -> None:
        endpoints = self.control.endpoints
        status = record["EndpointStatus"]
        if status == "Deleting":
            return
        endpoint = Endpoint(name, record, tags)
        endpoints.endpoints[name] = endpoint
        if status not in _SERVING + _MID_UPDATE:
            return  # Failed, OutOfService: nothing serves
        if status in _MID_UPDATE:
            record["FailureReason"] = (
                f"{RESTARTED} during the update, which was not applied: the endpoint serves "
                f"its previous configuration, {record['EndpointConfigName']}"
            )
        config = self.control.configs.get(record["EndpointConfigName"])
        if config is None:
            record["FailureReason"] = f"{RESTARTED} and the endpoint's config is gone"
            endpoints.set_status(endpoint, "Failed")
            return
        endpoints.set_status(endpoint, "SystemUpdating")
        threading.Thread(
            target=endpoints.bring_up_again, args=(endpoint, config), daemon=True
        ).start()
