"""Request bodies in, response bodies out: JSON instances, Open Inference Protocol v2, .npy, text.

Every bad input raises a ValueError subclass whose message says what was expected.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_INSTANCES = 1024
MAX_TEXT_CHARS = 20_000
OIP_NUMERIC = {
    "FP16",
    "FP32",
    "FP64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
}
JSON_TYPES = ("", "*/*", "application/*", "application/json")
NPY_TYPE = "application/x-npy"


class InvalidInputError(ValueError):
    """The request body does not hold what this model takes."""


class UnsupportedContentTypeError(ValueError):
    """The request's content type, or the response's accept type, is not one this model speaks."""


@dataclass
class Request:
    values: np.ndarray | list[str]  # numbers (N, ...) or N texts
    protocol: str  # instances | oip | npy | text
    oip_id: str | None = None


@dataclass
class Prediction:
    protocol: str
    model_name: str
    outputs: dict[str, Any]  # label + probabilities, or anomaly_score + embedding
    oip_id: str | None = None


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _text(body: bytes | str) -> str:
    if isinstance(body, str):
        return body
    try:
        return bytes(body).decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"the body must be UTF-8 text: {e}") from None


def decode(body: bytes | str, content_type: str | None) -> Request:
    mt = media_type(content_type)
    if not body:
        raise InvalidInputError("the request body is empty; expected at least one instance")
    if mt == "application/json":
        return _decode_json(_text(body))
    if mt == "application/x-npy":
        return _decode_npy(body.encode() if isinstance(body, str) else bytes(body))
    if mt == "text/plain":
        lines = [line for line in _text(body).splitlines() if line.strip()]
        if not lines:
            raise InvalidInputError(
                "text/plain body has no non-blank lines; expected one text per line"
            )
        return Request(lines, "text")
    raise UnsupportedContentTypeError(
        f"content type {content_type!r} is not supported; use application/json "
        '({"instances": [...]} or an Open Inference Protocol v2 {"inputs": [...]}), '
        "application/x-npy, or text/plain (text models, one input per line)"
    )


def _numbers(values: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(values)
        if arr.dtype.kind not in "iuf":
            raise TypeError(arr.dtype)
        return arr.astype(np.float32)
    except (ValueError, TypeError):
        raise InvalidInputError(f"{what} must be numbers nested to one common shape") from None


def _decode_json(text: str) -> Request:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"the body is not valid JSON: {e}") from None
    except RecursionError:
        raise InvalidInputError(
            "the JSON body is nested too deeply; expected instances of the model's input shape"
        ) from None
    if isinstance(doc, dict) and "inputs" in doc:
        return _decode_oip(doc)
    if not isinstance(doc, dict) or not isinstance(doc.get("instances"), list):
        raise InvalidInputError(
            'expected a JSON object {"instances": [...]} or an OIP v2 {"inputs": [...]}'
        )
    instances = doc["instances"]
    if not instances:
        raise InvalidInputError('"instances" is empty; expected at least one instance')
    if all(isinstance(i, str) for i in instances):
        return Request(list(instances), "instances")
    if any(isinstance(i, str) for i in instances):
        raise InvalidInputError('"instances" mixes texts and numbers; expected one kind')
    return Request(_numbers(instances, '"instances"'), "instances")


def _decode_oip(doc: dict) -> Request:
    inputs = doc["inputs"]
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise InvalidInputError('OIP v2: "inputs" must be a list holding exactly one tensor object')
    t = inputs[0]
    missing = [k for k in ("name", "shape", "datatype", "data") if k not in t]
    if missing:
        raise InvalidInputError(f"OIP v2: the input tensor lacks {', '.join(missing)}")
    shape, dtype, data = t["shape"], t["datatype"], t["data"]
    if not (
        isinstance(shape, list) and shape and all(isinstance(d, int) and d >= 0 for d in shape)
    ):
        raise InvalidInputError(
            f"OIP v2: shape must be a non-empty list of non-negative ints, got {shape!r}"
        )
    if not isinstance(data, list):
        raise InvalidInputError("OIP v2: data must be a list")
    oip_id = doc.get("id") if isinstance(doc.get("id"), str) else None
    if dtype == "BYTES":
        flat = np.asarray(data, dtype=object).ravel().tolist()
        if not all(isinstance(s, str) for s in flat):
            raise InvalidInputError("OIP v2: BYTES data must be strings")
        if len(flat) != math.prod(shape) or math.prod(shape[1:]) != 1:
            raise InvalidInputError(
                f"OIP v2: BYTES shape must be [N] or [N, 1] for {len(flat)} strings, got {shape}"
            )
        return Request(flat, "oip", oip_id)
    if dtype not in OIP_NUMERIC:
        raise InvalidInputError(
            f"OIP v2: datatype {dtype!r} is not supported; use a number type (FP32) or BYTES"
        )
    arr = _numbers(data, "OIP v2 data").ravel()
    if arr.size != math.prod(shape):
        raise InvalidInputError(
            f"OIP v2: shape {shape} needs {math.prod(shape)} values, data has {arr.size}"
        )
    return Request(arr.reshape(shape), "oip", oip_id)


def _decode_npy(body: bytes) -> Request:
    try:
        arr = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise InvalidInputError(
            f"the body is not a .npy array (numpy.save output, no pickles): {e}"
        ) from None
    if not isinstance(arr, np.ndarray):
        raise InvalidInputError("application/x-npy takes one array (.npy), not an .npz archive")
    if arr.dtype.kind in "US":
        texts = [s.decode() if isinstance(s, bytes) else str(s) for s in arr.ravel()]
        return Request(texts, "npy")
    if arr.dtype.kind not in "iuf":
        raise InvalidInputError(
            f"npy dtype {arr.dtype} is not supported; expected float, int or unicode text"
        )
    return Request(arr.astype(np.float32), "npy")


def images(values: np.ndarray | list[str], shape: list[int]) -> np.ndarray:
    """Checks a batch against the model's (C, H, W); flat rows of C*H*W values are accepted too."""
    want = f"(N, {', '.join(map(str, shape))})"
    if isinstance(values, list):
        raise InvalidInputError(f"this model takes numbers shaped {want}, not text")
    arr = values
    if arr.ndim == 2 and arr.shape[1] == math.prod(shape):
        arr = arr.reshape(-1, *shape)
    if arr.ndim != len(shape) + 1 or list(arr.shape[1:]) != list(shape):
        raise InvalidInputError(
            f"expected a batch shaped {want} or (N, {math.prod(shape)}), got {tuple(values.shape)}"
        )
    _check_count(len(arr))
    if not np.isfinite(arr).all():
        raise InvalidInputError("inputs must be finite numbers; found NaN or Inf")
    return np.ascontiguousarray(arr, dtype=np.float32)


