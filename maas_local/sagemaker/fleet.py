"""The model servers behind one endpoint config: one worker process per production variant.

A `VariantServer` downloads its model's `model.tar.gz`, extracts it and starts
`maas_local.sagemaker.model_worker` on it, then forwards invocations over local HTTP. A worker
that dies is restarted by the request that finds it dead. A `Fleet` is the variants of one
endpoint config and picks one per request by weight, and captures its traffic when the config
has a `DataCaptureConfig` (see capture.py).
"""

from __future__ import annotations

import http.client
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from maas_contract.generation import is_generation_container
from maas_local.sagemaker import s3io
from maas_local.sagemaker.capture import DataCapture
from maas_local.sagemaker.model_worker import TOKEN_HEADER

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
MAX_IDLE_CONNECTIONS = 32
# The model server's header that SageMaker returns to the caller as CustomAttributes.
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"


class ModelReply(bytes):
    """The model server's body, with the parts of its answer SageMaker passes on.

    A bytes subclass so that it travels unchanged through runtime.invoke, which returns the
    body as it got it.
    """

    custom_attributes: str | None = None
    variant: VariantServer | None = None

    @classmethod
    def of(cls, body: bytes, custom_attributes: str | None, variant: VariantServer) -> ModelReply:
        reply = cls(body)
        reply.custom_attributes = custom_attributes
        reply.variant = variant
        return reply


class ModelStream:
    """A model server's streamed answer: status and headers now, the body as it comes."""

    def __init__(
        self, variant: VariantServer, conn: http.client.HTTPConnection, response: Any
    ) -> None:
        self.variant = variant
        self.status: int = response.status
        self.content_type: str = response.getheader("Content-Type", "application/json")
        self.custom_attributes: str | None = response.getheader(CUSTOM_ATTRIBUTES_HEADER)
        self._conn = conn
        self._response = response

    def chunks(self, size: int = 65536):
        """The body's bytes as the worker sends them; WorkerDied if it breaks off, TimeoutError
        if it stalls."""
        try:
            while chunk := self._response.read1(size):
                yield chunk
        except TimeoutError:
            raise
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            raise WorkerDied(f"model server for {self.variant.name} broke off: {exc}") from exc
        finally:
            self._conn.close()

    def read(self) -> bytes:
        return b"".join(self.chunks())


class LoadError(Exception):
    """The variant's model could not be loaded; the message is the endpoint's FailureReason."""


class WorkerDown(Exception):
    """The worker process did not answer: it crashed or was killed."""


class WorkerDied(WorkerDown):
    """The worker died with the request in flight."""


