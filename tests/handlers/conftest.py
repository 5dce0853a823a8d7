"""Fixtures for the handler tests: moto-backed AWS built from handlers/registry_schema.json,
a small Lambda context, and a local sagemaker-runtime stub."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

sys.path.insert(0, str(Path(__file__).parent))

from handler_support import (  # noqa: E402
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
    FakeLambdaContext,
    RuntimeStub,
    session,
)

SCHEMA = json.loads((ROOT / "handlers" / "registry_schema.json").read_text())


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
        "REGISTRY_TABLE": TABLE,
        "RESOURCE_PREFIX": PREFIX,
        "ARTIFACT_BUCKET": ARTIFACTS,
        "DATA_BUCKET": DATA,
        "CAPTURE_BUCKET": CAPTURE,
        "KMS_KEY_ARN": KMS,
        "SAGEMAKER_ROLE_ARN": ROLE,
        "TRAINING_IMAGE_URI": f"{ECR}/pytorch-training:2.5-gpu-py311",
        "INFERENCE_IMAGE_URI": INFERENCE_GPU,
        "INFERENCE_IMAGE_URI_CPU": INFERENCE_CPU,
        "TRAINING_INSTANCE_TYPE": TRAINING_INSTANCE_TYPE,
        "SOURCE_DIR_S3_URI": f"s3://{ARTIFACTS}/code/sourcedir.tar.gz",
        "METRIC_DEFINITIONS": (ROOT / "training" / "metric_definitions.json").read_text(),
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "maas-test",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    _forget_clients()
    yield
    _forget_clients()


def _forget_clients() -> None:
    from handlers import aws, idempotent, store

    aws.reset()
    store.clear_cache()
    idempotent.reset()


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
    attrs = [SCHEMA["partition_key"], SCHEMA["sort_key"]]
    indexes = []
    for gsi in SCHEMA["global_secondary_indexes"]:
        attrs += [gsi["partition_key"], gsi["sort_key"]]
        indexes.append(
            {
                "IndexName": gsi["name"],
                "KeySchema": [
                    {"AttributeName": gsi["partition_key"]["name"], "KeyType": "HASH"},
                    {"AttributeName": gsi["sort_key"]["name"], "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        )
    client.create_table(
        TableName=TABLE,
        AttributeDefinitions=[
            {"AttributeName": a["name"], "AttributeType": a["type"]} for a in attrs
        ],
        KeySchema=[
            {"AttributeName": SCHEMA["partition_key"]["name"], "KeyType": "HASH"},
            {"AttributeName": SCHEMA["sort_key"]["name"], "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=indexes,
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=TABLE,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": SCHEMA["ttl_attribute"]},
    )


@pytest.fixture
def aws_backend(environment: None) -> Iterator[dict[str, Any]]:
    """moto with the registry table (built from handlers/registry_schema.json) and buckets."""
    with mock_aws():
        dynamodb = session().client("dynamodb")
        _create_table(dynamodb)
        _forget_clients()
        yield {"dynamodb": dynamodb}


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def runtime_stub(monkeypatch: pytest.MonkeyPatch, aws_backend: dict) -> Iterator[RuntimeStub]:
    from handlers import aws

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
    concurrent Lambda instances are). Each request is applied atomically, as in DynamoDB."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    lock = threading.Lock()
    original = DomainDispatcherApplication.__call__

    def atomic(self: Any, environ: Any, start_response: Any) -> Any:
        with lock:
            return list(original(self, environ, start_response))

    monkeypatch.setattr(DomainDispatcherApplication, "__call__", atomic)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        _forget_clients()
        dynamodb = session().client("dynamodb")
        _create_table(dynamodb)
        yield {"dynamodb": dynamodb}
    finally:
        server.stop()
        _forget_clients()


@pytest.fixture
def sagemaker_calls(aws_backend: dict) -> Any:
    """The handlers' own SageMaker client, with every request recorded."""
    from handler_support import SageMakerCalls

    from handlers import aws

    return SageMakerCalls(aws.sagemaker())
