"""LocalStack as a second backend: S3, SQS and EventBridge from LocalStack's community runtime.

LocalStack runs here without Docker only under Python 3.13, so it lives in its own venv
(`.venv-localstack`), made on first use. DynamoDB stays on moto's server and SageMaker on our
emulator: their `AWS_ENDPOINT_URL_<SERVICE>` variables point elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV = REPO_ROOT / ".venv-localstack"
# The pins that make the community runtime start without Docker or downloads.
REQUIREMENTS = [
    "localstack-core[runtime]==2026.3.0",
    "cbor2<6",
    "pyopenssl==25.3.0",
    "cryptography>=45.0.7,<47",
    "service-identity<26.1",
]
# Services this backend serves; the rest of the platform keeps its own endpoints.
SERVICES = ("s3", "sqs", "events")
# What `cdklocal bootstrap` and `deploy` need besides (ECR is mocked by CloudFormation).
CDK_SERVICES = ("cloudformation", "iam", "ssm", "sts", "kms")
STOP_GRACE_SECONDS = 10


class LocalStackError(RuntimeError):
    """LocalStack could not be installed or started: the tier fails, it is never skipped."""


def python313() -> str:
    """The Python 3.13 interpreter LocalStack needs, from MAAS_PYTHON313, pyenv or PATH."""
    candidates = [
        os.environ.get("MAAS_PYTHON313", ""),
        str(Path.home() / ".pyenv/versions/3.13.0/bin/python"),
        shutil.which("python3.13") or "",
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    raise LocalStackError("LocalStack needs Python 3.13: set MAAS_PYTHON313 to its interpreter")


def ensure_installed(venv: Path = VENV) -> Path:
    """Create the LocalStack venv once; a stamp records the pins it was built with."""
    stamp = venv / ".maas-installed"
    wanted = "\n".join(REQUIREMENTS)
    if stamp.is_file() and stamp.read_text() == wanted:
        return venv / "bin" / "python"
    print(f"localstack: installing into {venv} (first run only)", flush=True)
    if not (venv / "bin" / "python").is_file():
        subprocess.run([python313(), "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *REQUIREMENTS]
    result = subprocess.run(pip, capture_output=True, text=True)
    if result.returncode != 0:
        raise LocalStackError(f"installing LocalStack failed: {result.stderr.strip()[-2000:]}")
    stamp.write_text(wanted)
    return venv / "bin" / "python"


@dataclass
class LocalStack:
    """One running LocalStack process on 127.0.0.1."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def endpoint_env(self) -> dict[str, str]:
        """`AWS_ENDPOINT_URL_<SERVICE>` for the services LocalStack serves."""
        return {f"AWS_ENDPOINT_URL_{name.upper()}": self.url for name in SERVICES}

    def health(self) -> dict[str, object]:
        with urllib.request.urlopen(f"{self.url}/_localstack/health", timeout=2) as response:  # noqa: S310 - loopback URL
            return json.loads(response.read())

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL what is still alive after the grace period."""
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


def start(*, port: int, root: Path, timeout: float = 60.0) -> LocalStack:
    """Start LocalStack's runtime in host mode and wait until its services answer."""
    python = ensure_installed()
    root.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DISABLE_EVENTS": "1",
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "FILESYSTEM_ROOT": str(root),
        "DNS_ADDRESS": "0",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "SERVICES": ",".join(SERVICES + CDK_SERVICES),
    }
    log_path = root / "localstack.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [str(python), "-m", "localstack.runtime.main"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    stack = LocalStack(process=process, port=port, log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalStackError(f"LocalStack exited with {process.returncode}: see {log_path}")
        try:
            found = stack.health().get("services")
            services = found if isinstance(found, dict) else {}
            wanted = SERVICES + CDK_SERVICES
            if all(services.get(name) in ("available", "running") for name in wanted):
                return stack
        except OSError:
            pass
        time.sleep(0.5)
    stack.stop()
    raise LocalStackError(f"LocalStack did not become healthy in {timeout:.0f}s: see {log_path}")


if __name__ == "__main__":
    ensure_installed()
    print(f"localstack: ready to start with {sys.executable}", flush=True)
