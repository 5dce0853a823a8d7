"""SageMaker inference handlers for every maas recipe: model_fn, input_fn, predict_fn, output_fn.

The serving container imports this file from a model's code/, with code/ on sys.path; code/
also holds the maas_training package, which does the work (maas_training.serving).

Requests: application/json ({"instances": [...]} or an Open Inference Protocol v2
{"inputs": [...]}), application/x-npy, and text/plain for text models (one text per line).
Responses are JSON: {"predictions": [...]}, or OIP v2 {"outputs": [...]} for an OIP request;
for Accept: application/x-npy, one .npy record array with a field per output.
Bad input raises a ValueError subclass (maas_training.protocol) that says what was expected.

Every answer says which model version gave it. The SageMaker Model's container environment
carries the version (MODEL_VERSION_ENV); `output_fn` takes the serving container's request
context as its last argument (the SageMaker inference toolkit passes it to a handler function
that declares one more parameter than the contract's, and the PyTorch container serves on
TorchServe, whose `Context.set_response_header` sets a response header) and sets
`X-Amzn-SageMaker-Custom-Attributes`, which SageMaker returns as InvokeEndpoint's
CustomAttributes. The value is `maas-version=N`; when the caller sent CustomAttributes, theirs
come first: `<caller's>,maas-version=N` (a `maas-version` entry of the caller's is replaced, and
the caller's part is dropped if keeping it would pass SageMaker's 1,024-character limit).
https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html

`handle(data, context)` is TorchServe's own entry point, for the whole batch TorchServe formed.
The toolkit runs the four functions once per request even inside a batch (and reads request
0's headers for all of them), so batching pays only when the Model's environment names this
function instead (`TS_DEFAULT_SERVICE_HANDLER`, see maas_contract.sagemaker): then each request
is decoded with its own content type, joinable inputs share one `predict_fn` call
(maas_training.batching), each answer is encoded with its own Accept, and a bad request gets
its own 4xx/5xx status without failing the batch.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from http import HTTPStatus
from typing import Any

from maas_training import batching, protocol
from maas_training.serving import LoadedModel, load, predict

# The same names as maas_contract.sagemaker (training/ imports nothing outside itself; a test
# holds the two equal).
MODEL_VERSION_ENV = "MAAS_MODEL_VERSION"
VERSION_ATTRIBUTE = "maas-version"
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
CUSTOM_ATTRIBUTES_MAX = 1024
DEFAULT_TYPE = "application/json"  # for a request that names no Content-Type or Accept

log = logging.getLogger(__name__)
# TorchServe loads the model once per worker process, with its first (load-time) call.
_loaded: dict[str, LoadedModel] = {}


def model_fn(model_dir: str) -> LoadedModel:
    return load(model_dir)


def input_fn(request_body: bytes | str, request_content_type: str) -> protocol.Request:
    return protocol.decode(request_body, request_content_type)


def predict_fn(input_data: protocol.Request, model: LoadedModel) -> protocol.Prediction:
    return predict(model, input_data)


def output_fn(prediction: protocol.Prediction, accept: str, context: Any = None) -> bytes | str:
    """JSON, or .npy for Accept: application/x-npy. The inference toolkit sends the Accept
    type as the response's Content-Type (its default for */* and no Accept is JSON)."""
    if context is not None:
        report_version(context)
    if protocol.media_type(accept) == protocol.NPY_TYPE:
        return protocol.encode_npy(prediction)
    return protocol.encode(prediction, accept)


def answer_type(accept: str) -> str:
    npy = protocol.media_type(accept) == protocol.NPY_TYPE
    return protocol.NPY_TYPE if npy else DEFAULT_TYPE


def custom_attributes(caller: str | None, version: str) -> str:
    """The CustomAttributes answer: the caller's attributes, then `maas-version=N`."""
    own = f"{VERSION_ATTRIBUTE}={version}"
    kept = [
        part.strip()
        for part in (caller or "").split(",")
        if part.strip() and part.split("=", 1)[0].strip() != VERSION_ATTRIBUTE
    ]
    combined = ",".join([*kept, own])
    return combined if len(combined) <= CUSTOM_ATTRIBUTES_MAX else own


