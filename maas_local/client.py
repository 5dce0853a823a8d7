"""A small client of the maas HTTPS API: the same calls against the cloud and the local stack."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from maas_local.config import StackPaths, read_json
from maas_local.tokens import mint_token, scope_names

DEFAULT_TIMEOUT_S = 35.0  # a little over API Gateway's 29 s integration timeout
MAX_ATTEMPTS = 3
MAX_BACKOFF_S = 5.0
RETRYABLE_STATUS = {429, 502, 503, 504}
TERMINAL_JOB_STATES = {"Completed", "Failed", "Stopped"}
TERMINAL_DEPLOYMENT_STATES = {"Succeeded", "Failed", "RolledBack"}


class ApiError(RuntimeError):
    def __init__(self, status: int, body: Any, request_id: str | None) -> None:
        self.status, self.body, self.request_id = status, body, request_id
        error = body.get("error", body) if isinstance(body, dict) else {"message": body}
        message = error.get("message", body) if isinstance(error, dict) else error
        code = error.get("code", "") if isinstance(error, dict) else ""
        super().__init__(f"HTTP {status} {code}: {message} (request id {request_id})".strip())


@dataclass(frozen=True)
class Credentials:
    api_url: str
    api_key: str
    token: Callable[[], str]  # called per request, so a long wait never sends a stale token
    local: bool = False  # the running local stack, found through its state directory

    @classmethod
    def local_stack(cls, paths: StackPaths, scopes: str = "invoke,admin") -> Credentials:
        """The running local stack's URL and key, with tokens minted by its issuer."""
        state = read_json(paths.state_file) or {}
        if not state.get("api_url") or not state.get("api_key"):
            raise SystemExit(f"the local stack is not running in {paths.home}: `maas local up`")
        minter = _local_minter(paths, scope_names(scopes))
        return cls(state["api_url"], state["api_key"], minter, local=True)

    @classmethod
    def resolve(
        cls,
        paths: StackPaths,
        api_url: str | None = None,
        api_key: str | None = None,
        token: str | None = None,
        scopes: str = "invoke,admin",
    ) -> Credentials:
        """Flags, then MAAS_API_URL / MAAS_API_KEY / MAAS_TOKEN, then the running local stack.

        Without a URL the call goes to the local stack (a token given is still used);
        with one, the key and the token must be given too.
        """
        api_url = api_url or os.environ.get("MAAS_API_URL")
        api_key = api_key or os.environ.get("MAAS_API_KEY")
        token = token or os.environ.get("MAAS_TOKEN")
        if not api_url:
            local = cls.local_stack(paths, scopes)
            fixed_local = token
            if fixed_local:
                return cls(local.api_url, api_key or local.api_key, lambda: fixed_local, True)
            return cls(local.api_url, api_key or local.api_key, local.token, True)
        if not api_key or not token:
            raise SystemExit(
                "calling a remote API needs --api-url, --api-key and --token "
                "(or MAAS_API_URL, MAAS_API_KEY and MAAS_TOKEN)"
            )
        fixed = token
        return cls(api_url.rstrip("/"), api_key, lambda: fixed)


def _local_minter(paths: StackPaths, scopes: list[str]) -> Callable[[], str]:
    cached: dict[str, Any] = {}

    def token() -> str:
        if cached.get("expires", 0) < time.time() + 60:
            cached["token"] = mint_token(paths.keys, scopes, ttl_seconds=900)
            cached["expires"] = time.time() + 900
        return cached["token"]

    return token


