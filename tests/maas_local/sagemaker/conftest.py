"""Fixtures for the SageMaker emulator: moto's S3 server, the emulator, boto3 clients and the
gateway's event receiver, served alone, as the emulator's event sink. Helpers the tests import
live in emulator_helpers.py, beside this file."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from maas_local.event_queue import TOKEN_HEADER, EventReceiver
from maas_local.http_server import LocalHTTPServer, LocalRequestHandler
from maas_local.sagemaker import serve
from tests.maas_local.sagemaker.emulator_helpers import (
    BUCKET,
    CREDENTIALS,
    ROLE,
    ROLE_STATEMENTS,
    STUB_CODE,
    VERIFIER,
    emulator_client,
    free_port,
    role_policies,
)


@pytest.fixture(scope="module")
def aws_env() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in [*CREDENTIALS, "AWS_ENDPOINT_URL"]}
    os.environ.update(CREDENTIALS)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def moto_url(aws_env: None) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    os.environ["AWS_ENDPOINT_URL"] = url
    try:
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3(moto_url: str):
    return boto3.client("s3", endpoint_url=moto_url)


class RecordedEvents:
    """The gateway's own event receiver (token, loopback and JSON checks, delivery in order),
    served alone on a free port, recording each event document the emulator sends."""

    TOKEN = "emulator-test-token"  # noqa: S105

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.receiver = EventReceiver(self.events.append, self.TOKEN)
        receiver = self.receiver

        class Handler(LocalRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's naming
                body = self.read_body()
                answer = receiver.accept(
                    self.path,
                    self.headers.get(TOKEN_HEADER, ""),
                    self.headers.get("Content-Type", ""),
                    self.client_address[0],
                    body,
                )
                self.send_bytes(answer.status, answer.body, answer.headers)

        self.httpd = LocalHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{receiver.path}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def of(self, resource_name: str) -> list[dict]:
        return [e for e in self.events if e["resources"][0].endswith("/" + resource_name.lower())]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.receiver.stop()


@pytest.fixture(scope="module")
def sink() -> Iterator[RecordedEvents]:
    events = RecordedEvents()
    yield events
    events.close()


@pytest.fixture(scope="module")
def emulator(moto_url: str, sink: RecordedEvents, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("sagemaker-root")
    policies = role_policies(root / "policies.json", {ROLE: ROLE_STATEMENTS})
    server = serve(
        "127.0.0.1",
        0,
        root,
        sink.url,
        source_dir=STUB_CODE,
        seed=1234,
        time_scale=1.0,
        verifier=VERIFIER,
        iam_policies=policies,
    )
    try:
        yield server
    finally:
        server.shutdown()


def _clients(url: str, **config: Any):
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=120, **config)
    return (
        emulator_client("sagemaker", url, cfg),
        emulator_client("sagemaker-runtime", url, cfg),
    )


@pytest.fixture(scope="module")
def sm(emulator):
    return _clients(emulator.url)[0]


@pytest.fixture(scope="module")
def runtime(emulator):
    return _clients(emulator.url)[1]


@pytest.fixture(scope="module")
def unvalidated_sm(emulator):
    """A client that sends what it is given, so the server's own validation answers."""
    return _clients(emulator.url, parameter_validation=False)[0]