def report_version(context: Any, idx: int = 0) -> None:
    """Sets the version response header on the toolkit's context (request `idx`, 0 as the
    toolkit uses); nothing when the container's environment names no version."""
    version = os.environ.get(MODEL_VERSION_ENV)
    if not version:
        return
    headers = context.get_all_request_header(idx) or {}
    caller = next(
        (v for k, v in headers.items() if k.lower() == CUSTOM_ATTRIBUTES_HEADER.lower()), None
    )
    context.set_response_header(idx, CUSTOM_ATTRIBUTES_HEADER, custom_attributes(caller, version))


def handle(data: list[dict[str, Any]] | None, context: Any) -> list[bytes | str] | None:
    """TorchServe's entry point: one call per batch, one answer per request, in order.

    `data` holds one `{"body": bytearray}` per request (None at load time); the request's
    headers come from `context.get_all_request_header(i)`, and its status and content type go
    back through `context.set_response_status(code, phrase, idx=i)` and
    `context.set_response_content_type(i, ...)`. TorchServe fails the whole batch unless the
    answer is a list of exactly `len(data)` bodies.
    """
    model_dir = str(context.system_properties["model_dir"])
    if model_dir not in _loaded:
        _loaded.clear()
        _loaded[model_dir] = model_fn(model_dir)
    if data is None:
        return None
    return _serve(_loaded[model_dir], data, context)


def _serve(model: LoadedModel, data: list[dict[str, Any]], context: Any) -> list[bytes | str]:
    answers: list[bytes | str] = [""] * len(data)
    headers = [_headers(context, i) for i in range(len(data))]
    decoded: dict[int, protocol.Request] = {}
    for i, row in enumerate(data):
        try:
            decoded[i] = input_fn(_body(row), headers[i].get("content-type") or DEFAULT_TYPE)
        except Exception as exc:
            answers[i] = _failure(context, i, exc)
    order = list(decoded)
    outcomes = batching.predict_joined(
        [decoded[i].values for i in order],
        lambda values: predict_fn(protocol.Request(values, "instances"), model),
    )
    for i, outcome in zip(order, outcomes, strict=True):
        try:
            if outcome.error is not None:
                raise outcome.error
            # Joined inputs were predicted as plain instances: each answer takes back its
            # own request's protocol (an OIP request gets an OIP answer, with its id).
            prediction = dataclasses.replace(
                outcome.value, protocol=decoded[i].protocol, oip_id=decoded[i].oip_id
            )
            accept = headers[i].get("accept") or DEFAULT_TYPE
            answers[i] = output_fn(prediction, accept)
            context.set_response_content_type(i, answer_type(accept))
            report_version(context, i)
        except Exception as exc:
            answers[i] = _failure(context, i, exc)
    return answers


def _headers(context: Any, idx: int) -> dict[str, str]:
    """Request `idx`'s headers, keyed in lower case (TorchServe keeps the sender's case)."""
    headers = context.get_all_request_header(idx) or {}
    return {k.lower(): v for k, v in headers.items() if isinstance(v, str)}


def _body(row: dict[str, Any]) -> bytes | str:
    body = row.get("body", row.get("data"))
    if body is None:
        return b""
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body
    # TorchServe decodes a JSON body itself unless decode_input_request=false (the toolkit's
    # setting); the model's own decoding reads it as the caller sent it.
    return json.dumps(body)


def _failure(context: Any, idx: int, exc: Exception) -> str:
    """Request `idx`'s error answer: 400 for input the model refuses (a ValueError), else 500."""
    status = (
        HTTPStatus.BAD_REQUEST if isinstance(exc, ValueError) else HTTPStatus.INTERNAL_SERVER_ERROR
    )
    message = f"{type(exc).__name__}: {exc}"
    log.warning("request %d of the batch failed: %s", idx, message)
    context.set_response_status(status.value, status.phrase, idx=idx)
    context.set_response_content_type(idx, DEFAULT_TYPE)
    return json.dumps({"message": message})
