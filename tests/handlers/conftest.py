"""Fixtures for the handler tests: moto-backed AWS with the registry table built from the
contract's key schema (as infra and the local stack build theirs), the environment built
from the contract's settings, Lambda's context, and a local sagemaker-runtime stub."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from maas_contract.registry import key_schema
from maas_contract.settings import HandlerSettings
from maas_local.lambda_context import LambdaContext
from maas_local.moto_server import serialise_dynamodb
from tests.handlers.support import (
    ARTIFACTS,
    CAPTURE,
    DATA,
    ECR,
    INFERENCE_CPU,
    INFERENCE_GPU,
    KMS,
    PREFIX,
    ROLE,
    ROOT,
    TABLE,
    TRAINING_INSTANCE_TYPE,
    RuntimeStub,
    SageMakerCalls,
    forget_clients,
    session,
)

SETTINGS = HandlerSettings(
    registry_table=TABLE,
    resource_prefix=PREFIX,
    artifact_bucket=ARTIFACTS,
    data_bucket=DATA,
    capture_bucket=CAPTURE,
    kms_key_arn=KMS,
    sagemaker_role_arn=ROLE,
    training_image_uri=f"{ECR}/pytorch-training:2.5-gpu-py311",
    inference_image_uri=INFERENCE_GPU,
    inference_image_uri_cpu=INFERENCE_CPU,
    source_dir_s3_uri=f"s3://{ARTIFACTS}/code/sourcedir.tar.gz",
    training_instance_type=TRAINING_INSTANCE_TYPE,
    metric_definitions=tuple(
        json.loads((ROOT / "training" / "metric_definitions.json").read_text())
    ),
    metrics_namespace="maas-test",
)


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        **SETTINGS.to_env(),
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    forget_clients()
    yield
    forget_clients()


@pytest.fixture(scope="session", autouse=True)
def atomic_moto_requests() -> Iterator[None]:
    """moto evaluates a condition and writes in separate steps; DynamoDB does both at once.
    Serialising each request restores that per-request atomicity. Handler threads still
    interleave between requests, which is what the concurrency tests are about."""
    lock = threading.Lock()
    original = BotocoreStubber.__call__

    def atomic(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, event_name, request, **kwargs)

    BotocoreStubber.__call__ = atomic  # type: ignore[method-assign]
    yield
    BotocoreStubber.__call__ = original  # type: ignore[method-assign]


def _create_table(client: Any) -> None:
    schema = key_schema()
    client.create_table(**schema.create_table_request(TABLE))
    client.update_time_to_live(**schema.time_to_live_request(TABLE))


def _create_artifact_bucket() -> None:
    s3 = session().client("s3")
    s3.create_bucket(Bucket=ARTIFACTS)
    s3.put_bucket_versioning(Bucket=ARTIFACTS, VersioningConfiguration={"Status": "Enabled"})


@pytest.fixture
def aws_backend(environment: None) -> Iterator[dict[str, Any]]:
    """moto with the registry table, built from the contract's key schema, and the
    artifact bucket (versioned, as infra/artifact_store.py makes it)."""
    with mock_aws():
        dynamodb = session().client("dynamodb")
        _create_table(dynamodb)
        _create_artifact_bucket()
        forget_clients()
        yield {"dynamodb": dynamodb}


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext("maas-test-handler", timeout_s=28.0)


@pytest.fixture
def runtime_stub(monkeypatch: pytest.MonkeyPatch, aws_backend: dict) -> Iterator[RuntimeStub]:
    from handlers.shared import aws

    stub = RuntimeStub()
    stub.thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", stub.url)
    monkeypatch.setattr(aws, "RUNTIME_READ_TIMEOUT_S", 0.5)
    aws.reset()
    try:
        yield stub
    finally:
        stub.server.shutdown()
        stub.server.server_close()
        aws.reset()


@pytest.fixture
def moto_server(environment: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto as a server on 127.0.0.1, for tests whose callers are separate processes (as
    concurrent Lambda instances are). Its table operations run one at a time, as the local
    stack's do, so conditional writes and transactions are atomic, as in DynamoDB."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    serialise_dynamodb()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        forget_clients()
        dynamodb = session().client("dynamodb")
        _create_table(dynamodb)
        _create_artifact_bucket()
        yield {"dynamodb": dynamodb}
    finally:
        server.stop()
        forget_clients()


@pytest.fixture
def sagemaker_calls(aws_backend: dict) -> Any:
    """The handlers' own SageMaker client, with every request recorded."""
    from handlers.shared import aws

    return SageMakerCalls(aws.sagemaker())
