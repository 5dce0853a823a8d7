"""Examples for the API's description: one for every request and response body.

Response examples are keyed by the body's schema (components/schemas), so a new route that
answers an existing type has its example already; tests/handlers/test_openapi.py checks that
every body has one and that each example is valid against its own schema.
"""

from __future__ import annotations

from typing import Any

# scikit-learn's first 8x8 digit (a zero), scaled to [0, 1] as training/prepare_digits.py does:
# the image-cnn recipe's input is (N, 1, 8, 8), 64 features per image.
_ZERO = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0]
_ZERO += [0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0]
_ZERO += [0, 0, 6, 13, 10, 0, 0, 0]
DIGIT_FEATURES = [round(pixel / 16, 4) for pixel in _ZERO]
DIGIT_IMAGE = [[DIGIT_FEATURES[row * 8 : row * 8 + 8] for row in range(8)]]  # (1, 8, 8)
PROBABILITIES = [0.9731, 0.0002, 0.0011, 0.0003, 0.0021, 0.0058, 0.0104, 0.0001, 0.0062, 0.0007]

_CREATED = "2025-06-01T09:30:00+00:00"
_UPDATED = "2025-06-01T09:41:12+00:00"
_ARTIFACT = "s3://maas-dev-artifacts-111122223333/training/digits/model.tar.gz"
_SHA256 = "9f2c4e1b7a0d3c5e8f6a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a"
# What train.py writes as the digits model's signature.json.
_INPUT_SCHEMA = {
    "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}],
    "outputs": [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
    ],
    "labels": [str(digit) for digit in range(10)],
}
_UPLOADS = "https://maas-dev-artifacts-111122223333.s3.amazonaws.com/uploads/digits/4f1c9a0e"
_SIGNED = "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=900&X-Amz-Signature=5d6e"
_MODEL = {
    "name": "digits",
    "endpoint_name": "maas-dev-digits",
    "latest_version": 3,
    "live_version": 3,
    "previous_version": 2,
    "active_deployment": None,
    "live_deployment": "d463f8a51a7b6",
    "created_at": "2025-05-20T14:02:51+00:00",
    "updated_at": _UPDATED,
}
_VERSION = {
    "model": "digits",
    "version": 3,
    "artifact_uri": _ARTIFACT,
    "pinned_uri": f"s3://maas-dev-artifacts-111122223333/pinned/sha256/{_SHA256}/model.tar.gz",
    "artifact_sha256": _SHA256,
    "recipe": "image-cnn",
    "metrics": {"validation:accuracy": 0.9861, "validation:loss": 0.0512},
    "input_schema": _INPUT_SCHEMA,
    "training_job": "maas-dev-digits-20250601093000-ba70",
    "description": "image-cnn on the 8x8 digits, 12 epochs",
    "created_at": _UPDATED,
}
_DEPLOYMENT = {
    "id": "d463f8a51a7b6",
    "model": "digits",
    "version": 3,
    "previous_version": 2,
    "kind": "deploy",
    "status": "InProgress",
    "failure_reason": None,
    "endpoint_name": "maas-dev-digits",
    "endpoint_config_name": "maas-dev-digits-d463f8a51a7b6",
    "created_at": _CREATED,
    "updated_at": _CREATED,
}
_THRESHOLD = {"metric": "validation:accuracy", "value": 0.95, "goal": "maximize"}
_JOB = {
    "id": "maas-dev-digits-20250601093000-ba70",
    "model": "digits",
    "recipe": "image-cnn",
    "status": "InProgress",
    "secondary_status": "Training",
    "failure_reason": None,
    "metrics": {"train:loss": 0.0874},
    "metric_threshold": _THRESHOLD,
    "registered_version": None,
    "deployment_id": None,
    "outcome": None,
    "instance_type": "ml.g4dn.xlarge",
    "instance_count": 1,
    "spot": True,
    "created_at": _CREATED,
    "updated_at": _UPDATED,
}
_OIP_INPUT = {"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": DIGIT_FEATURES}
_PREDICTIONS = {"predictions": [{"label": 0, "probabilities": PROBABILITIES}]}

# Request bodies, by their schema.
REQUESTS: dict[str, Any] = {
    "DeploymentCreate": {
        "version": 3,
        "instance_type": "ml.m5.large",
        "instance_count": 1,
        "min_instances": 1,
        "max_instances": 4,
        "canary_percent": 10,
        "canary_wait_seconds": 300,
        "rollback_alarms": [],
        "capture_percent": 20,
    },
    "VersionCreate": {
        "artifact_uri": _ARTIFACT,
        "recipe": "image-cnn",
        "metrics": {"validation:accuracy": 0.9861},
        "input_schema": _INPUT_SCHEMA,
        "description": "image-cnn on the 8x8 digits, 12 epochs",
    },
    "TrainingJobCreate": {
        "model": "digits",
        "recipe": "image-cnn",
        "datasets": {
            "train": "s3://maas-dev-data-111122223333/digits/train/",
            "validation": "s3://maas-dev-data-111122223333/digits/validation/",
        },
        "hyperparameters": {"epochs": 12, "lr": 0.003, "batch-size": 64},
        "spot": True,
        "max_runtime_seconds": 3600,
        "metric_threshold": _THRESHOLD,
        "auto_deploy": True,
        "deployment": {"instance_type": "ml.m5.large", "canary_percent": 10},
    },
    "InferenceRequest": {"id": "req-42", "inputs": [_OIP_INPUT]},
}