class MaasClient:
    def __init__(self, credentials: Credentials, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.credentials = credentials
        self.timeout_s = timeout_s
        self.session = requests.Session()

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: dict | None = None,
    ) -> requests.Response:
        """One API call. Throttling, timeouts and lost connections are retried with backoff;
        a write keeps its Idempotency-Key across the retries, so it happens at most once."""
        fixed = {"x-api-key": self.credentials.api_key, "Accept": "application/json"}
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            fixed["Idempotency-Key"] = str(uuid.uuid4())
        fixed.update(headers or {})
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = self.session.request(
                    method,
                    self.credentials.api_url + path,
                    json=json,
                    data=data,
                    params=params,
                    headers={**fixed, "Authorization": f"Bearer {self.credentials.token()}"},
                    timeout=self.timeout_s,
                )
            except requests.ConnectionError:
                if attempt == MAX_ATTEMPTS:
                    raise
                time.sleep(_backoff(attempt, None))
                continue
            if response.status_code in RETRYABLE_STATUS and attempt < MAX_ATTEMPTS:
                time.sleep(_backoff(attempt, response.headers.get("Retry-After")))
                continue
            break
        if response.status_code >= 400:
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            raise ApiError(response.status_code, body, response.headers.get("x-amzn-RequestId"))
        return response

    # Training jobs
    def start_training(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", "/v1/training-jobs", json=spec).json()

    def training_job(self, job_id: str) -> dict[str, Any]:
        return self.call("GET", f"/v1/training-jobs/{_seg(job_id)}").json()

    def watch_training(
        self, job_id: str, timeout_s: float = 900.0, interval_s: float = 1.0
    ) -> Iterator[dict[str, Any]]:
        """Yields the job when its status changes or an epoch ends, until it stops."""
        yield from _watch(
            lambda: self.training_job(job_id),
            "status",
            TERMINAL_JOB_STATES,
            timeout_s,
            interval_s,
            _training_milestone,
        )

    # Registry
    def models(self) -> list[dict[str, Any]]:
        return self.call("GET", "/v1/models").json()["items"]

    def model(self, name: str) -> dict[str, Any]:
        return self.call("GET", f"/v1/models/{_seg(name)}").json()

    def versions(self, name: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/v1/models/{_seg(name)}/versions").json()["items"]

    def register_version(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", f"/v1/models/{_seg(name)}/versions", json=spec).json()

    # Deployments
    def deploy(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", f"/v1/models/{_seg(name)}/deployments", json=spec).json()

    def deployment(self, name: str, deployment_id: str) -> dict[str, Any]:
        path = f"/v1/models/{_seg(name)}/deployments/{_seg(deployment_id)}"
        return self.call("GET", path).json()

    def watch_deployment(
        self, name: str, deployment_id: str, timeout_s: float = 600.0, interval_s: float = 0.5
    ) -> Iterator[dict[str, Any]]:
        yield from _watch(
            lambda: self.deployment(name, deployment_id),
            "status",
            TERMINAL_DEPLOYMENT_STATES,
            timeout_s,
            interval_s,
        )

    # Inference
    def predict_json(self, name: str, instances: list[Any]) -> requests.Response:
        return self.call("POST", f"/v1/models/{_seg(name)}/predict", json={"instances": instances})

    def predict_bytes(self, name: str, body: bytes, content_type: str) -> requests.Response:
        return self.call(
            "POST",
            f"/v1/models/{_seg(name)}/predict",
            data=body,
            headers={"Content-Type": content_type},
        )


def _backoff(attempt: int, retry_after: str | None) -> float:
    if retry_after and retry_after.isdigit():
        return min(float(retry_after), MAX_BACKOFF_S)
    return min(0.5 * 2 ** (attempt - 1), MAX_BACKOFF_S)


def _seg(value: str) -> str:
    return quote(value, safe="")


def _training_milestone(job: dict[str, Any]) -> tuple:
    """What makes a job's progress worth a line: its states, and the per-epoch metrics."""
    metrics = job.get("metrics") or {}
    per_epoch = tuple(sorted((k, v) for k, v in metrics.items() if k.startswith("validation:")))
    return (
        job.get("status"),
        job.get("secondary_status"),
        job.get("registered_version"),
        per_epoch,
    )


def _watch(
    fetch: Callable[[], dict[str, Any]],
    field: str,
    terminal: set[str],
    timeout_s: float,
    interval_s: float,
    milestone: Callable[[dict[str, Any]], Any] = lambda item: item,
) -> Iterator[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        current = fetch()
        if milestone(current) != last:
            yield current
            last = milestone(current)
        if current.get(field) in terminal:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"still {current.get(field)} after {timeout_s:.0f}s")
        time.sleep(interval_s)
