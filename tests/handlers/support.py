"""What the handler tests share besides fixtures: sample events, a sagemaker-runtime stub on
127.0.0.1, and steps that go through the real entry points."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import multiprocessing
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote

from maas_contract.errors import is_error_body

ADMIN = "maas/admin"
REQUEST_ID = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"  # the sample event's requestContext.requestId
_SESSION: list[Any] = []


def session() -> Any:
    """One boto3 session for the fixtures: loading service models once saves seconds."""
    if not _SESSION:
        import boto3

        _SESSION.append(boto3.session.Session())
    return _SESSION[0]


ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
TABLE = "maas-test-registry"
PREFIX = "maas-test"
ARTIFACTS = "maas-test-artifacts"
DATA = "maas-test-data"
CAPTURE = "maas-test-capture"
KMS = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
ROLE = "arn:aws:iam::123456789012:role/maas-test-sagemaker"
ECR = "763104351884.dkr.ecr.us-east-1.amazonaws.com"
INFERENCE_GPU = f"{ECR}/pytorch-inference:2.5-gpu-py311"
INFERENCE_CPU = f"{ECR}/pytorch-inference:2.5-cpu-py311"
# moto 5 does not know ml.g5.* yet, so the stage's training instance type here is a g4dn.
TRAINING_INSTANCE_TYPE = "ml.g4dn.xlarge"


def forget_clients() -> None:
    """Forget the handlers' clients and caches, so the next call reads the environment afresh."""
    from handlers.predict import service as predict
    from handlers.shared import aws, idempotency

    aws.reset()
    predict.clear_cache()
    idempotency.reset()


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def api_event(
    method: str,
    resource: str,
    *,
    path_params: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: str | bytes | dict | None = None,
    headers: dict[str, str] | None = None,
    scopes: str = "maas/invoke",
    base64_body: bool = False,
) -> dict[str, Any]:
    """An API Gateway REST proxy event, from the captured sample in tests/events/."""
    event = copy.deepcopy(load_event("apigw_rest_request.json"))
    path = resource
    for name, value in (path_params or {}).items():
        path = path.replace("{" + name + "}", value)
    event.update(
        resource=resource,
        path=path,
        httpMethod=method,
        pathParameters=path_params,
        queryStringParameters=query,
    )
    event["requestContext"].update(httpMethod=method, resourcePath=resource)
    event["requestContext"]["authorizer"]["claims"]["scope"] = scopes
    event["headers"].update(headers or {})
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, bytes):
        body, base64_body = base64.b64encode(body).decode(), True
    event["body"] = body
    event["isBase64Encoded"] = base64_body
    return event


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


class ErrorBody(NamedTuple):
    code: str
    message: str


def error_of(reply: Reply) -> ErrorBody:
    """An error reply's code and message, once its body is checked to be exactly the one error
    body (maas_contract.errors): a string `error`, with `code` and the request's id beside it."""
    assert reply.status >= 400, reply
    assert is_error_body(reply.body), reply.body
    assert reply.body["request_id"] == REQUEST_ID, reply.body
    return ErrorBody(reply.body["code"], reply.body["error"])


def call(module: Any, event: dict[str, Any], context: Any) -> Reply:
    result = module.handler(event, context)
    headers = {k: v[-1] for k, v in (result.get("multiValueHeaders") or {}).items()}
    headers.update(result.get("headers") or {})
    return Reply(result["statusCode"], json.loads(result["body"] or "null"), headers)


@dataclass
class Scripted:
    status: int = 200
    body: bytes = b'{"predictions": [1]}'
    headers: dict[str, str] = field(
        default_factory=lambda: {
            "Content-Type": "application/json",
            "X-Amzn-Invoked-Production-Variant": "AllTraffic",
            "X-Amzn-SageMaker-Custom-Attributes": "maas-version=1",
        }
    )
    delay_s: float = 0.0


def runtime_error(status: int, code: str, message: str, **extra: Any) -> Scripted:
    return Scripted(
        status,
        json.dumps({"message": message, **extra}).encode(),
        {"Content-Type": "application/json", "x-amzn-ErrorType": code},
    )


