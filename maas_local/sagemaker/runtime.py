"""The `sagemaker-runtime` side: InvokeEndpoint routing and the runtime's error shapes.

A request goes to its TargetVariant, or, during a blue/green deployment, to the new fleet with
the deployment's current traffic share, then to a variant by weight. A model server that does not
answer is restarted by the request that found it dead; that request gets ServiceUnavailable, or
a ModelError when the server died with the request in flight.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from maas_local.sagemaker.endpoints import Endpoints
from maas_local.sagemaker.fleet import (
    LoadError,
    ModelStream,
    VariantServer,
    WorkerDied,
    WorkerDown,
)
from maas_local.sagemaker.protocol import AwsError

T = TypeVar("T")


def runtime_error(code: str, message: str, status: int, **fields: Any) -> AwsError:
    return AwsError(code, message, status, **fields)


def invoke(
    endpoints: Endpoints, name: str, body: bytes, headers: dict[str, str], target: str | None
):
    """Routes one request; returns (body, content type, variant name)."""
    variant, (status, data, content_type) = _call(
        endpoints, name, target, lambda v: v.invoke(body, headers)
    )
    if status != 200:
        raise _model_error(endpoints.ctx, name, status, data)
    return data, content_type, variant.name


def open_stream(
    endpoints: Endpoints, name: str, body: bytes, headers: dict[str, str], target: str | None
) -> ModelStream:
    """InvokeEndpointWithResponseStream's routing and errors, which are InvokeEndpoint's up to
    the model's status line; returns the model's answer, its body still to read."""
    _, stream = _call(endpoints, name, target, lambda v: v.open_stream(body, headers))
    if stream.status != 200:
        raise _model_error(endpoints.ctx, name, stream.status, stream.read())
    return stream


def _call(
    endpoints: Endpoints, name: str, target: str | None, call: Callable[[VariantServer], T]
) -> tuple[VariantServer, T]:
    """Routes a request to a variant and makes `call` on it. A model server that does not
    answer is restarted, and the request gets what SageMaker answers then."""
    variant = _route(endpoints, name, target)
    if variant.state == "Restarting":
        raise runtime_error("ModelNotReadyException", f"Model for {name} is loading", 429)
    try:
        if variant.state == "Failed":
            raise WorkerDown(f"model server for {variant.name} is down")
        return variant, call(variant)
    except WorkerDown as exc:
        try:
            variant.restart(endpoints.ctx.load_timeout_s)
        except LoadError:
            pass
        if isinstance(exc, WorkerDied):
            # The model server's own answer when its worker dies mid-request (TorchServe's
            # 500 "Worker died."), which SageMaker passes on as a ModelError.
            raise _model_error(endpoints.ctx, name, 500, b"Worker died.") from exc
        raise runtime_error("ServiceUnavailable", f"{exc}; it is being restarted", 503) from exc


def _route(endpoints: Endpoints, name: str, target: str | None) -> VariantServer:
    endpoint = endpoints.endpoints.get(name)
    if endpoint is None:
        message = f"Endpoint {name} of account {endpoints.ctx.account} not found."
        raise runtime_error("ValidationError", message, 400)
    with endpoint.lock:
        live, pending, share = endpoint.live, endpoint.pending, endpoint.share
        status = endpoint.record["EndpointStatus"]
    if live is None:
        if status in ("Creating", "SystemUpdating"):  # SystemUpdating: restored, loading again
            raise runtime_error("ModelNotReadyException", f"Endpoint {name} is loading", 429)
        raise runtime_error("ValidationError", f"Endpoint {name} is in {status} status", 400)
    if target:
        for fleet in (pending, live):
            if fleet is not None and target in fleet.variants:
                return fleet.variants[target]
        message = f"The variant(s) [{target}] is not valid for endpoint {name}."
        raise runtime_error("ValidationError", message, 400)
    fleet = pending if pending is not None and endpoints.ctx.rng.random() < share else live
    chosen = fleet.choose(endpoints.ctx.rng) or live.choose(endpoints.ctx.rng)
    if chosen is None:
        raise runtime_error("ValidationError", f"Endpoint {name} has no weighted variant", 400)
    return chosen


def _model_error(ctx: Any, name: str, status: int, data: bytes) -> AwsError:
    text = data.decode(errors="replace")
    try:
        original = json.loads(text).get("message", text)
    except (ValueError, AttributeError):
        original = text
    side = "client" if 400 <= status < 500 else "server"
    group = f"/aws/sagemaker/Endpoints/{name}"
    message = (
        f'Received {side} error ({status}) from primary with message "{original}". '
        f"See the log group {group} in account {ctx.account} for more information."
    )
    return runtime_error(
        "ModelError",
        message,
        424,
        OriginalStatusCode=status,
        OriginalMessage=original,
        LogStreamArn=f"arn:aws:logs:{ctx.region}:{ctx.account}:log-group:{group}",
    )
