"""Serving functions for the stub nearest-centroid model (SageMaker's four handler functions).

`settings.json` beside the weights can ask for a slow or failing load, to test the emulator, and
for answers that name the model (`answer_with_name`), so a test can tell two fleets apart when
both serve under the one variant name a blue/green deployment requires.
"""

import io
import json
import os
import time
from pathlib import Path

import numpy as np


def model_fn(model_dir):
    settings_file = Path(model_dir) / "settings.json"
    settings = json.loads(settings_file.read_text()) if settings_file.exists() else {}
    time.sleep(settings.get("load_delay_s", 0))
    if settings.get("fail_load"):
        raise RuntimeError(settings["fail_load"])
    return {
        "centroids": np.load(Path(model_dir) / "centroids.npy"),
        "labels": np.load(Path(model_dir) / "labels.npy"),
        "name": settings.get("name", "stub"),
        "crash_on": settings.get("crash_on"),
        "fail_predict": settings.get("fail_predict"),
        "answer_with_name": settings.get("answer_with_name", False),
    }


def input_fn(body, content_type):
    if content_type == "application/json":
        payload = json.loads(body)
        if "instances" not in payload:
            raise ValueError('expected {"instances": [[feature, ...], ...]}')
        return np.asarray(payload["instances"], dtype=np.float32)
    if content_type == "application/x-npy":
        return np.load(io.BytesIO(body)).astype(np.float32)
    raise ValueError(f"Unsupported content type {content_type}; use application/json")


def predict_fn(data, model):
    centroids = model["centroids"]
    if data.ndim != 2 or data.shape[1] != centroids.shape[1]:
        raise ValueError(f"expected rows of {centroids.shape[1]} features, got {data.shape}")
    if model["fail_predict"]:
        raise RuntimeError(model["fail_predict"])
    if model["crash_on"] is not None and (data == model["crash_on"]).all(axis=1).any():
        os._exit(3)  # a model server that dies mid-request
    distance = ((data[:, None, :] - centroids[None]) ** 2).sum(-1)  # (N, K)
    labels = model["labels"][distance.argmin(1)]
    if model["answer_with_name"]:
        return {"predictions": labels.tolist(), "model": model["name"]}
    return labels


def output_fn(prediction, accept):
    if accept in ("application/json", "*/*"):
        if isinstance(prediction, dict):
            return json.dumps(prediction), "application/json"
        return json.dumps({"predictions": prediction.tolist()}), "application/json"
    raise ValueError(f"Unsupported accept {accept}; use application/json")