class RuntimeStub:
    """sagemaker-runtime on 127.0.0.1: replies from a script, records every request."""

    def __init__(self) -> None:
        self.script: list[Scripted] = []
        self.default = Scripted()
        self.requests: list[dict[str, Any]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                stub.requests.append(
                    {
                        "endpoint": unquote(self.path.split("/")[2]),
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body,
                    }
                )
                reply = stub.script.pop(0) if stub.script else stub.default
                time.sleep(reply.delay_s)
                # A client that timed out has hung up; that is the point of a slow reply.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)

            def log_message(self, *args: Any) -> None:
                """Silent: request lines would drown the test output."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def calls(self) -> int:
        return len(self.requests)


def put_artifact(uri: str, body: bytes | None = None) -> str:
    """Puts a stand-in model.tar.gz at `uri` (the artifact bucket of the moto in use), unless
    one is there: registration pins only artifacts that exist."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3 = session().client("s3")
    if body is None:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
        if any(o["Key"] == key for o in listed):
            return uri
        body = b"model of " + key.encode()
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    return uri


def registration_event(
    model: str, *, version: int | None = None, key: str | None = None, schema: dict | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "artifact_uri": put_artifact(f"s3://{ARTIFACTS}/models/{model}/model.tar.gz"),
        "recipe": "image-cnn",
        "metrics": {"validation:accuracy": 0.97},
    }
    if version is not None:
        body["version"] = version
    if schema is not None:
        body["input_schema"] = schema
    return api_event(
        "POST",
        "/v1/models/{model}/versions",
        path_params={"model": model},
        body=body,
        scopes=ADMIN,
        headers={"Idempotency-Key": key or f"reg-{model}-{version}"},
    )


def register(
    model: str,
    context: Any,
    *,
    version: int | None = None,
    key: str | None = None,
    schema: dict | None = None,
) -> Reply:
    from handlers.registry import routes

    event = registration_event(model, version=version, key=key, schema=schema)
    return call(routes, event, context)


def deployment_body(version: int, **overrides: Any) -> dict[str, Any]:
    return {
        "version": version,
        "instance_type": "ml.m5.large",
        "instance_count": 1,
        "canary_percent": 10,
        "canary_wait_seconds": 120,
        "rollback_alarms": ["maas-test-demo-5xx-extra", "maas-test-demo-latency"],
        **overrides,
    }


def parallel_calls(module: Any, events: list[dict[str, Any]], context: Any) -> list[Reply]:
    """Calls `module.handler` once per event, each in its own forked process (one process per
    Lambda instance), released together by a barrier."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(len(events))
    results = ctx.Queue()

    def child(index: int, event: dict[str, Any]) -> None:
        forget_clients()  # never share the parent's connections
        barrier.wait(timeout=30)
        try:
            result = module.handler(event, context)
            results.put((index, result["statusCode"], result["body"]))
        except BaseException as exc:  # reported, so the parent's assertion shows it
            results.put((index, -1, json.dumps({"error": repr(exc)})))

    processes = [ctx.Process(target=child, args=(i, e)) for i, e in enumerate(events)]
    for process in processes:
        process.start()
    try:
        collected = sorted(results.get(timeout=60) for _ in events)
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    return [Reply(status, json.loads(body), {}) for _, status, body in collected]


def training_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "demo",
        "recipe": "image-cnn",
        "datasets": {"train": f"s3://{DATA}/mnist/train/", "validation": f"s3://{DATA}/mnist/val/"},
        "hyperparameters": {"epochs": 3, "lr": 0.001, "amp": True},
        "instance_type": "ml.g4dn.xlarge",  # moto 5 does not know ml.g5.* yet
        "spot": True,
        "max_runtime_seconds": 3600,
        "metric_threshold": {"metric": "validation:accuracy", "value": 0.9},
    }
    body.update(overrides)
    return body


def training_event(body: dict[str, Any], key: str | None = "job-key", scopes: str = ADMIN):
    headers = {"Idempotency-Key": key} if key else {}
    return api_event("POST", "/v1/training-jobs", body=body, headers=headers, scopes=scopes)


class SageMakerCalls:
    """Records SageMaker requests the handlers make; can answer the ones moto lacks."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.requests: dict[str, list[dict[str, Any]]] = {}
        self.answers: dict[str, Any] = {}
        client.meta.events.register("before-call.sagemaker.*", self._before)

    def _before(self, model: Any, params: dict[str, Any], **kwargs: Any) -> Any:
        self.requests.setdefault(model.name, []).append(
            params["body"] if "body" in params else params
        )
        answer = self.answers.get(model.name)
        if answer is None:
            return None
        parsed = answer() if callable(answer) else answer
        return _Http(), parsed

    def sent(self, operation: str) -> list[dict[str, Any]]:
        """Every request of `operation`, oldest first, parsed."""
        return [
            json.loads(raw) if isinstance(raw, bytes | str) else raw
            for raw in self.requests.get(operation, [])
        ]

    def last(self, operation: str) -> dict[str, Any]:
        return self.sent(operation)[-1]


class _Http:
    status_code = 200
    headers: dict[str, str] = {}
