"""The SageMaker inference toolkit's entry point, as the AWS PyTorch inference container runs it
when the Model's environment names no handler of the model's own (TS_DEFAULT_SERVICE_HANDLER).

The toolkit's Transformer.transform runs the model's handler functions once per request of
TorchServe's batch, and joins nothing. For every request of the batch it reads request 0's
Content-Type and Accept, and it sets request 0's response content type alone; one failure
fails the batch, since it answers with a single error body (a batch of more than one then gets
TorchServe's 503). A handler function that takes one argument more than the contract's gets
TorchServe's context last. Functions inference.py lacks fall back to the toolkit's JSON
defaults. (sagemaker-inference-toolkit: src/sagemaker_inference/transformer.py)

One difference is kept on purpose: a ValueError from the model's functions answers 400 here,
where the toolkit answers 500 for any exception that is not its own; the local stack's tests
of bad input rely on that reading.
"""

from __future__ import annotations

import inspect
import json
import sys
from http import HTTPStatus
from types import ModuleType
from typing import Any

from maas_local.sagemaker.torchserve import EntryPoint, ServingContext

UTF8_TYPES = ("application/json", "text/csv")  # the toolkit decodes these bodies to str first
DEFAULT_TYPE = "application/json"


def header(headers: dict[str, str], name: str) -> str | None:
    """A request header by name, whatever the case it was sent in."""
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def _call(function: Any, args: tuple, context: ServingContext | None) -> Any:
    """Calls a handler function as the toolkit does: with the context when it takes one more
    argument than the contract's, without it otherwise."""
    takes = len(inspect.signature(function).parameters)
    if context is not None and takes == len(args) + 1:
        return function(*args, context)
    return function(*args)


class Handler:
    """The model's four functions, with the toolkit's defaults where inference.py has none."""

    def __init__(self, module: ModuleType, model_dir: str) -> None:
        self.module = module
        self.model_dir = model_dir
        load_context = ServingContext(model_dir, [])
        self.model = _call(module.model_fn, (model_dir,), load_context)

    def input_fn(self, body: bytes | str, content_type: str, context: Any = None) -> Any:
        if hasattr(self.module, "input_fn"):
            return _call(self.module.input_fn, (body, content_type), context)
        if content_type.startswith(DEFAULT_TYPE):
            return json.loads(body)
        raise ValueError(f"Unsupported content type {content_type}; send application/json")

    def predict_fn(self, data: Any, model: Any, context: Any = None) -> Any:
        if hasattr(self.module, "predict_fn"):
            return _call(self.module.predict_fn, (data, model), context)
        return model(data)

    def output_fn(self, prediction: Any, accept: str, context: Any = None) -> Any:
        if hasattr(self.module, "output_fn"):
            return _call(self.module.output_fn, (prediction, accept), context)
        if hasattr(prediction, "tolist"):
            prediction = prediction.tolist()
        return json.dumps(prediction), DEFAULT_TYPE


def transform(handler: Handler) -> EntryPoint:
    """The toolkit's entry point over the model's handler functions."""

    def entry_point(data: list[dict[str, Any]], context: ServingContext) -> list[Any]:
        try:
            first = context.get_all_request_header(0)
            content_type = header(first, "Content-Type") or DEFAULT_TYPE
            accept = header(first, "Accept") or DEFAULT_TYPE
            answers = []
            for row in data:
                raw = bytes(row["body"])
                body = raw.decode("utf-8") if content_type in UTF8_TYPES else raw
                decoded = handler.input_fn(body, content_type, context)
                prediction = handler.predict_fn(decoded, handler.model, context)
                result = handler.output_fn(prediction, accept, context)
                answer, out_type = result if isinstance(result, tuple) else (result, accept)
                context.set_response_content_type(0, out_type)
                answers.append(answer)
            return answers
        except Exception as exc:  # the model's own error, passed back with its message
            status = (
                HTTPStatus.BAD_REQUEST
                if isinstance(exc, ValueError)
                else HTTPStatus.INTERNAL_SERVER_ERROR
            )
            message = f"{type(exc).__name__}: {exc}"
            print(f"invocation failed: {message}", file=sys.stderr, flush=True)
            context.set_response_status(status.value, status.phrase)
            context.set_response_content_type(0, DEFAULT_TYPE)
            return [json.dumps({"message": message})]

    return entry_point
