"""Hostile and malformed requests, each with the 4xx it must get and words its message must use.

`{model}` in a path is the trained digits model. Bodies are bytes, sent as they are.
(Named uniquely: the tests import it as a top-level module.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass

SIX_MIB_PLUS_ONE = 6_291_457  # one byte over SageMaker's (and so the API's) payload limit
JSON = "application/json"
PREDICT = "/v1/models/{model}/predict"
INFER = "/v2/models/{model}/infer"
VERSIONS = "/v1/models/{model}/versions"
DEPLOY = "/v1/models/{model}/deployments"
TRAIN = "/v1/training-jobs"
ROLLBACK = "/v1/models/{model}/rollback"
ARTIFACTS = "s3://maas-local-artifacts"
DATA = "s3://maas-local-data/digits/train/"


@dataclass(frozen=True)
class BadInput:
    name: str
    method: str
    path: str
    body: bytes
    status: int
    mentions: tuple[str, ...]  # lower-case words the error message must contain
    content_type: str = JSON
    idempotency_key: bool = True  # False: sent without one


def _j(value: object) -> bytes:
    return json.dumps(value).encode()


def _row(*values: object) -> list:
    return [*values, *[0.0] * (64 - len(values))]


def _oip(**tensor: object) -> bytes:
    base = {"name": "image", "datatype": "FP32", "shape": [1, 64], "data": [0.0] * 64}
    return _j({"inputs": [{**base, **tensor}]})


def _training(**fields: object) -> bytes:
    spec = {"model": "corpus", "recipe": "image-cnn", "datasets": {"train": DATA}}
    return _j({**spec, **fields})


def _version(**fields: object) -> bytes:
    spec = {"artifact_uri": "s3://maas-local-artifacts/x/model.tar.gz", "recipe": "image-cnn"}
    return _j({**spec, **fields})


def _deep(depth: int) -> bytes:
    return b'{"instances": ' + b"[" * depth + b"]" * depth + b"}"


def _padded_json(size: int) -> bytes:
    head, tail = b'{"instances": [[0]], "pad": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


CORPUS: list[BadInput] = [
    # Malformed JSON
    BadInput("predict: truncated JSON", "POST", PREDICT, b'{"instances": [[0, 1,', 400, ("json",)),
    BadInput("infer: truncated JSON", "POST", INFER, b'{"inputs": [', 400, ("json",)),
    BadInput("training: truncated JSON", "POST", TRAIN, b'{"model": "x"', 400, ("json",)),
    BadInput("versions: not JSON at all", "POST", VERSIONS, b"artifact=s3://x", 400, ("json",)),
    BadInput("predict: JSON but no instances", "POST", PREDICT, _j({"rows": [1]}), 400,
             ("instances",)),
    # Wrong types
    BadInput("training: model is a number", "POST", TRAIN, _training(model=5), 400, ("model",)),
    BadInput("training: hyperparameters a list", "POST", TRAIN, _training(hyperparameters=[1]),
             400, ("hyperparameters",)),
    # A job's paths and script-mode keys are the platform's (issue 12, section 4)
    BadInput("training: hyperparameter overrides the model dir", "POST", TRAIN,
             _training(hyperparameters={"model-dir": "/tmp/elsewhere"}), 400, ("model-dir",)),
    BadInput("training: hyperparameter points train at a host folder", "POST", TRAIN,
             _training(hyperparameters={"train": "/etc"}), 400, ("train", "platform")),
    BadInput("training: reserved sagemaker_ hyperparameter", "POST", TRAIN,
             _training(hyperparameters={"sagemaker_program": "evil.py"}), 400,
             ("sagemaker_program",)),
    BadInput("training: hyperparameter value over 2,500 characters", "POST", TRAIN,
             _training(hyperparameters={"anomaly-class": "x" * 2501}), 400, ("2500",)),
    BadInput("versions: version is text", "POST", VERSIONS, _version(version="three"), 400,
             ("version",)),
    BadInput("deploy: version is a list", "POST", DEPLOY,
             _j({"version": [1], "rollback_alarms": ["a"]}), 400, ("version",)),
    BadInput("predict: instances of text", "POST", PREDICT, _j({"instances": [["a"] * 64]}), 400,
             ("numbers",)),
    # NaN and Infinity
    BadInput("predict: NaN", "POST", PREDICT, b'{"instances": [[NaN' + b", 0" * 63 + b"]]}", 400,
             ("nan",)),
    BadInput("predict: Infinity", "POST", PREDICT,
             b'{"instances": [[Infinity' + b", 0" * 63 + b"]]}", 400, ("inf",)),
    BadInput("infer: NaN in data", "POST", INFER,
             b'{"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 64], "data": [NaN'
             + b", 0" * 63 + b"]}]}", 400, ("nan",)),
    BadInput("versions: NaN metric", "POST", VERSIONS,
             b'{"artifact_uri": "s3://maas-local-artifacts/x/model.tar.gz", "recipe": "image-cnn",'
             b' "metrics": {"validation:accuracy": NaN}}', 400, ("metrics",)),
    BadInput("training: Infinity threshold", "POST", TRAIN,
             _training()[:-1] + b', "metric_threshold": {"metric": "validation:accuracy",'
             b' "value": Infinity}}', 400, ("value",)),
    # Wrong tensor shapes and datatypes
    BadInput("predict: 63 features", "POST", PREDICT, _j({"instances": [[0.0] * 63]}), 400,
             ("shape",)),
    BadInput("predict: ragged rows", "POST", PREDICT, _j({"instances": [_row(), [0.0]]}), 400,
             ("shape",)),
    BadInput("infer: unknown datatype", "POST", INFER, _oip(datatype="FP128"), 400, ("datatype",)),
    BadInput("infer: BYTES to an image model", "POST", INFER,
             _oip(datatype="BYTES", data=["x"] * 64), 400, ("bytes",)),
    BadInput("infer: shape says 128, data has 64", "POST", INFER, _oip(shape=[2, 64]), 400,
             ("shape",)),
    BadInput("infer: negative dimension", "POST", INFER, _oip(shape=[-1, 64]), 400, ("shape",)),
    # Huge arrays, deep nesting
    BadInput("infer: shape of 10^12 rows", "POST", INFER, _oip(shape=[10**12, 64]), 400,
             ("shape",)),
    BadInput("predict: one row of a million numbers", "POST", PREDICT,
             b'{"instances": [[' + b"0," * 999_999 + b"0]]}", 400, ("shape",)),
    BadInput("predict: nested 100,000 deep", "POST", PREDICT, _deep(100_000), 400, ("nest",)),
    BadInput("training: nested 100,000 deep", "POST", TRAIN,
             b'{"model": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, ("json",)),
    # Unicode and control characters
    BadInput("training: unicode model name", "POST", TRAIN, _training(model="mödel-ü"), 400,
             ("model",)),
    BadInput("training: control characters in the model name", "POST", TRAIN,
             _training(model="a\x00\x07b"), 400, ("model",)),
    BadInput("versions: right-to-left override in a metric name", "POST", VERSIONS,
             _version(metrics={"acc\u202euracy": 1.0}), 400, ("metrics",)),
    BadInput("predict: invalid UTF-8", "POST", PREDICT, b'{"instances": "\xff\xfe"}', 400,
             ("utf-8",)),
    BadInput("training: invalid UTF-8", "POST", TRAIN, b'{"model": "\xff"}', 400, ("utf-8",)),
    # Empty bodies
    BadInput("predict: empty body", "POST", PREDICT, b"", 400, ("empty",)),
    BadInput("infer: empty body", "POST", INFER, b"", 400, ("body",)),
    BadInput("training: empty body", "POST", TRAIN, b"", 400, ("body",)),
    BadInput("versions: empty object", "POST", VERSIONS, b"{}", 400, ("artifact_uri",)),
    # Past Lambda's 6 MB event once base64-encoded (every media type is binary, for Triton's
    # binary tensors): API Gateway answers its own 413 before the function runs.
    BadInput("predict: 6,291,457 bytes", "POST", PREDICT, _padded_json(SIX_MIB_PLUS_ONE), 413,
             ("too long",)),
    BadInput("training: 6,291,457 bytes", "POST", TRAIN, _padded_json(SIX_MIB_PLUS_ONE), 413,
             ("too long",)),
    BadInput("predict: 4,800,000 bytes (6.4 MB in base64)", "POST", PREDICT,
             _padded_json(4_800_000), 413, ("too long",)),
    # Path parameters with ../ and unicode
    BadInput("versions: ../ in the model", "POST", "/v1/models/..%2F..%2Fetc/versions",
             _version(), 400, ("model",)),
    BadInput("deploy: ../ in the model", "POST", "/v1/models/%2E%2E%2Fdigits/deployments",
             _j({"version": 1, "rollback_alarms": ["a"]}), 400, ("model",)),
    BadInput("predict: unicode model", "POST", "/v1/models/d%C3%AFgits/predict",
             _j({"instances": [_row()]}), 400, ("model",)),
    BadInput("infer: version is ../", "POST", "/v2/models/{model}/versions/..%2F1/infer",
             _oip(), 400, ("version",)),
    BadInput("training job id with ../", "DELETE", "/v1/training-jobs/..%2F..%2Fjobs", b"", 400,
             ("job_id",)),
    BadInput("deployment id with unicode", "GET", "/v1/models/{model}/deployments/d%E2%80%AE1",
             b"", 400, ("deployment_id",)),
    # Media types are case-insensitive: upper-case JSON is JSON (so this is the metric's 400),
    # and a body that is not JSON is a 415, never Powertools' 500.
    BadInput("versions: Content-Type text/plain", "POST", VERSIONS, _version(), 415,
             ("application/json",), content_type="text/plain"),
    BadInput("training: Content-Type text/plain", "POST", TRAIN, _training(), 415,
             ("application/json",), content_type="text/plain"),
    BadInput("versions: APPLICATION/JSON is JSON", "POST", VERSIONS,
             _version(metrics={"accuracy": 1e200}), 400, ("metrics",),
             content_type="APPLICATION/JSON"),
    # Numbers the registry (DynamoDB: 38 digits, 1e-130..1e125) cannot hold:
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html
    BadInput("versions: metric of 1e200", "POST", VERSIONS, _version(metrics={"a": 1e200}), 400,
             ("metrics", "1e125")),
    BadInput("versions: metric of 1e-200", "POST", VERSIONS, _version(metrics={"a": 1e-200}),
             400, ("metrics", "1e-130")),
    BadInput("training: threshold of 1e200", "POST", TRAIN,
             _training(metric_threshold={"metric": "validation:accuracy", "value": 1e200}), 400,
             ("value",)),
    BadInput("versions: input_schema shape of 41 digits", "POST", VERSIONS,
             _version(input_schema={"inputs": [{"name": "x", "datatype": "FP32",
                                                "shape": [10**40]}]}), 400, ("shape",)),
    BadInput("training: hyperparameter of 41 digits", "POST", TRAIN,
             _training(hyperparameters={"epochs": 10**40}), 400, ("hyperparameters",)),
    BadInput("deploy: version of 41 digits", "POST", DEPLOY,
             _j({"version": 10**40, "rollback_alarms": ["a"]}), 400, ("version",)),
    # A retried rollback must replay, so the key is required.
    BadInput("rollback: no Idempotency-Key", "POST", ROLLBACK, b"", 400, ("idempotency-key",),
             idempotency_key=False),
    # Artifacts: one that is not there, and training code offered as a model.
    BadInput("versions: artifact that does not exist", "POST", VERSIONS,
             _version(artifact_uri=f"{ARTIFACTS}/nowhere/model.tar.gz"), 404,
             ("does not exist",)),
    BadInput("versions: training code as the model", "POST", VERSIONS,
             _version(artifact_uri=f"{ARTIFACTS}/code/sourcedir.tar.gz"), 400,
             ("training code",)),
]  # fmt: skip
