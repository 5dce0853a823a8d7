"""The LocalStack tier: one LocalStack process for the whole folder, started and stopped here.

If LocalStack fails to install or start, every test here fails: the tier is never skipped.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from maas_local import localstack_backend

REPO = Path(__file__).resolve().parents[2]
CDKLOCAL = REPO / "node_modules" / ".bin" / "cdklocal"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def localstack(tmp_path_factory):
    stack = localstack_backend.start(port=free_port(), root=tmp_path_factory.mktemp("localstack"))
    try:
        yield stack
    finally:
        stack.stop()
    assert stack.process.poll() is not None, "LocalStack outlived its fixture"


@pytest.fixture
def localstack_env(localstack, monkeypatch):
    """Fake credentials and every AWS endpoint pointed at LocalStack."""
    values = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": localstack.url,
        # cdklocal's asset upload reads the S3 variable, not only the generic one.
        "AWS_ENDPOINT_URL_S3": localstack.url,
    }
    for key in [k for k in os.environ if k.startswith("AWS_ENDPOINT_URL_")]:
        monkeypatch.delenv(key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values
