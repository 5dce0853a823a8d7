"""SageMaker inference handlers for every maas recipe: model_fn, input_fn, predict_fn, output_fn.

The serving container imports this file from a model's code/, with code/ on sys.path; code/
also holds the maas_training package, which does the work (maas_training.serving).

Requests: application/json ({"instances": [...]} or an Open Inference Protocol v2
{"inputs": [...]}), application/x-npy, and text/plain for text models (one text per line).
Responses are JSON: {"predictions": [...]}, or OIP v2 {"outputs": [...]} for an OIP request.
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
"""

from __future__ import annotations

import os
from typing import Any

from maas_training import protocol
from maas_training.serving import LoadedModel, load, predict

# The same names as maas_contract.sagemaker (training/ imports nothing outside itself; a test
# holds the two equal).
MODEL_VERSION_ENV = "MAAS_MODEL_VERSION"
VERSION_ATTRIBUTE = "maas-version"
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
CUSTOM_ATTRIBUTES_MAX = 1024


def model_fn(model_dir: str) -> LoadedModel:
    return load(model_dir)


def input_fn(request_body: bytes | str, request_content_type: str) -> protocol.Request:
    return protocol.decode(request_body, request_content_type)


def predict_fn(input_data: protocol.Request, model: LoadedModel) -> protocol.Prediction:
    return predict(model, input_data)


def output_fn(prediction: protocol.Prediction, accept: str, context: Any = None) -> str:
    if context is not None:
        report_version(context)
    return protocol.encode(prediction, accept)


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
