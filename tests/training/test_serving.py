"""Every content type round-trips through an extracted model.tar.gz, and bad input fails clearly."""

from __future__ import annotations

import base64
import io
import json
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from maas_training.artifacts import package
from tests.training.support import run_python

HERE = Path(__file__).resolve().parent
TEXTS = [
    "a gorgeous , witty , seductive movie .",
    "dull",
    "the plot is thin but the acting is superb",
    "not worth the price of admission , nor the time",
]


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def image_requests(x: np.ndarray) -> dict[str, tuple[str, bytes]]:
    oip = {
        "id": "req-1",
        "inputs": [
            {
                "name": "input",
                "shape": list(x.shape),
                "datatype": "FP32",
                "data": x.ravel().tolist(),
            }
        ],
    }
    return {
        "instances": ("application/json", json.dumps({"instances": x.tolist()}).encode()),
        "oip": ("application/json", json.dumps(oip).encode()),
        "npy": ("application/x-npy", npy(x)),
    }


def text_requests(texts: list[str]) -> dict[str, tuple[str, bytes]]:
    oip = {
        "id": "req-1",
        "inputs": [{"name": "text", "shape": [len(texts)], "datatype": "BYTES", "data": texts}],
    }
    return {
        "instances": ("application/json", json.dumps({"instances": texts}).encode()),
        "oip": ("application/json", json.dumps(oip).encode()),
        "npy": ("application/x-npy", npy(np.array(texts))),
        "text": ("text/plain; charset=utf-8", "\n".join(texts).encode()),
    }


def rows(answer: dict) -> list[dict]:
    """Per-instance outputs from either response form."""
    doc = json.loads(answer["body"])
    if "predictions" in doc:
        return doc["predictions"]
    assert doc["id"] == "req-1" and doc["model_name"]
    cols = {}
    for t in doc["outputs"]:
        arr = np.array(t["data"]).reshape(t["shape"])
        assert arr.shape[0] == t["shape"][0]
        cols[t["name"]] = arr.tolist()
    return [{k: v[i] for k, v in cols.items()} for i in range(len(next(iter(cols.values()))))]


def serve_in_fresh_process(extracted: Path, requests: dict[str, tuple[str, bytes]]) -> list:
    """The answers of a fresh interpreter that has only the model's code/ on its path."""
    job = {
        "model_dir": str(extracted),
        "cases": [
            {"content_type": ctype, "body": base64.b64encode(body).decode()}
            for ctype, body in requests.values()
        ],
    }
    env = {**os.environ, "PYTHONPATH": str(extracted / "code")}
    # -s: no user site; -P: neither this script's folder nor the cwd goes first on sys.path.
    script = str(HERE / "serve_in_fresh_process.py")
    result = run_python(["-s", "-P", script], input=json.dumps(job), cwd=extracted, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


@pytest.mark.slow
def test_every_content_type_round_trips_through_model_tar_gz_in_a_fresh_process(
    trained, digits, tmp_path
):
    x = np.load(digits / "test" / "digits.npz")["x"][:4]
    by_recipe: dict[str, list[list[dict]]] = {}
    for recipe, model_dir in trained.items():
        extracted = tmp_path / recipe
        with tarfile.open(package(model_dir, tmp_path / f"{recipe}.tar.gz")) as tar:
            tar.extractall(extracted, filter="data")
        requests = text_requests(TEXTS) if recipe == "text-lstm" else image_requests(x)
        answers = serve_in_fresh_process(extracted, requests)
        for kind, answer in zip(requests, answers, strict=True):
            assert "error" not in answer, (recipe, kind, answer)
            code = str(extracted / "code")
            assert answer["module_file"].startswith(code)  # the tarball's own inference.py
            assert answer["package_file"].startswith(code)  # and its own maas_training
            assert answer["backend"] == "torch"
            by_recipe.setdefault(recipe, []).append(rows(answer))
    for recipe, variants in by_recipe.items():
        first = variants[0]
        assert len(first) == 4
        key = "anomaly_score" if recipe == "autoencoder" else "probabilities"
        for other in variants[1:]:  # every content type gives the same answer
            assert [r.get("label") for r in other] == [r.get("label") for r in first]
            np.testing.assert_allclose(
                [r[key] for r in other], [r[key] for r in first], rtol=1e-6, atol=1e-7
            )
    assert {r["label"] for r in by_recipe["image-cnn"][0]} <= set(range(10))
    assert all(len(r["embedding"]) == 8 for r in by_recipe["autoencoder"][0])


def predict(model_dir, body, content_type="application/json", accept="application/json") -> dict:
    from inference import input_fn, model_fn, output_fn, predict_fn

    return json.loads(
        output_fn(predict_fn(input_fn(body, content_type), model_fn(str(model_dir))), accept)
    )


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["image-cnn", "text-lstm", "autoencoder"])
def test_a_batch_answers_as_its_instances_do_one_at_a_time(recipe, trained, digits):
    if recipe == "text-lstm":
        items = TEXTS * 3  # different lengths land in different buckets and paddings
    else:
        items = np.load(digits / "test" / "digits.npz")["x"][:12].tolist()
    batch = predict(trained[recipe], json.dumps({"instances": items}))["predictions"]
    single = [
        predict(trained[recipe], json.dumps({"instances": [i]}))["predictions"][0] for i in items
    ]
    key = "anomaly_score" if recipe == "autoencoder" else "probabilities"
    np.testing.assert_allclose(
        [b[key] for b in batch], [s[key] for s in single], rtol=1e-5, atol=1e-6
    )
    if recipe != "autoencoder":
        assert [b["label"] for b in batch] == [s["label"] for s in single]
    else:
        np.testing.assert_allclose(
            [b["embedding"] for b in batch], [s["embedding"] for s in single], rtol=1e-5, atol=1e-6
        )
