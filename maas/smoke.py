"""`maas smoke`: the check a platform engineer runs right after `cdk deploy`.

It takes the stage's outputs (ApiUrl, TokenUrl, an app client id; the client secret and the API
key from the environment or a file, never from a flag) and, one line per step with PASS/FAIL and
seconds: gets a token by the client-credentials grant, asks the server and a deployed model
whether they are ready, predicts, then starts a tiny training job, stops it, and cleans up.
Without --api-url it uses the running local stack's outputs.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from maas.client import Client
from maas.credentials import Credentials
from maas.errors import ApiError
from maas_contract.events import TRAINING_JOB_TERMINAL
from maas_contract.routes import KNOWN_SCOPES

SCOPES = " ".join(KNOWN_SCOPES)  # admin: the training-job routes
# The least max_runtime_seconds the API accepts (handlers/training_jobs/schemas.py).
MIN_RUNTIME_S = 60
RUNNING_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 300.0
POLL_S = 1.0
HTTP_TIMEOUT_S = 35.0
STOPPED = {"Stopping", "Stopped"}
ENDED = TRAINING_JOB_TERMINAL
Say = Callable[[str], None]


class StepFailed(Exception):
    pass


@dataclass(frozen=True)
class Target:
    """A stage's outputs, as the smoke check uses them."""

    api_url: str
    token_url: str
    client_id: str
    client_secret: str
    api_key: str


@dataclass(frozen=True)
class Plan:
    model: str
    payload: bytes
    content_type: str
    dataset: str
    recipe: str = "image-cnn"
    training_instance_type: str | None = None
    stop_timeout_s: float = STOP_TIMEOUT_S


def digits_payload() -> bytes:
    """One 8x8 digit (a zero drawn as a ring, values in [0, 1] as maas_training/prepare_digits.py
    scales them), sent as one flat row of 64 values, which the model's input_fn accepts."""
    ring = [
        [0, 0, 1, 1, 1, 1, 0, 0],
        [0, 1, 1, 0, 0, 1, 1, 0],
        [0, 1, 0, 0, 0, 0, 1, 0],
        [0, 1, 0, 0, 0, 0, 1, 0],
        [0, 1, 0, 0, 0, 0, 1, 0],
        [0, 1, 0, 0, 0, 0, 1, 0],
        [0, 1, 1, 0, 0, 1, 1, 0],
        [0, 0, 1, 1, 1, 1, 0, 0],
    ]
    return json.dumps({"instances": [[float(v) for row in ring for v in row]]}).encode()


