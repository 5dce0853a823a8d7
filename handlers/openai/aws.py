"""The OpenAI function's AWS clients: sagemaker-runtime and DynamoDB, one each per process,
created on first use. As in handlers.shared.aws, botocore reads `AWS_ENDPOINT_URL` and
`AWS_ENDPOINT_URL_<SERVICE>` itself, so the same code talks to AWS, moto or the local stack.

The runtime client's timeouts differ from the predict function's: a generation answers in
pieces, so the read timeout bounds the gap between two pieces (and the wait for a non-streamed
answer), not a whole short call. SageMaker gives a real-time invocation 60 s to answer
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html), so
a read timeout past that never cuts an answer SageMaker would still deliver. Two attempts at
most: a retried generation costs the caller tokens twice.
"""

from __future__ import annotations

import threading
from typing import Any

import botocore.session
from botocore.config import Config

RUNTIME_CONNECT_TIMEOUT_S = 2.0
RUNTIME_READ_TIMEOUT_S = 65.0
RUNTIME_MAX_ATTEMPTS = 2
TABLE_CONNECT_TIMEOUT_S = 2.0
TABLE_READ_TIMEOUT_S = 5.0
TABLE_MAX_ATTEMPTS = 3

_lock = threading.Lock()
_clients: dict[str, Any] = {}


def _config(service: str) -> Config:
    runtime = service == "sagemaker-runtime"
    return Config(
        retries={
            "mode": "standard",
            "total_max_attempts": RUNTIME_MAX_ATTEMPTS if runtime else TABLE_MAX_ATTEMPTS,
        },
        connect_timeout=RUNTIME_CONNECT_TIMEOUT_S if runtime else TABLE_CONNECT_TIMEOUT_S,
        read_timeout=RUNTIME_READ_TIMEOUT_S if runtime else TABLE_READ_TIMEOUT_S,
        tcp_keepalive=True,
    )


def client(service: str) -> Any:
    found = _clients.get(service)
    if found is not None:
        return found
    with _lock:
        if service not in _clients:
            session = botocore.session.get_session()
            _clients[service] = session.create_client(service, config=_config(service))
        return _clients[service]


def runtime() -> Any:
    return client("sagemaker-runtime")


def dynamodb() -> Any:
    return client("dynamodb")


def reset() -> None:
    """Forget every client, so the next use reads the environment afresh (tests)."""
    with _lock:
        _clients.clear()
