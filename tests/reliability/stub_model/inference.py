"""A tiny model with switchable faults, served by the SageMaker emulator's model worker.

`settings.json` beside it may ask for: `load_delay_s` (the endpoint stays loading that long),
`fail_predict` (every prediction raises with that message: a version that errors), and
`crash_on` (a row equal to it kills the model server mid-request).
"""

import json
import os
import time
from pathlib import Path


def model_fn(model_dir):
    settings_file = Path(model_dir) / "settings.json"
    settings = json.loads(settings_file.read_text()) if settings_file.exists() else {}
    time.sleep(settings.get("load_delay_s", 0))
    return settings


def input_fn(body, content_type):
    if content_type != "application/json":
        raise ValueError(f"unsupported content type {content_type}; send application/json")
    payload = json.loads(body)
    rows = payload.get("instances") if isinstance(payload, dict) else None
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise ValueError('expected {"instances": [[number, ...], ...]}')
    return rows


def predict_fn(rows, settings):
    if settings.get("fail_predict"):
        raise RuntimeError(settings["fail_predict"])
    if settings.get("crash_on") is not None and settings["crash_on"] in rows:
        os._exit(3)  # the model server dies with the request in flight
    return [sum(float(v) for v in row) for row in rows]


def output_fn(prediction, accept, context=None):
    # Reports its version as every maas model server does (training/inference.py): the
    # container's MAAS_MODEL_VERSION, in the CustomAttributes response header.
    version = os.environ.get("MAAS_MODEL_VERSION")
    if context is not None and version:
        context.set_response_header(
            0, "X-Amzn-SageMaker-Custom-Attributes", f"maas-version={version}"
        )
    return json.dumps({"predictions": prediction}), "application/json"


_loaded = {}


def handle(data, context):
    """TorchServe's batch entry point, which every Model maas creates names
    (TS_DEFAULT_SERVICE_HANDLER): the four functions above, once per request of the batch."""
    if "settings" not in _loaded:
        _loaded["settings"] = model_fn(context.system_properties["model_dir"])
    if data is None:
        return None
    answers = []
    for i, row in enumerate(data):
        headers = {k.lower(): v for k, v in context.get_all_request_header(i).items()}
        try:
            rows = input_fn(bytes(row["body"]), headers.get("content-type", "application/json"))
            body, content_type = output_fn(
                predict_fn(rows, _loaded["settings"]), "application/json"
            )
            version = os.environ.get("MAAS_MODEL_VERSION")
            if version:
                context.set_response_header(
                    i, "X-Amzn-SageMaker-Custom-Attributes", f"maas-version={version}"
                )
        except Exception as exc:
            status = 400 if isinstance(exc, ValueError) else 500
            context.set_response_status(status, "", idx=i)
            body, content_type = (
                json.dumps({"message": f"{type(exc).__name__}: {exc}"}),
                "application/json",
            )
        context.set_response_content_type(i, content_type)
        answers.append(body)
    return answers