@dataclass
class Smoke:
    target: Target
    plan: Plan
    say: Say = print
    api: Client | None = None
    job_id: str | None = None
    job_state: str = ""  # the last status/secondary status seen for the job
    smoke_model: str = field(default_factory=lambda: f"smoke-{secrets.token_hex(3)}")
    passed: set[str] = field(default_factory=set)

    def run(self) -> int:
        steps: list[tuple[str, str | None, Callable[[], str]]] = [
            ("token", None, self._token),
            ("server-ready", "token", self._server_ready),
            ("model-ready", "token", self._model_ready),
            ("predict", "token", self._predict),
            ("training-start", "token", self._start_training),
            ("training-running", "training-start", self._wait_running),
            ("training-stop", "training-running", self._stop_training),
            ("training-stopped", "training-stop", self._wait_stopped),
        ]
        all_passed = True
        try:
            for name, needs, action in steps:
                if needs is not None and needs not in self.passed:
                    self._line("SKIP", name, 0.0, f"needs {needs}")
                    all_passed = False
                    continue
                all_passed &= self._step(name, action)
        finally:
            all_passed &= self._step("cleanup", self._cleanup)
            for note in self._left_behind():
                self.say(f"NOTE left behind: {note}")
        self.say(f"smoke {'PASSED' if all_passed else 'FAILED'} against {self.target.api_url}")
        return 0 if all_passed else 1

    def _step(self, name: str, action: Callable[[], str]) -> bool:
        started = time.monotonic()
        try:
            detail = action()
        except (StepFailed, ApiError, requests.RequestException, ValueError, KeyError) as err:
            self._line("FAIL", name, time.monotonic() - started, str(err))
            return False
        self._line("PASS", name, time.monotonic() - started, detail)
        self.passed.add(name)
        return True

    def _line(self, verdict: str, name: str, seconds: float, detail: str) -> None:
        self.say(f"{verdict} {name:<17} {seconds:6.2f}s  {detail}".rstrip())

    def _client(self) -> Client:
        if self.api is None:
            raise StepFailed("no token")
        return self.api

    # Steps: each returns what it saw, or raises.
    def _token(self) -> str:
        response = requests.post(
            self.target.token_url,
            data={"grant_type": "client_credentials", "scope": SCOPES},
            auth=(self.target.client_id, self.target.client_secret),  # HTTP Basic
            timeout=HTTP_TIMEOUT_S,
        )
        if response.status_code != 200:
            raise StepFailed(f"HTTP {response.status_code} from the token URL: {response.text}")
        body = response.json()
        if body.get("token_type") != "Bearer" or not body.get("access_token"):
            raise StepFailed(f"not a bearer token: {sorted(body)}")
        token = body["access_token"]
        credentials = Credentials.fixed(self.target.api_url, self.target.api_key, token)
        self.api = Client(credentials, HTTP_TIMEOUT_S)
        return f"Bearer token for {SCOPES}, expires in {body.get('expires_in')}s"

    def _server_ready(self) -> str:
        answer = self._client().call("GET", "/v2/health/ready").json()
        if answer.get("ready") is not True:
            raise StepFailed(f"server not ready: {answer}")
        return "ready"

    def _model_ready(self) -> str:
        answer = self._client().call("GET", f"/v2/models/{_seg(self.plan.model)}/ready").json()
        if answer.get("ready") is not True:
            raise StepFailed(f"model {self.plan.model} not ready: {answer}")
        return f"{self.plan.model} ready"

    def _predict(self) -> str:
        response = self._client().call(
            "POST",
            f"/v1/models/{_seg(self.plan.model)}/predict",
            data=self.plan.payload,
            headers={"Content-Type": self.plan.content_type},
        )
        version = response.json().get("version")
        if not isinstance(version, int):
            raise StepFailed(f"HTTP {response.status_code} but no version in the answer")
        return f"{self.plan.model} version {version} answered"

    def _start_training(self) -> str:
        key = str(uuid.uuid4())
        spec: dict[str, Any] = {
            "model": self.smoke_model,
            "recipe": self.plan.recipe,
            "datasets": {"train": self.plan.dataset},
            "hyperparameters": {"epochs": 1},
            "max_runtime_seconds": MIN_RUNTIME_S,
            "auto_deploy": False,
        }
        if self.plan.training_instance_type:
            spec["instance_type"] = self.plan.training_instance_type
        response = self._client().call(
            "POST", "/v1/training-jobs", json=spec, headers={"Idempotency-Key": key}
        )
        job = response.json()
        self.job_id, self.job_state = job["id"], job.get("status", "")
        return f"job {self.job_id} for model {self.smoke_model} (Idempotency-Key {key})"

    def _wait_running(self) -> str:
        job = self._wait_for_job(
            lambda j: j.get("status") == "InProgress", RUNNING_TIMEOUT_S, "InProgress"
        )
        return f"{job['status']}/{job.get('secondary_status') or '-'}"

    def _stop_training(self) -> str:
        job = self._client().call("DELETE", f"/v1/training-jobs/{self.job_id}").json()
        self.job_state = job.get("secondary_status") or job.get("status", "")
        return f"stop accepted ({self.job_state})"

    def _wait_for_job(
        self, done: Callable[[dict[str, Any]], bool], timeout_s: float, wanted: str
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            job = self._client().training_job(str(self.job_id))
            self.job_state = _job_state(job)
            if done(job):
                return job
            if job.get("status") in ENDED:
                reason = job.get("failure_reason") or ""
                raise StepFailed(f"job ended {job['status']} before it was {wanted} {reason}")
            if time.monotonic() > deadline:
                raise StepFailed(f"job still {self.job_state} after {timeout_s:.0f}s")
            time.sleep(POLL_S)

    def _wait_stopped(self) -> str:
        job = self._wait_for_job(_is_stopping, self.plan.stop_timeout_s, "stopped")
        return _job_state(job)

    # Clean-up: whatever this run made, whatever failed.
    def _cleanup(self) -> str:
        if self.job_id is None:
            return "no training job was started"
        if "training-stopped" in self.passed:
            return f"job {self.job_id} is {self.job_state}"
        if "training-stop" not in self.passed:  # a step after its start failed: stop it now
            try:
                self._client().call("DELETE", f"/v1/training-jobs/{self.job_id}")
            except ApiError as error:
                if error.status != 409:  # 409: it has already ended, nothing runs
                    raise StepFailed(f"could not stop job {self.job_id}: {error}") from error
        job = self._client().training_job(self.job_id)
        if not (_is_stopping(job) or job.get("status") in ENDED):
            raise StepFailed(f"job {self.job_id} is still {_job_state(job)}; stop it by hand")
        return f"job {self.job_id} is {_job_state(job)}"

    def _left_behind(self) -> list[str]:
        """What this run wrote and the API cannot remove: say so rather than pretend."""
        if self.job_id is None or self.api is None:
            return []
        notes = [
            f"training job record {self.job_id} in the registry "
            "(the API has no route that deletes registry entries)"
        ]
        try:
            self.api.call("GET", f"/v1/models/{self.smoke_model}")
        except ApiError as error:
            if error.status != 404:
                notes.append(f"could not tell whether model {self.smoke_model} exists: {error}")
        except requests.RequestException as error:
            notes.append(f"could not tell whether model {self.smoke_model} exists: {error}")
        else:
            notes.append(f"model {self.smoke_model} in the registry (no delete route either)")
        return notes


def _seg(value: str) -> str:
    return quote(value, safe="")


def _job_state(job: dict[str, Any]) -> str:
    return f"{job.get('status')}/{job.get('secondary_status') or '-'}"


def _is_stopping(job: dict[str, Any]) -> bool:
    """The registry keeps InProgress until SageMaker's Stopped event arrives; the live
    secondary status says Stopping as soon as SageMaker has the request."""
    return job.get("status") == "Stopped" or job.get("secondary_status") in STOPPED