class VariantServer:
    def __init__(self, spec: dict[str, Any], model: dict[str, Any], work_dir: Path, log: Path):
        self.spec = spec
        self.name: str = spec["VariantName"]
        self.weight = float(spec.get("InitialVariantWeight", 1.0))
        self.instances = int(spec.get("InitialInstanceCount", 1))
        self.model = model
        self.work_dir = work_dir
        self.log_path = log
        self.state = "Creating"
        self.invocations = 0
        self.model_errors = 0
        self.restarts = 0
        self._proc: subprocess.Popen | None = None
        self._port = 0
        self._token = ""
        self._restart_lock = threading.Lock()
        self._count_lock = threading.Lock()
        # Connections to the worker are kept alive and reused: one TCP handshake per caller
        # thread instead of one per invocation.
        self._idle: list[http.client.HTTPConnection] = []
        # Set by the Fleet: where this variant's traffic is captured, if anywhere.
        self.capture: DataCapture | None = None

    @property
    def role(self) -> str:
        """The model's execution role: SageMaker fetches its artifact as this role."""
        return str(self.model.get("ExecutionRoleArn", ""))

    @property
    def container(self) -> dict[str, Any]:
        return self.model.get("PrimaryContainer") or (self.model.get("Containers") or [{}])[0]

    @property
    def generation(self) -> bool:
        """Served by the LMI (text generation) container rather than script mode."""
        container = self.container
        return is_generation_container(container.get("Image", ""), container.get("Environment"))

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout_s: float) -> None:
        """Downloads the model and starts the worker; raises LoadError with the reason."""
        model_dir = self.work_dir / "model"
        try:
            self._fetch_model(model_dir)
        except Exception as exc:
            self.state = "Failed"
            shutil.rmtree(model_dir, ignore_errors=True)  # no half-unpacked model stays behind
            raise LoadError(f"Failed to download model data for {self.name}: {exc}") from exc
        self._spawn(model_dir, timeout_s)
        self.state = "InService"

    def _fetch_model(self, model_dir: Path) -> None:
        if model_dir.exists():
            shutil.rmtree(model_dir)
        container = self.model.get("PrimaryContainer") or (self.model.get("Containers") or [{}])[0]
        source = (container.get("ModelDataSource") or {}).get("S3DataSource")
        if source and source.get("CompressionType") == "None":
            s3io.download_prefix(source["S3Uri"], model_dir, role=self.role)
            return
        url = container.get("ModelDataUrl") or (source or {}).get("S3Uri")
        if not url:
            raise LoadError(f"model {self.model['ModelName']} has no ModelDataUrl")
        archive = self.work_dir / "model.tar.gz"
        s3io.download_file(url, archive, role=self.role)
        s3io.extract_tar(archive, model_dir)
        archive.unlink()

    def _spawn(self, model_dir: Path, timeout_s: float) -> None:
        ready = self.work_dir / "ready"
        ready.unlink(missing_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._token = secrets.token_hex(16)
        container = self.model.get("PrimaryContainer") or (self.model.get("Containers") or [{}])[0]
        env = {**os.environ, **container.get("Environment", {})}
        env["MAAS_WORKER_TOKEN"] = self._token
        paths = [str(PACKAGE_ROOT), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        env["PYTHONUNBUFFERED"] = "1"
        code_dir = model_dir / "code"
        worker = "lmi_worker" if self.generation else "model_worker"
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", f"maas_local.sagemaker.{worker}",
                 "--model-dir", str(model_dir), "--ready-file", str(ready)],
                cwd=code_dir if code_dir.is_dir() else model_dir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while not ready.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                self.state = "Failed"
                raise LoadError(f"{self.name}: model server did not start: {self._tail(offset)}")
            time.sleep(0.05)
        self._port = int(ready.read_text())

    def _tail(self, offset: int) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(offset)
            lines = [ln.strip() for ln in log.read().decode(errors="replace").splitlines()]
        lines = [ln for ln in lines if ln]
        return (lines[-1] if lines else "the worker exited without output")[:900]

    def invoke(self, body: bytes, headers: dict[str, str]) -> tuple[int, ModelReply, str]:
        """Forwards one invocation; returns (status, body, content type) or raises WorkerDown."""
        if self._proc is None or self._proc.poll() is not None:
            raise WorkerDown(f"model server for {self.name} is not running")
        conn = self._connection()
        try:
            conn.request("POST", "/invocations", body, {**headers, TOKEN_HEADER: self._token})
            response = conn.getresponse()
            data = response.read()
        except TimeoutError:
            conn.close()
            timed_out = b"The invocation timed out waiting for the model server"
            return 408, ModelReply.of(timed_out, None, self), "text/plain"
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            conn.close()
            raise WorkerDied(f"model server for {self.name} failed: {exc}") from exc
        self._release(conn)
        with self._count_lock:
            self.invocations += 1
            # What the rollback alarm reads: Invocation5XXErrors, the requests the model
            # answered with a 5xx. A client's bad input (the model's 4xx) is not a model
            # error (https://docs.aws.amazon.com/sagemaker/latest/dg/monitoring-cloudwatch.html).
            self.model_errors += response.status >= 500
        reply = ModelReply.of(data, response.getheader(CUSTOM_ATTRIBUTES_HEADER), self)
        return response.status, reply, response.getheader("Content-Type", "application/json")

    def open_stream(self, body: bytes, headers: dict[str, str]) -> ModelStream:
        """Sends one invocation and returns once the worker answers its status line; the body
        is read from the returned stream, on a connection of its own."""
        if self._proc is None or self._proc.poll() is not None:
            raise WorkerDown(f"model server for {self.name} is not running")
        conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=60)
        try:
            conn.request("POST", "/invocations", body, {**headers, TOKEN_HEADER: self._token})
            response = conn.getresponse()
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            conn.close()
            raise WorkerDied(f"model server for {self.name} failed: {exc}") from exc
        with self._count_lock:
            self.invocations += 1
            self.model_errors += response.status >= 500
        return ModelStream(self, conn, response)

    def _connection(self) -> http.client.HTTPConnection:
        """A kept-alive connection to the current worker, or a new one."""
        with self._count_lock:
            while self._idle:
                conn = self._idle.pop()
                if conn.port == self._port:
                    return conn
                conn.close()  # from a worker that has since been replaced
        return http.client.HTTPConnection("127.0.0.1", self._port, timeout=60)

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._count_lock:
            if conn.port == self._port and len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append(conn)
                return
        conn.close()

    def restart(self, timeout_s: float) -> None:
        """Replaces a dead worker; concurrent callers see `Restarting` and do not pile up."""
        if not self._restart_lock.acquire(blocking=False):
            return
        try:
            self.state = "Restarting"
            self.stop()
            self.restarts += 1
            self._spawn(self.work_dir / "model", timeout_s)
            self.state = "InService"
        finally:
            self._restart_lock.release()

    def stop(self) -> None:
        with self._count_lock:
            idle, self._idle = self._idle, []
        for conn in idle:  # a replacement worker may get the same port: never reuse these
            conn.close()
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        if proc.stdin:
            proc.stdin.close()  # the worker exits on its own when its stdin closes
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=5)


class Fleet:
    """The variants of one endpoint config, started together and chosen between by weight."""

    def __init__(self, config: dict[str, Any], variants: list[VariantServer]) -> None:
        self.config = config
        self.config_name: str = config["EndpointConfigName"]
        self.variants = {v.name: v for v in variants}
        # SageMaker writes captured data as the endpoint's model role.
        role = variants[0].role if variants else ""
        self.capture = DataCapture.from_config(config.get("DataCaptureConfig"), role=role)
        for variant in variants:
            variant.capture = self.capture

    def start(self, timeout_s: float) -> None:
        errors: list[LoadError] = []

        def start_one(variant: VariantServer) -> None:
            try:
                variant.start(timeout_s)
            except LoadError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=start_one, args=(v,)) for v in self.variants.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            self.stop()
            raise LoadError("; ".join(str(e) for e in errors))

    def shares(self) -> dict[str, float]:
        total = sum(v.weight for v in self.variants.values())
        if total <= 0:
            return {name: 0.0 for name in self.variants}
        return {name: v.weight / total for name, v in self.variants.items()}

    def choose(self, rng: Any) -> VariantServer | None:
        live = [v for v in self.variants.values() if v.weight > 0]
        if not live:
            return None
        return rng.choices(live, weights=[v.weight for v in live])[0]

    def error_counts(self) -> tuple[int, int]:
        calls = sum(v.invocations for v in self.variants.values())
        return sum(v.model_errors for v in self.variants.values()), calls

    def stop(self) -> None:
        """Stops the model servers, then writes what capture still holds (on delete, on retire
        after a deployment, and at shutdown)."""
        for variant in self.variants.values():
            variant.stop()
        if self.capture is not None:
            self.capture.close()
