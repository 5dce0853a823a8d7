"""The OpenAI function's AWS clients, from handlers.shared.aws's factory: DynamoDB's is the
shared one; sagemaker-runtime's has timeouts of its own. botocore reads `AWS_ENDPOINT_URL` and
`AWS_ENDPOINT_URL_<SERVICE>` itself, so the same code talks to AWS, moto or the local stack.

The runtime client's timeouts differ from the predict function's: a generation answers in
pieces, so the read timeout bounds the gap between two pieces (and the wait for a non-streamed
answer), not a whole short call. SageMaker gives a real-time invocation 60 s to answer
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html), so
a read timeout past that never cuts an answer SageMaker would still deliver. Two attempts at
most: a retried generation costs the caller tokens twice.
"""

from __future__ import annotations

from typing import Any

from botocore.config import Config

from handlers.shared import aws as shared

RUNTIME_CONNECT_TIMEOUT_S = 2.0
RUNTIME_READ_TIMEOUT_S = 65.0
RUNTIME_MAX_ATTEMPTS = 2
_RUNTIME_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": RUNTIME_MAX_ATTEMPTS},
    connect_timeout=RUNTIME_CONNECT_TIMEOUT_S,
    read_timeout=RUNTIME_READ_TIMEOUT_S,
    tcp_keepalive=True,
)


def runtime() -> Any:
    return shared.client("sagemaker-runtime", _RUNTIME_CONFIG, name="sagemaker-runtime/generation")


def dynamodb() -> Any:
    """The usage table's calls are short control-plane ones: the shared client serves them."""
    return shared.dynamodb()


def reset() -> None:
    """Forget every client, so the next use reads the environment afresh (tests)."""
    shared.reset()