# The raw predict route's bodies, by media type: they go to the model as sent.
PREDICT_BODIES: dict[str, Any] = {
    "application/json": {"instances": [DIGIT_IMAGE]},
    "application/x-npy": "(a NumPy .npy file of float32, shape (N, 1, 8, 8))",
    "text/plain": "the service was quick and friendly",
}

# Binary bodies, by media type: an Example Object that describes the bytes.
BINARY: dict[str, str] = {
    "application/x-npy": "a NumPy .npy file (np.save, allow_pickle=False)",
    "application/octet-stream": "the Open Inference Protocol's binary tensor data: a JSON header"
    " of Inference-Header-Content-Length bytes, then each tensor's raw bytes",
}

# Response bodies, by their schema.
RESPONSES: dict[str, Any] = {
    "ModelOut": _MODEL,
    "ArtifactUpload": {
        "artifact_uri": "s3://maas-dev-artifacts-111122223333/uploads/digits/4f1c9a0e/model.tar.gz",
        "upload_url": f"{_UPLOADS}/model.tar.gz{_SIGNED}",
        "signature_uri": (
            "s3://maas-dev-artifacts-111122223333/uploads/digits/4f1c9a0e/signature.json"
        ),
        "signature_upload_url": f"{_UPLOADS}/signature.json{_SIGNED}",
        "expires_in": 900,
    },
    "ModelPage": {"items": [_MODEL], "next_token": None},
    "VersionOut": _VERSION,
    "VersionPage": {"items": [_VERSION], "next_token": "eyJ2ZXJzaW9uIjogMn0"},
    "DeploymentOut": _DEPLOYMENT,
    "TrainingJobOut": _JOB,
    "TrainingJobPage": {"items": [_JOB], "next_token": None},
    "PredictResponse": {
        "model": "digits",
        "version": 3,
        "outputs": _PREDICTIONS,
        "content_type": "application/json",
        "request_id": "5f0e8c3a-6b1d-4e8a-9a52-0f3b7c1d2e4f",
        "custom_attributes": "maas-version=3",
    },
    "InferenceResponse": {
        "model_name": "digits",
        "model_version": "3",
        "id": "req-42",
        "outputs": [
            {"name": "label", "shape": [1], "datatype": "INT64", "data": [0]},
            {"name": "probabilities", "shape": [1, 10], "datatype": "FP32", "data": PROBABILITIES},
        ],
    },
    "ModelMetadata": {
        "name": "digits",
        "versions": ["3"],
        "platform": "pytorch",
        "inputs": _INPUT_SCHEMA["inputs"],
        "outputs": _INPUT_SCHEMA["outputs"],
    },
    "ModelReadiness": {"name": "digits", "ready": True},
    "ServerMetadata": {"name": "maas", "version": "0.1.0", "extensions": ["binary_tensor_data"]},
    "EndpointRemovalOut": {
        "model": "digits",
        "endpoint_name": "maas-dev-digits",
        "status": "Deleting",
        "pending_cleanup": 2,
    },
    "UsageReport": {
        "minute": "2025-06-01T09:41",
        "day": "2025-06-01",
        "clients": [
            {
                "client_id": "7d0xmpl1v5e2b4ngjoaa5nsb4",
                "name": "web",
                "minute": {
                    "prompt_tokens": 120,
                    "completion_tokens": 380,
                    "total_tokens": 500,
                    "requests": 3,
                },
                "day": {
                    "prompt_tokens": 9120,
                    "completion_tokens": 20480,
                    "total_tokens": 29600,
                    "requests": 211,
                },
                "limits": {"tokens_per_minute": 10000, "tokens_per_day": 1000000},
            }
        ],
    },
    "Liveness": {"live": True},
    "Readiness": {"ready": True},
}

# The one response body that is not a component: this document itself, abridged.
DOCUMENT = {
    "openapi": "3.1.0",
    "info": {"title": "maas", "version": "1.0.0"},
    "paths": {"/v1/models": {"get": {"operationId": "listModels"}}},
}

# The one error body (components/schemas/Error), by status.
ERRORS: dict[str, tuple[str, str]] = {
    "400": ("ValidationError", "body.version: Input should be greater than or equal to 1"),
    "401": ("UNAUTHORIZED", "Unauthorized"),
    "403": ("Forbidden", "this route needs one of the scopes: maas/admin"),
    "404": ("NotFound", "model 'digits' not found"),
    "409": ("VersionNotLive", "version 2 is not live: the live version is 3"),
    "413": ("REQUEST_TOO_LARGE", "Request Too Long"),
    "415": ("UnsupportedMediaType", "this route takes application/json"),
    "429": ("THROTTLED", "Too Many Requests"),
    "500": ("InternalError", "internal error"),
    "502": ("ModelError", "the model answered 500: its log names the cause"),
    "503": ("ModelNotReady", "model digits is not ready"),
    "504": ("INTEGRATION_TIMEOUT", "Endpoint request timed out"),
}


def error_example(status: str) -> dict[str, str]:
    code, message = ERRORS[status]
    return {"error": message, "code": code, "request_id": "5f0e8c3a-6b1d-4e8a-9a52-0f3b7c1d2e4f"}
