"""Bad requests raise ValueError subclasses whose messages say what was expected."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from maas_training.protocol import InvalidInputError, UnsupportedContentTypeError

GOOD_IMAGE = np.zeros((1, 8, 8)).tolist()


def npy(arr: np.ndarray, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def oip(shape, datatype, data, **extra) -> str:
    return json.dumps(
        {"inputs": [{"name": "input", "shape": shape, "datatype": datatype, "data": data, **extra}]}
    )


def serve(model_dir, body, content_type):
    from inference import input_fn, model_fn, output_fn, predict_fn

    return output_fn(
        predict_fn(input_fn(body, content_type), model_fn(str(model_dir))), "application/json"
    )


IMAGE_CASES = [
    (
        "wrong shape",
        json.dumps({"instances": [[1.0, 2.0, 3.0]]}),
        "application/json",
        r"\(N, 1, 8, 8\)",
    ),
    (
        "flat rows of wrong size",
        json.dumps({"instances": [[0.0] * 63]}),
        "application/json",
        r"\(N, 64\)",
    ),
    (
        "ragged instances",
        json.dumps({"instances": [GOOD_IMAGE, [[0.0]]]}),
        "application/json",
        "common shape",
    ),
    (
        "text for an image model",
        json.dumps({"instances": ["a cat"]}),
        "application/json",
        "not text",
    ),
    ("plain text for an image model", "a cat", "text/plain", "not text"),
    (
        "NaN in JSON",
        json.dumps({"instances": [np.full((1, 8, 8), np.nan).tolist()]}),
        "application/json",
        "NaN or Inf",
    ),
    (
        "Inf in npy",
        npy(np.full((2, 1, 8, 8), np.inf, dtype=np.float32)),
        "application/x-npy",
        "NaN or Inf",
    ),
    (
        "npy without batch axis",
        npy(np.zeros((1, 8, 8), dtype=np.float32)),
        "application/x-npy",
        r"got \(1, 8, 8\)",
    ),
    ("npy of booleans", npy(np.zeros((1, 1, 8, 8), dtype=bool)), "application/x-npy", "dtype bool"),
    (
        "pickled npy",
        npy(np.array([{"a": 1}], dtype=object), allow_pickle=True),
        "application/x-npy",
        "no pickles",
    ),
    ("not npy at all", b"\x00garbage", "application/x-npy", "not a .npy"),
    ("empty body", b"", "application/json", "empty"),
    ("empty instances", json.dumps({"instances": []}), "application/json", "at least one"),
    ("invalid JSON", "{instances: ", "application/json", "not valid JSON"),
    ("JSON without instances", json.dumps({"data": [1]}), "application/json", '"instances"'),
    (
        "too many instances",
        json.dumps({"instances": [GOOD_IMAGE] * 1025}),
        "application/json",
        "at most 1024",
    ),
    (
        "OIP shape not matching data",
        oip([2, 1, 8, 8], "FP32", [0.0] * 64),
        "application/json",
        "needs 128 values",
    ),
    (
        "OIP unknown datatype",
        oip([1, 1, 8, 8], "BOOL", [True] * 64),
        "application/json",
        "datatype 'BOOL'",
    ),
    (
        "OIP tensor without shape",
        json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "data": [1]}]}),
        "application/json",
        "lacks shape",
    ),
    (
        "OIP negative shape",
        oip([-1, 64], "FP32", [0.0] * 64),
        "application/json",
        "non-negative ints",
    ),
    ("OIP two tensors", json.dumps({"inputs": [{}, {}]}), "application/json", "exactly one tensor"),
    ("OIP string data as FP32", oip([1, 1], "FP32", ["x"]), "application/json", "numbers"),
    ("non-UTF-8 text", b"\xff\xfe", "application/json", "UTF-8"),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,body,content_type,expected", IMAGE_CASES, ids=[c[0] for c in IMAGE_CASES]
)
def test_bad_image_request_raises_an_error_saying_what_was_expected(
    trained, name, body, content_type, expected
):
    with pytest.raises(InvalidInputError, match=expected):
        serve(trained["image-cnn"], body, content_type)


TEXT_CASES = [
    (
        "numbers for a text model",
        json.dumps({"instances": [[1.0, 2.0]]}),
        "application/json",
        "texts",
    ),
    (
        "blank text",
        json.dumps({"instances": ["fine", "   "]}),
        "application/json",
        "text 1 is blank",
    ),
    ("mixed texts and numbers", json.dumps({"instances": ["ok", 3]}), "application/json", "mixes"),
    ("only blank lines", "\n \n", "text/plain", "no non-blank lines"),
    ("OIP BYTES shape mismatch", oip([3], "BYTES", ["a", "b"]), "application/json", "BYTES shape"),
    ("huge text", json.dumps({"instances": ["word " * 5000]}), "application/json", "at most 20000"),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,body,content_type,expected", TEXT_CASES, ids=[c[0] for c in TEXT_CASES]
)
def test_bad_text_request_raises_an_error_saying_what_was_expected(
    trained, name, body, content_type, expected
):
    with pytest.raises(InvalidInputError, match=expected):
        serve(trained["text-lstm"], body, content_type)


@pytest.mark.parametrize("content_type", ["image/png", "text/csv", None, "application/xml"])
def test_unsupported_content_type_is_refused_naming_the_supported_ones(content_type):
    from inference import input_fn

    with pytest.raises(
        UnsupportedContentTypeError, match="application/json.*application/x-npy.*text/plain"
    ):
        input_fn(b"{}", content_type)


@pytest.mark.slow
def test_unsupported_accept_type_is_refused(trained):
    from inference import input_fn, model_fn, output_fn, predict_fn

    pred = predict_fn(
        input_fn(json.dumps({"instances": [GOOD_IMAGE]}), "application/json"),
        model_fn(str(trained["image-cnn"])),
    )
    assert json.loads(output_fn(pred, "*/*"))["predictions"]
    with pytest.raises(UnsupportedContentTypeError, match="answers application/json"):
        output_fn(pred, "text/csv")


def test_input_errors_are_value_errors_so_servers_map_them_to_4xx():
    assert issubclass(InvalidInputError, ValueError) and issubclass(
        UnsupportedContentTypeError, ValueError
    )


def test_json_nested_too_deeply_is_an_input_error_not_a_crash():
    from inference import input_fn

    body = '{"instances": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(InvalidInputError, match="nested too deeply"):
        input_fn(body, "application/json")