def texts(values: np.ndarray | list[str]) -> list[str]:
    if not isinstance(values, list):
        raise InvalidInputError("this model takes texts (strings), not numbers")
    _check_count(len(values))
    for i, t in enumerate(values):
        if not t.strip():
            raise InvalidInputError(f"text {i} is blank; expected non-empty text")
        if len(t) > MAX_TEXT_CHARS:
            raise InvalidInputError(
                f"text {i} has {len(t)} characters; at most {MAX_TEXT_CHARS} are accepted"
            )
    return values


def _check_count(n: int) -> None:
    if n == 0:
        raise InvalidInputError("the batch is empty; expected at least one instance")
    if n > MAX_INSTANCES:
        raise InvalidInputError(
            f"the batch has {n} instances; at most {MAX_INSTANCES} are accepted"
        )


def _oip_tensor(name: str, arr: np.ndarray | list) -> dict:
    a = np.asarray(arr)
    dtype = "BYTES" if a.dtype.kind in "UO" else "INT64" if a.dtype.kind in "iu" else "FP32"
    return {"name": name, "shape": list(a.shape), "datatype": dtype, "data": a.ravel().tolist()}


def encode_npy(pred: Prediction) -> bytes:
    """The answer as one .npy record array: a field per output, a row per instance, loadable
    with np.load(allow_pickle=False)."""
    columns = {k: np.asarray(v) for k, v in pred.outputs.items()}
    rows = len(next(iter(columns.values())))
    table = np.zeros(rows, dtype=[(k, c.dtype, c.shape[1:]) for k, c in columns.items()])
    for k, c in columns.items():
        table[k] = c
    buffer = io.BytesIO()
    np.save(buffer, table, allow_pickle=False)
    return buffer.getvalue()


def encode(pred: Prediction, accept: str | None) -> str:
    """The JSON response body; an OIP v2 request gets an OIP v2 response."""
    if media_type(accept) not in JSON_TYPES:
        raise UnsupportedContentTypeError(
            f"accept type {accept!r} is not supported; this model answers application/json"
            f" or {NPY_TYPE}"
        )
    if pred.protocol == "oip":
        doc: dict[str, Any] = {
            "model_name": pred.model_name,
            "outputs": [_oip_tensor(k, v) for k, v in pred.outputs.items()],
        }
        if pred.oip_id is not None:
            doc["id"] = pred.oip_id
        return json.dumps(doc)
    columns = {k: np.asarray(v).tolist() for k, v in pred.outputs.items()}
    n = len(next(iter(columns.values())))
    return json.dumps(
        {"predictions": [{k: col[i] for k, col in columns.items()} for i in range(n)]}
    )
