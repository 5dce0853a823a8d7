"""Triton's binary tensor data extension to the Open Inference Protocol: a request or response
body is the JSON, then each binary tensor's raw bytes in tensor order, and the
`Inference-Header-Content-Length` header gives the JSON's length. A tensor sent that way has
`parameters.binary_data_size` instead of `data`. Numbers are little-endian, row-major; each
BYTES element is a 4-byte little-endian length, then its bytes.
https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from pydantic import ValidationError

from handlers.predict.schemas import InferenceRequest, InferenceResponse, InferTensor
from handlers.shared.errors import ApiError

HEADER = "Inference-Header-Content-Length"
EXTENSION = "binary_tensor_data"
SIZE = "binary_data_size"
# Each datatype's little-endian `struct` code. The Lambda runtime has the standard library,
# boto3 and the Powertools layer, and no numpy (tests/contract/test_lambda_imports.py).
STRUCT_CODES = {
    "BOOL": "?",
    "INT8": "b",
    "INT16": "h",
    "INT32": "i",
    "INT64": "q",
    "UINT8": "B",
    "UINT16": "H",
    "UINT32": "I",
    "UINT64": "Q",
    "FP16": "e",
    "FP32": "f",
    "FP64": "d",
}


def _invalid(message: str) -> ApiError:
    return ApiError(400, "ValidationError", message)


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    )


def _not_a_json_number(constant: str) -> float:
    # Python's json reads NaN and Infinity; JSON (RFC 8259) has no such numbers.
    raise ValueError(f"{constant} is not a JSON number; inputs must be finite (no NaN or inf)")


def read_request(body: bytes, header_length: str | None) -> InferenceRequest:
    """The request, every tensor's values in `data`, whether it came as JSON or binary."""
    if header_length is None:
        head, tail = body, b""
    else:
        if not header_length.strip().isdigit() or int(header_length) > len(body):
            raise _invalid(f"{HEADER} must be the JSON's length, at most the body's {len(body)}")
        head, tail = body[: int(header_length)], body[int(header_length) :]
    try:
        document = json.loads(head, parse_constant=_not_a_json_number)
    except RecursionError:
        raise _invalid("the JSON body is nested too deeply") from None
    except ValueError as exc:
        raise _invalid(f"the body is not JSON: {exc}") from None
    try:
        request = InferenceRequest.model_validate(document)
    except ValidationError as exc:
        raise _invalid(_validation_message(exc)) from None
    offset = 0
    for tensor in request.inputs:
        offset = _fill(tensor, tail, offset)
    if offset != len(tail):
        raise _invalid(f"{len(tail) - offset} bytes after the JSON belong to no input")
    return request


def _fill(tensor: InferTensor, tail: bytes, offset: int) -> int:
    params = dict(tensor.parameters or {})
    size = params.pop(SIZE, None)
    if size is None:
        if tensor.data is None:
            raise _invalid(f"input {tensor.name} has neither data nor parameters.{SIZE}")
        return offset
    if tensor.data is not None:
        raise _invalid(f"input {tensor.name} has both data and parameters.{SIZE}")
    if not isinstance(size, int) or size < 0 or offset + size > len(tail):
        raise _invalid(f"input {tensor.name}: {SIZE} {size!r} passes the end of the body")
    tensor.data = _values(tensor, tail[offset : offset + size])
    tensor.parameters = params or None
    return offset + size


def _values(tensor: InferTensor, raw: bytes) -> list[Any]:
    count = math.prod(tensor.shape)
    if tensor.datatype == "BYTES":
        values = _read_bytes_elements(raw, tensor.name)
    else:
        code = STRUCT_CODES[tensor.datatype]
        itemsize = struct.calcsize("<" + code)
        if len(raw) != count * itemsize:
            raise _invalid(
                f"input {tensor.name}: shape {tensor.shape} of {tensor.datatype} needs"
                f" {count * itemsize} bytes, got {len(raw)}"
            )
        values = list(struct.unpack(f"<{count}{code}", raw))
    if len(values) != count:
        raise _invalid(f"input {tensor.name}: shape {tensor.shape} needs {count} elements")
    return values


def _read_bytes_elements(raw: bytes, name: str) -> list[str]:
    values, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise _invalid(f"input {name}: a BYTES element's length is cut short")
        (length,) = struct.unpack_from("<I", raw, offset)
        element = raw[offset + 4 : offset + 4 + length]
        if len(element) != length:
            raise _invalid(f"input {name}: a BYTES element is cut short")
        try:
            values.append(element.decode("utf-8"))
        except UnicodeDecodeError:
            raise _invalid(f"input {name}: BYTES elements must be UTF-8 text") from None
        offset += 4 + length
    return values


def wants_binary(request: InferenceRequest, output: str) -> bool:
    """An output goes binary when its request asks so, or the request asks it of all outputs
    (`parameters.binary_data_output`) and the output does not say otherwise."""
    for requested in request.outputs or []:
        if requested.name == output and "binary_data" in (requested.parameters or {}):
            return bool((requested.parameters or {})["binary_data"])
    return bool((request.parameters or {}).get("binary_data_output", False))


def write_response(response: InferenceResponse, binary: set[str]) -> tuple[bytes, int]:
    """The body, and the length of its JSON, with the outputs named in `binary` as bytes."""
    tails = []
    for tensor in response.outputs:
        if tensor.name in binary and tensor.data is not None:
            raw = _raw(tensor)
            tensor.parameters = {**(tensor.parameters or {}), SIZE: len(raw)}
            tensor.data = None
            tails.append(raw)
    head = response.model_dump_json(exclude_none=True).encode()
    return head + b"".join(tails), len(head)


def _flat(values: Any) -> list[Any]:
    """Nested lists, row-major, as one list."""
    if not isinstance(values, list):
        return [values]
    return [leaf for value in values for leaf in _flat(value)]


def _raw(tensor: InferTensor) -> bytes:
    flat = _flat(tensor.data)
    if tensor.datatype == "BYTES":
        encoded = [str(v).encode() for v in flat]
        return b"".join(struct.pack("<I", len(e)) + e for e in encoded)
    code = STRUCT_CODES[tensor.datatype]
    try:
        return struct.pack(f"<{len(flat)}{code}", *flat)
    except (struct.error, TypeError) as exc:
        raise ApiError(
            500, "InternalError", f"output {tensor.name} does not fit {tensor.datatype}: {exc}"
        ) from None
