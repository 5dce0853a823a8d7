"""inference.py's `handle`, TorchServe's batch entry point, run from a packaged model.tar.gz.

In the AWS PyTorch inference container the toolkit calls input_fn/predict_fn/output_fn once per
request even inside a TorchServe batch; a Model whose environment sets
TS_DEFAULT_SERVICE_HANDLER to code/inference.py:handle gets the whole batch in one call instead
(maas_contract.sagemaker.batched_serving_environment). These tests run the packaged handler in a
fresh interpreter, with only the model's code/ on its path, under a context shaped like
TorchServe's, over batches of mixed requests: each request is read with its own content type,
the joinable rows take one predict_fn call, each answer equals the one-at-a-time answer, and a
bad request gets its own status without failing the others.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from maas_training.artifacts import package
from tests.training.support import run_python

HERE = Path(__file__).resolve().parent
VERSION_HEADER = "X-Amzn-SageMaker-Custom-Attributes"

pytestmark = pytest.mark.slow


def npy(arr: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, arr, allow_pickle=False)
    return buffer.getvalue()


def request(payload: bytes, /, **headers: Any) -> dict[str, Any]:
    return {"body": base64.b64encode(payload).decode(), "headers": headers}


def json_body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def oip(x: np.ndarray, datatype: str, request_id: str) -> bytes:
    tensor = {"name": "input", "shape": list(np.shape(x)), "datatype": datatype}
    data = np.asarray(x).ravel().tolist()
    return json_body({"id": request_id, "inputs": [{**tensor, "data": data}]})


def handle_in_fresh_process(model_dir: Path, tmp_path: Path, batches: list[list[dict]]) -> dict:
    extracted = tmp_path / "extracted"
    with tarfile.open(package(model_dir, tmp_path / "model.tar.gz")) as tar:
        tar.extractall(extracted, filter="data")
    job = {"model_dir": str(extracted), "batches": batches}
    env = {**os.environ, "PYTHONPATH": str(extracted / "code"), "MAAS_MODEL_VERSION": "7"}
    # -s: no user site; -P: neither the script's folder nor the cwd goes first on sys.path.
    script = str(HERE / "handle_in_fresh_process.py")
    result = run_python(["-s", "-P", script], input=json.dumps(job), cwd=extracted, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout)
    code = str(extracted / "code")
    assert served["module_file"].startswith(code)  # the tarball's own inference.py
    assert served["package_file"].startswith(code)  # and its own maas_training
    assert served["load_answer"] is None  # TorchServe's load-time call returns nothing
    return served


def assert_same(got: Any, want: Any, where: str = "answer") -> None:
    """Equal documents, floats within fp32 rounding of a batch against one row at a time."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for key in want:
            assert_same(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert math.isclose(got, want, rel_tol=1e-5, abs_tol=1e-6), (where, got, want)
    else:
        assert got == want, where


def assert_answers_as_one_at_a_time(result: dict) -> None:
    for i, (got, alone) in enumerate(zip(result["answers"], result["one_at_a_time"], strict=True)):
        if "error" in alone:
            assert got == {"message": alone["error"]}, i
        else:
            assert_same(got, alone["answer"], f"request {i}")


def test_a_mixed_batch_takes_one_predict_call_and_a_malformed_request_fails_alone(
    trained, digits, tmp_path
):
    x = np.load(digits / "test" / "digits.npz")["x"][:6]  # (6, 1, 8, 8)
    batch = [
        request(
            json_body({"instances": x[0:2].tolist()}),
            **{"Content-Type": "application/json", "Accept": "application/json"},
            **{VERSION_HEADER: "trace=abc"},
            body={"content-type": "application/json"},  # TorchServe adds this entry too
        ),
        request(npy(x[2:3]), **{"content-type": "application/x-npy", "accept": "*/*"}),
        request(oip(x[3:6], "FP32", "req-oip"), **{"Content-Type": "application/json"}),
        request(b'{"instances": [[', **{"Content-Type": "application/json"}),
    ]

    result = handle_in_fresh_process(trained["image-cnn"], tmp_path, [batch])["results"][0]

    assert len(result["answers"]) == len(batch)
    assert result["predict_calls"] == [2 + 1 + 3]  # the three good requests' rows, joined
    assert result["statuses"] == [200, 200, 200, 400]
    assert_answers_as_one_at_a_time(result)
    assert "InvalidInputError" in result["answers"][3]["message"]
    assert result["answers"][2]["id"] == "req-oip" and "outputs" in result["answers"][2]
    assert len(result["answers"][0]["predictions"]) == 2
    headers = result["response_headers"]
    assert [h["content-type"] for h in headers] == ["application/json"] * 4
    assert [h.get(VERSION_HEADER) for h in headers] == [
        "trace=abc,maas-version=7",
        "maas-version=7",
        "maas-version=7",
        None,  # an error answer says nothing about the version
    ]


def test_a_bad_input_in_a_joined_call_is_retried_alone_and_fails_alone(trained, digits, tmp_path):
    x = np.load(digits / "test" / "digits.npz")["x"][:3].copy()
    x[1, 0, 0, 0] = np.nan  # decodes fine; the model refuses it, so the joined call fails
    batch = [request(npy(x[i : i + 1]), **{"Content-Type": "application/x-npy"}) for i in range(3)]

    result = handle_in_fresh_process(trained["image-cnn"], tmp_path, [batch])["results"][0]

    assert result["predict_calls"] == [3, 1, 1, 1]  # together first, then one by one
    assert result["statuses"] == [200, 400, 200]
    assert "finite" in result["answers"][1]["message"]
    assert_answers_as_one_at_a_time(result)


def test_texts_in_every_content_type_join_in_one_call(trained, tmp_path):
    batch = [
        request(json_body({"instances": ["a gorgeous , witty movie .", "dull"]}),
                **{"Content-Type": "application/json"}),
        request(b"the plot is thin\nbut the acting is superb\n",
                **{"Content-Type": "text/plain; charset=utf-8"}),
        request(oip(np.array(["not worth the price of admission"]), "BYTES", "t-1"),
                **{"Content-Type": "application/json"}),
        request(npy(np.array(["a quiet , moving film"])), **{"Content-Type": "application/x-npy"}),
    ]  # fmt: skip

    result = handle_in_fresh_process(trained["text-lstm"], tmp_path, [batch])["results"][0]

    assert result["predict_calls"] == [2 + 2 + 1 + 1]
    assert result["statuses"] == [200] * 4
    assert_answers_as_one_at_a_time(result)


def test_the_handler_the_contract_deploys_with_is_this_function():
    import inference
    from maas_contract.sagemaker import BATCH_HANDLER

    path, function = BATCH_HANDLER.split(":")
    assert Path(path).name == Path(inference.__file__).name == "inference.py"
    assert callable(getattr(inference, function))
