"""Runs one training job's script the way SageMaker's training toolkit does, on this machine.

The job gets an `/opt/ml`-style tree under `{root}/jobs/{job}`: `code/`, `input/data/<channel>`,
`input/config/*.json`, `model/`, `output/data/`, `checkpoints/`. The job runs what its container
would (see `script_mode.command`): its ContainerEntrypoint, or `sagemaker_program` from its
`sagemaker_submit_directory` with the `SM_*` environment and the hyperparameters as
`--key value` arguments, in its own process group; the output streams into
`{root}/logs/training-jobs/{job}.log`.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError

from maas_local.sagemaker import s3io, script_mode
from maas_local.sagemaker.protocol import now, validation

GUARD = Path(__file__).with_name("_guard.py")
STOP_GRACE_S = 10.0
CONTAINER_ROOT = script_mode.CONTAINER_ROOT


@dataclass
class Outcome:
    status: str  # Completed | Failed | Stopped
    secondary: str
    failure_reason: str | None = None


@dataclass
class TrainingRun:
    """One attempt at a job; `on_status(secondary, message)` reports progress."""

    name: str
    request: dict[str, Any]
    job_dir: Path
    log_path: Path
    source_dir: Path  # unused: a job runs only its own code (see script_mode.command)
    on_status: Any
    deadline: float | None = None  # epoch seconds: a spot job's MaxWaitTimeInSeconds
    metrics: dict[str, tuple[float, Any]] = field(default_factory=dict)
    _proc: subprocess.Popen | None = None
    _stop_reason: str | None = None
    _last_error: str = ""
    _ckpt_seen: dict[str, tuple[int, float]] = field(default_factory=dict)
    _log: IO[str] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def role(self) -> str:
        """The execution role SageMaker assumes for the job: its S3 access is that role's."""
        return str(self.request.get("RoleArn", ""))

    # -- what the job looks like from outside ------------------------------------------------
    def stop(self, reason: str = "Stopped") -> None:
        """Stops the script: SIGTERM to its process group, SIGKILL after a grace period."""
        self._stop_reason = self._stop_reason or reason
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        _signal_group(proc, signal.SIGTERM)
        threading.Timer(STOP_GRACE_S, _signal_group, (proc, signal.SIGKILL)).start()

    def kill_now(self) -> None:
        self._stop_reason = self._stop_reason or "Stopped"
        if self._proc is not None and self._proc.poll() is None:
            _signal_group(self._proc, signal.SIGKILL)

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> Outcome:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as self._log:
            try:
                return self._run()
            except Exception as exc:  # every failure becomes the job's FailureReason
                self.note(f"failed: {exc}")
                return Outcome("Failed", "Failed", f"ClientError: {exc}"[:1024])

    def _run(self) -> Outcome:
        paths = self._prepare_dirs()
        self.on_status("Downloading", "Downloading input data")
        self._fetch_channels(paths["data"])
        self._fetch_code(paths["code"])
        checkpoint_uri = (self.request.get("CheckpointConfig") or {}).get("S3Uri")
        if checkpoint_uri:
            files, _ = s3io.download_prefix(checkpoint_uri, paths["checkpoints"], role=self.role)
            self.note(f"restored {files} checkpoint file(s) from {checkpoint_uri}")
        if self._stop_reason:
            return Outcome("Stopped", self._stop_reason)
        self.on_status("Training", "Training image download completed. Training in progress.")
        try:
            code = self._execute(paths, checkpoint_uri)
        except script_mode.EntryPointError as exc:
            # The container starts and finds nothing to run: an algorithm error, not a
            # validation error, because CreateTrainingJob cannot see inside the image.
            self.note(f"failed: {exc}")
            return Outcome("Failed", "Failed", f"AlgorithmError: {exc}"[:1024])
        if checkpoint_uri:
            count = s3io.upload_dir(
                paths["checkpoints"], checkpoint_uri, self._ckpt_seen, role=self.role
            )
            self.note(f"synced {count} checkpoint file(s) to {checkpoint_uri}")
        if self._stop_reason:
            self._upload_artifacts(paths, partial=True)
            return Outcome("Stopped", self._stop_reason)
        if code != 0:
            return Outcome("Failed", "Failed", self._failure_reason(paths, code))
        self.on_status("Uploading", "Uploading generated training model")
        self._upload_artifacts(paths, partial=False)
        return Outcome("Completed", "Completed")

    def note(self, message: str) -> None:
        """A progress line of the emulator's own, in the job's log."""
        self._write(f"[sagemaker-local] {time.strftime('%H:%M:%S')} {message}\n")

    def _write(self, text: str) -> None:
        with self._lock:
            if self._log is not None and not self._log.closed:
                self._log.write(text)
                self._log.flush()

    # -- stages ----------------------------------------------------------------------------
    def _prepare_dirs(self) -> dict[str, Path]:
        if self.job_dir.exists():
            shutil.rmtree(self.job_dir)
        names = {
            "code": "code",
            "data": "input/data",
            "config": "input/config",
            "model": "model",
            "output": "output",
            "output_data": "output/data",
            "checkpoints": "checkpoints",
        }
        paths = {key: self.job_dir / rel for key, rel in names.items()}
        for path in paths.values():
            path.mkdir(parents=True, exist_ok=True)
        return paths

    def _fetch_code(self, code_dir: Path) -> None:
        """Unpacks `sagemaker_submit_directory` into code/, as the training toolkit does.

        Without one, code/ stays empty: the job runs its ContainerEntrypoint, or fails for want
        of an entry point. The emulator never substitutes code of its own.
        """
        submit = script_mode.decode_hyperparameters(self.request.get("HyperParameters", {})).get(
            "sagemaker_submit_directory"
        )
        if not submit:
            return
        if isinstance(submit, str) and submit.startswith("s3://"):
            archive = code_dir.parent / "sourcedir.tar.gz"
            s3io.download_file(submit, archive, role=self.role)
            s3io.extract_tar(archive, code_dir)
            archive.unlink()
            self.note(f"code from {submit}")
            return
        if isinstance(submit, str) and submit.startswith(CONTAINER_ROOT):
            # With network isolation the SDK ships the code as the `code` input channel and
            # points at it inside the container; our container root is the job's folder.
            archive = self.job_dir / submit.removeprefix(CONTAINER_ROOT)
            inside = archive.resolve().is_relative_to(self.job_dir.resolve())
            if not inside or not archive.is_file():
                raise validation(f"sagemaker_submit_directory {submit} is not in an input channel")
            s3io.extract_tar(archive, code_dir)
            self.note(f"code from {submit}")
            return
        raise validation(
            f"sagemaker_submit_directory {submit!r} is neither an s3:// URI nor a path under "
            f"{CONTAINER_ROOT}input/data"
        )

    def _fetch_channels(self, data_dir: Path) -> None:
        for channel in self.request.get("InputDataConfig", []):
            name = channel["ChannelName"]
            uri = channel["DataSource"].get("S3DataSource", {}).get("S3Uri")
            if not uri:
                raise validation(f"channel {name}: only S3DataSource is emulated")
            files, size = s3io.download_prefix(uri, data_dir / name, role=self.role)
            if files == 0:
                raise validation(f"Data download failed: no objects under {uri} (channel {name})")
            self.note(f"channel {name}: {files} file(s), {size / 1e6:.2f} MB from {uri}")

    def _execute(self, paths: dict[str, Path], checkpoint_uri: str | None) -> int:
        argv, env = script_mode.command(self.request, self.name, paths, checkpoint_uri)
        self.note(f"running {' '.join(argv)}")
        self._proc = subprocess.Popen(
            [sys.executable, str(GUARD), *argv],
            cwd=paths["code"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        if self._stop_reason:  # StopTrainingJob arrived while the script was starting
            self.stop()
        readers = [
            threading.Thread(target=self._pump, args=(self._proc.stdout, False), daemon=True),
            threading.Thread(target=self._pump, args=(self._proc.stderr, True), daemon=True),
        ]
        for reader in readers:
            reader.start()
        self._watch(checkpoint_uri, paths["checkpoints"])
        for reader in readers:
            reader.join(timeout=10)
        if self._proc.stdin:
            self._proc.stdin.close()
        code = self._proc.returncode
        self.note(f"script exited with code {code}")
        return code

    def _watch(self, checkpoint_uri: str | None, checkpoints: Path) -> None:
        """Waits for the script; syncs checkpoints as it goes and enforces MaxRuntimeInSeconds."""
        assert self._proc is not None
        limit = (self.request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        started = time.monotonic()
        last_sync = started
        while self._proc.poll() is None:
            try:
                self._proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
            if self._stop_reason is None and self.deadline and time.time() > self.deadline:
                self.note("MaxWaitTimeInSeconds exceeded")
                self.stop("MaxWaitTimeExceeded")
            if self._stop_reason is None and limit and time.monotonic() - started > limit:
                self.note(f"MaxRuntimeInSeconds ({limit}) exceeded")
                self.stop("MaxRuntimeExceeded")
            if checkpoint_uri and time.monotonic() - last_sync > 5:
                # A sync that fails while training goes on is retried at the next one; the
                # sync after the script exits is the one whose failure fails the job.
                try:
                    s3io.upload_dir(checkpoints, checkpoint_uri, self._ckpt_seen, role=self.role)
                except (OSError, BotoCoreError, ClientError) as exc:
                    self.note(f"checkpoint sync failed, retrying at the next one: {exc}")
                last_sync = time.monotonic()

    def _pump(self, stream: IO[bytes], is_stderr: bool) -> None:
        definitions = [
            (d["Name"], re.compile(d["Regex"]))
            for d in self.request["AlgorithmSpecification"].get("MetricDefinitions", [])
        ]
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            self._write(line if line.endswith("\n") else line + "\n")
            for metric, pattern in definitions:
                match = pattern.search(line)
                if match:
                    try:
                        self.metrics[metric] = (float(match.group(1)), now())
                    except (ValueError, IndexError):
                        pass
            if is_stderr and line.strip():
                self._last_error = line.strip()

    def _failure_reason(self, paths: dict[str, Path], code: int) -> str:
        failure_file = paths["output"] / "failure"
        if failure_file.is_file() and failure_file.read_text().strip():
            message = failure_file.read_text().strip()
        else:
            message = self._last_error or f"exit code {code}"
        reason = f'AlgorithmError: ExecuteUserScriptError: ExitCode {code} ErrorMessage "{message}"'
        return reason[:1024]

    def _upload_artifacts(self, paths: dict[str, Path], *, partial: bool) -> None:
        output_path = self.request["OutputDataConfig"]["S3OutputPath"]
        prefix = s3io.join(output_path, self.name, "output")
        if partial and not any(paths["model"].iterdir()):
            return
        archive = self.job_dir / "model.tar.gz"
        s3io.make_tar(paths["model"], archive)
        s3io.upload_file(archive, s3io.join(prefix, "model.tar.gz"), role=self.role)
        self.note(f"uploaded {archive.stat().st_size / 1e6:.2f} MB to {prefix}/model.tar.gz")
        if any(paths["output_data"].iterdir()):
            out = self.job_dir / "output.tar.gz"
            s3io.make_tar(paths["output_data"], out)
            s3io.upload_file(out, s3io.join(prefix, "output.tar.gz"), role=self.role)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
