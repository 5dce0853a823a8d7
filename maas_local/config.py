"""Where the local stack keeps its state, where it reads its source files, and the fixed names
of what it creates."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent
# In a checkout, maas_local/ sits beside pyproject.toml; installed from a wheel, it does not.
IN_CHECKOUT = (_PACKAGE.parent / "pyproject.toml").is_file()
# A wheel carries the checkout's files that the local stack reads (openapi.json, training/, the
# synthesised IAM policies), laid out as in the checkout: maas_local.bundle writes it at build time.
BUNDLE = _PACKAGE / "_bundle"
# The tree the local stack reads those files from: the checkout, else the wheel's bundle.
REPO_ROOT = _PACKAGE.parent if IN_CHECKOUT else BUNDLE
# Derived files kept between runs (the synthesised cloud assembly).
CACHE_DIR = (
    REPO_ROOT / ".cache"
    if IN_CHECKOUT
    else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "maas"
)
RESOURCE_PREFIX = "maas-local"
REGION = "us-east-1"
STAGE = "local"
AUDIENCE = "maas-local"
CLIENT_ID = "maas-local-cli"
SCOPE_PREFIX = "maas/"

# Values that stand in for the cloud's: every AWS call goes to 127.0.0.1, never to AWS.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # noqa: S105 - moto accepts any credentials
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def default_home() -> Path:
    """MAAS_HOME, else `.maas/` in the checkout this package lives in, else in the cwd."""
    if os.environ.get("MAAS_HOME"):
        return Path(os.environ["MAAS_HOME"]).resolve()
    if IN_CHECKOUT:
        return REPO_ROOT / ".maas"
    return Path.cwd() / ".maas"


@dataclass(frozen=True)
class StackPaths:
    """The state directory's layout; every part of the stack reads it from here."""

    home: Path

    @property
    def state_file(self) -> Path:
        return self.home / "state.json"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def keys(self) -> Path:
        return self.home / "keys"

    @property
    def sagemaker_root(self) -> Path:
        return self.home / "sagemaker"

    @property
    def moto_state(self) -> Path:
        """moto's backends and object bodies, written through (maas_local.moto_state)."""
        return self.home / "aws"

    @property
    def iam(self) -> Path:
        """Each function's and role's policy, rewritten at each `up` (stack.Supervisor)."""
        return self.home / "iam"

    @property
    def event_spool(self) -> Path:
        """SageMaker events the gateway acknowledged and has not yet handled (event_queue)."""
        return self.home / "events"

    @property
    def progress_log(self) -> Path:
        return self.logs / "supervisor.log"

    @property
    def saved_state(self) -> tuple[Path, ...]:
        """Everything the stack keeps in its home: what `maas local reset` erases."""
        return (
            self.state_file,
            self.moto_state,
            self.sagemaker_root,
            self.keys,
            self.iam,
            self.event_spool,
            self.logs,
        )

    def log_for(self, part: str) -> Path:
        return self.logs / f"{part}.log"

    def training_job_log(self, job_name: str) -> Path:
        """What a training job printed, and the emulator's notes on it."""
        return self.sagemaker_root / "logs" / "training-jobs" / f"{job_name}.log"

    def endpoint_logs(self, endpoint_name: str) -> Path:
        """The folder of an endpoint's `<variant name>.log` files: what its model servers
        printed."""
        return self.sagemaker_root / "logs" / "endpoints" / endpoint_name

    def ensure(self) -> StackPaths:
        for folder in (self.home, self.logs, self.keys, self.sagemaker_root, self.moto_state):
            folder.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)  # state, logs and keys are the user's alone
        self.keys.chmod(0o700)
        self.moto_state.chmod(0o700)
        return self


def write_private_json(path: Path, payload: Any) -> None:
    """Write JSON readable by the owner only (it may hold keys), as `write_durably` does."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_durably(path, json.dumps(payload, indent=2, sort_keys=True).encode())


def write_durably(path: Path, data: bytes) -> None:
    """`data` at `path`, whole or not at all, readable by the owner only, and on disk before
    this returns: the file is fsync'd before the rename and its folder after, so neither a
    `kill -9` nor a power cut leaves a half-written file or loses an acknowledged one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def fsync_folder(folder: Path) -> None:
    """Makes a rename or a new file in `folder` survive a crash."""
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def read_json(path: Path) -> Any | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
