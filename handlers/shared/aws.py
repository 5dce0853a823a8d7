"""The handlers' AWS clients: one per service and process, created on first use.

Endpoints are never set here. botocore reads `AWS_ENDPOINT_URL` and
`AWS_ENDPOINT_URL_<SERVICE>` (e.g. `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`) itself, so the same
code talks to AWS, moto, the local stack or LocalStack.

Timeout chain, outermost first. Each layer must give up before the one around it, so that
the caller always gets our JSON error (504) rather than API Gateway's bare timeout:

    API Gateway integration timeout   29 s  (REST API maximum)
    Lambda timeout (predict)          28 s  (set by infra)
    InvokeEndpoint, worst case        3 attempts x (1 s connect + 7 s read) + <= 3 s backoff = 27 s
                                      (standard mode backs off up to 1 s, then up to 2 s)

Control-plane calls (SageMaker, DynamoDB) are short: 2 s connect, 5 s read, 3 attempts.

Clients come from botocore itself, the layer under boto3 that makes every client. They are
created before the predict function's snapshot (`warm`), so a restored environment has them.

Attempts are capped with `total_max_attempts`: botocore reads the older `max_attempts` key
as the number of *retries*, which would make 4 attempts and break the chain above.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import Any

import botocore.session
from botocore.config import Config

MAX_ATTEMPTS = 3
RUNTIME_CONNECT_TIMEOUT_S = 1.0
RUNTIME_READ_TIMEOUT_S = 7.0
CONTROL_CONNECT_TIMEOUT_S = 2.0
CONTROL_READ_TIMEOUT_S = 5.0
S3_READ_TIMEOUT_S = 20.0

_lock = threading.Lock()
_clients: dict[str, Any] = {}
_session: botocore.session.Session | None = None


def _config(service: str) -> Config:
    if service == "s3":
        # A server-side copy of a large model (registration pins it) takes seconds; S3 keeps
        # the connection alive while it copies. The function's own timeout bounds the call.
        return Config(
            # Presigned URLs (artifact uploads) in Signature Version 4, the one every region
            # takes: https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html
            signature_version="s3v4",
            retries={"mode": "standard", "total_max_attempts": 2},
            connect_timeout=CONTROL_CONNECT_TIMEOUT_S,
            read_timeout=S3_READ_TIMEOUT_S,
            tcp_keepalive=True,
        )
    runtime = service == "sagemaker-runtime"
    return Config(
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=RUNTIME_CONNECT_TIMEOUT_S if runtime else CONTROL_CONNECT_TIMEOUT_S,
        read_timeout=RUNTIME_READ_TIMEOUT_S if runtime else CONTROL_READ_TIMEOUT_S,
        tcp_keepalive=True,
    )


def client(service: str, config: Config | None = None, name: str | None = None) -> Any:
    """The process-wide client for `service`, created on first use. A function whose calls
    need other timeouts passes its own `config` under a `name` of its own."""
    key = name or service
    found = _clients.get(key)
    if found is not None:
        return found
    global _session
    with _lock:
        if key not in _clients:
            if _session is None:
                _session = botocore.session.get_session()
            made = _session.create_client(service, config=config or _config(service))
            _clients[key] = made
        return _clients[key]


def warm(services: Iterable[str]) -> None:
    """Creates these services' clients now (before a snapshot), not on the first request."""
    for service in services:
        client(service)


def sagemaker() -> Any:
    return client("sagemaker")


def runtime() -> Any:
    return client("sagemaker-runtime")


def dynamodb() -> Any:
    return client("dynamodb")


def s3() -> Any:
    return client("s3")


def reset() -> None:
    """Forget every client, so the next use reads the environment and timeouts afresh.

    The session stays: it holds only the parsed service models, which are costly to load.
    """
    with _lock:
        _clients.clear()


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
