"""The client of the maas HTTPS API: the same calls against a deployed stage and the local stack.

Each method is one route of `openapi.json` (the API's description, also served at
``GET /v1/openapi.json``); the dictionaries going in and coming out are that document's
schemas, named in each docstring.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from maas.credentials import Credentials
from maas.errors import ApiError
from maas.watch import training_milestone, watch
from maas_contract.events import DEPLOYMENT_TERMINAL, TRAINING_JOB_TERMINAL

DEFAULT_TIMEOUT_S = 35.0  # a little over API Gateway's 29 s integration timeout
MAX_ATTEMPTS = 3
MAX_BACKOFF_S = 5.0
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
Json = dict[str, Any]


class Client:
    """A client of the maas API.

    Build one for a deployed stage with :meth:`connect`, for the running local stack with
    :meth:`local`, or from :class:`Credentials`::

        import maas

        client = maas.Client.connect(api_url, api_key=key, token=access_token)
        job = client.start_training({"model": "digits", "recipe": "image-cnn",
                                     "datasets": {"train": "s3://bucket/digits/train/"}})
        for update in client.watch_training(job["id"]):
            print(update["status"], update.get("metrics"))
        print(client.predict("digits", [[0.0] * 64]))

    Every call sends the API key and a bearer token, and retries throttling (429), gateway
    errors (502, 503, 504) and lost connections with backoff. A write carries one
    Idempotency-Key across its retries, so it takes effect at most once. An error answer
    raises :class:`maas.ApiError`.
    """

    def __init__(self, credentials: Credentials, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """A client that calls the API `credentials` name, waiting up to `timeout_s` seconds
        for each answer."""
        self.credentials = credentials
        self.timeout_s = timeout_s
        self.session = requests.Session()

    @classmethod
    def connect(
        cls, api_url: str, api_key: str, token: str, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> Client:
        """A client of a deployed stage: its ApiUrl output, an API key, an access token."""
        return cls(Credentials.fixed(api_url, api_key, token), timeout_s)

    @classmethod
    def local(cls, home: Path | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> Client:
        """A client of the local stack running in ``home`` (default: ``MAAS_HOME`` or
        ``.maas/``), with tokens minted by its issuer for both scopes."""
        return cls(Credentials.local_stack(home), timeout_s)

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        attempts: int = MAX_ATTEMPTS,
    ) -> requests.Response:
        """One call to any route, e.g. ``call("GET", "/v1/models")``; returns the response.
        ``attempts=1`` asks once: a readiness check must not wait out a 503's Retry-After.

        Raises:
            ApiError: the answer's status is 400 or more (after the retries).
            requests.ConnectionError: the API could not be reached, even after retries.
        """
        fixed = {"x-api-key": self.credentials.api_key, "Accept": "application/json"}
        if method in WRITE_METHODS:
            fixed["Idempotency-Key"] = str(uuid.uuid4())
        fixed.update(headers or {})
        for attempt in range(1, attempts + 1):
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
                if attempt == attempts:
                    raise
                time.sleep(_backoff(attempt, None))
                continue
            if response.status_code in RETRYABLE_STATUS and attempt < attempts:
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

    # Health and metadata (the Open Inference Protocol's routes)
    def live(self) -> bool:
        """Whether the API server is live (``GET /v2/health/live``)."""
        return self.call("GET", "/v2/health/live").json().get("live") is True

    def ready(self) -> bool:
        """Whether the API server is ready (``GET /v2/health/ready``)."""
        return self.call("GET", "/v2/health/ready").json().get("ready") is True

    def server_metadata(self) -> Json:
        """The server's name, version and protocol extensions (``GET /v2``)."""
        return self.call("GET", "/v2").json()

    def model_ready(self, model: str, version: int | None = None) -> bool:
        """Whether ``model`` has a live version that answers, or whether ``version`` is that
        version (``GET /v2/models/{model}[/versions/{version}]/ready``). Asks once: not ready
        is an answer (503 ModelNotReady), not a reason to wait."""
        path = f"/v2/models/{_seg(model)}{_version_scope(version)}/ready"
        try:
            return self.call("GET", path, attempts=1).json().get("ready") is True
        except ApiError as error:
            if error.status == 503:
                return False
            raise

    def model_metadata(self, model: str, version: int | None = None) -> Json:
        """The model's (or one version's) inputs, outputs and versions (``ModelMetadata``)."""
        return self.call("GET", f"/v2/models/{_seg(model)}{_version_scope(version)}").json()

    def openapi(self) -> Json:
        """The API's own OpenAPI document (``GET /v1/openapi.json``)."""
        return self.call("GET", "/v1/openapi.json").json()

    # Inference
    def predict(
        self,
        model: str,
        instances: Sequence[Any] | None = None,
        *,
        data: bytes | None = None,
        content_type: str = "application/json",
        version: int | None = None,
    ) -> Json:
        """Predicts with the model's live version, or with ``version``.

        Give ``instances`` (sent as ``{"instances": [...]}``), or the raw body as ``data``
        with its ``content_type`` (``application/x-npy``, ``text/plain``, or JSON).
        Returns schema ``PredictResponse``: ``outputs`` and the ``version`` that answered.
        """
        if (instances is None) == (data is None):
            raise ValueError("give either instances or data")
        params = {"version": version} if version is not None else None
        path = f"/v1/models/{_seg(model)}/predict"
        if instances is not None:
            return self.call(
                "POST", path, json={"instances": list(instances)}, params=params
            ).json()
        headers = {"Content-Type": content_type}
        return self.call("POST", path, data=data, headers=headers, params=params).json()

    def infer(self, model: str, request: Mapping[str, Any], version: int | None = None) -> Json:
        """Open Inference Protocol inference: schema ``InferenceRequest`` in,
        ``InferenceResponse`` out (``POST /v2/models/{model}[/versions/{version}]/infer``)."""
        scope = f"/versions/{version}" if version is not None else ""
        return self.call("POST", f"/v2/models/{_seg(model)}{scope}/infer", json=request).json()

    def usage(self) -> Json:
        """Each client's tokens of the OpenAI-compatible API this minute and today, against its
        limits (``GET /v1/usage``; the admin scope)."""
        return self.call("GET", "/v1/usage").json()

    def stream_completion(self, model: str, prompt: str, **parameters: Any) -> Iterator[Json]:
        """A completion streamed as it is generated (``POST /openai/v1/completions`` with
        ``stream: true``): each server-sent event's ``text_completion`` chunk, until
        ``data: [DONE]``. ``parameters`` are OpenAI's (max_tokens, temperature, seed, ...); any
        OpenAI client works against ``/openai/v1`` too.

        Raises:
            ApiError: the request was refused, or the stream carried an error event.
        """
        body = {**parameters, "model": model, "prompt": prompt, "stream": True}
        headers = {
            "x-api-key": self.credentials.api_key,
            "Accept": "text/event-stream",
            "Authorization": f"Bearer {self.credentials.token()}",
        }
        url = self.credentials.api_url + "/openai/v1/completions"
        with self.session.post(
            url, json=body, headers=headers, stream=True, timeout=self.timeout_s
        ) as response:
            request_id = response.headers.get("x-amzn-RequestId")
            if response.status_code >= 400:
                try:
                    error: Any = response.json()
                except ValueError:
                    error = response.text
                raise ApiError(response.status_code, error, request_id)
            for line in response.iter_lines():
                if not line.startswith(b"data: "):
                    continue  # blank separators and ": keep-alive" comments
                data = line[len(b"data: ") :]
                if data == b"[DONE]":
                    return
                chunk = json.loads(data)
                if "error" in chunk:
                    raise ApiError(502, chunk, request_id)
                yield chunk

    # Registry
    def models(self) -> list[Json]:
        """Every model (schema ``ModelOut``), every page of ``GET /v1/models``."""
        return list(self._pages("/v1/models"))

    def model(self, name: str) -> Json:
        """One model: its latest, live and previous versions (schema ``ModelOut``)."""
        return self.call("GET", f"/v1/models/{_seg(name)}").json()

    def versions(self, name: str) -> list[Json]:
        """Every version of a model, newest first (schema ``VersionOut``)."""
        return list(self._pages(f"/v1/models/{_seg(name)}/versions"))

    def register_version(self, name: str, spec: Mapping[str, Any]) -> Json:
        """Registers a version from an artifact (schema ``VersionCreate`` in, ``VersionOut``
        out)."""
        return self.call("POST", f"/v1/models/{_seg(name)}/versions", json=spec).json()

    def create_upload(self, name: str) -> Json:
        """Presigned URLs to PUT a model.tar.gz and its signature.json into the stage's artifact
        bucket, with no AWS credentials (schema ``ArtifactUpload``); register ``artifact_uri``
        after."""
        return self.call("POST", f"/v1/models/{_seg(name)}/uploads").json()

    def delete_version(self, name: str, version: int) -> None:
        """Deletes a version that is not live, not kept for a rollback and not being deployed
        (HTTP 409 otherwise); deleting one already gone succeeds. Its number is not reused."""
        self.call("DELETE", f"/v1/models/{_seg(name)}/versions/{int(version)}")

    def delete_model(self, name: str) -> None:
        """Deletes a model and its versions once nothing of it is on SageMaker (HTTP 409
        otherwise: :meth:`delete_endpoint` first); deleting one already gone succeeds."""
        self.call("DELETE", f"/v1/models/{_seg(name)}")

    # Deployments
    def delete_endpoint(self, name: str) -> Json:
        """Deletes the model's endpoint and the SageMaker models and configs its deployments
        made (``EndpointRemovalOut``). SageMaker deletes asynchronously: call again until
        ``status`` is ``Deleted``; every call answers alike."""
        return self.call("DELETE", f"/v1/models/{_seg(name)}/endpoint").json()

    def deploy(self, name: str, spec: Mapping[str, Any]) -> Json:
        """Rolls a version onto the model's endpoint as a canary with alarm rollback (schema
        ``DeploymentCreate`` in, ``DeploymentOut`` out); returns while it is InProgress."""
        return self.call("POST", f"/v1/models/{_seg(name)}/deployments", json=spec).json()

    def deployment(self, name: str, deployment_id: str) -> Json:
        """One deployment (schema ``DeploymentOut``)."""
        path = f"/v1/models/{_seg(name)}/deployments/{_seg(deployment_id)}"
        return self.call("GET", path).json()

    def rollback(self, name: str) -> Json:
        """Redeploys the version that was live before the current one (``DeploymentOut``)."""
        return self.call("POST", f"/v1/models/{_seg(name)}/rollback").json()

    def watch_deployment(
        self, name: str, deployment_id: str, timeout_s: float = 600.0, interval_s: float = 0.5
    ) -> Iterator[Json]:
        """Yields the deployment each time it changes, until it settles.

        Raises:
            TimeoutError: it has not settled after ``timeout_s`` seconds.
        """
        yield from watch(
            lambda: self.deployment(name, deployment_id),
            DEPLOYMENT_TERMINAL,
            timeout_s,
            interval_s,
            lambda deployment: deployment,
        )

    # Training jobs
    def start_training(self, spec: Mapping[str, Any]) -> Json:
        """Starts a training job (schema ``TrainingJobCreate`` in, ``TrainingJobOut`` out)."""
        return self.call("POST", "/v1/training-jobs", json=spec).json()

    def training_jobs(self) -> list[Json]:
        """Every training job, newest first (schema ``TrainingJobOut``)."""
        return list(self._pages("/v1/training-jobs"))

    def training_job(self, job_id: str) -> Json:
        """One job: status, metrics, SageMaker's failure reason (``TrainingJobOut``)."""
        return self.call("GET", f"/v1/training-jobs/{_seg(job_id)}").json()

    def stop_training(self, job_id: str) -> Json:
        """Asks SageMaker to stop a running job (``TrainingJobOut``, secondary status
        Stopping); HTTP 409 (an :class:`ApiError`) when it has already ended."""
        return self.call("DELETE", f"/v1/training-jobs/{_seg(job_id)}").json()

    def watch_training(
        self, job_id: str, timeout_s: float = 900.0, interval_s: float = 1.0
    ) -> Iterator[Json]:
        """Yields the job when its status changes or an epoch ends, until it stops.

        Raises:
            TimeoutError: it has not ended after ``timeout_s`` seconds.
        """
        yield from watch(
            lambda: self.training_job(job_id),
            TRAINING_JOB_TERMINAL,
            timeout_s,
            interval_s,
            training_milestone,
        )

    def _pages(self, path: str) -> Iterator[Json]:
        params: dict[str, str] = {}
        while True:
            page = self.call("GET", path, params=params or None).json()
            yield from page["items"]
            if not page.get("next_token"):
                return
            params = {"next_token": page["next_token"]}


def _backoff(attempt: int, retry_after: str | None) -> float:
    if retry_after and retry_after.isdigit():
        return min(float(retry_after), MAX_BACKOFF_S)
    return min(0.5 * 2 ** (attempt - 1), MAX_BACKOFF_S)


def _version_scope(version: int | None) -> str:
    return "" if version is None else f"/versions/{int(version)}"


def _seg(value: str) -> str:
    return quote(value, safe="")
