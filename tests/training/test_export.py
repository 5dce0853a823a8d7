"""ONNX export matches PyTorch, int8 export works, packages carry ONNX, serving picks a backend."""

from __future__ import annotations

import json
import re
import shutil
import tarfile

import numpy as np
import pytest

# Stated tolerance: ONNX fp32 logits and scores agree with PyTorch's to within 1e-4 (absolute).
ONNX_TOLERANCE = 1e-4
RECIPES = ["image-cnn", "text-lstm", "autoencoder"]


@pytest.fixture(scope="module")
def onnx_dirs(trained, tmp_path_factory) -> dict:
    """Copies of the tiny models, so exporting next to them leaves the originals ONNX-free."""

    out = {}
    for recipe, src in trained.items():
        dst = tmp_path_factory.mktemp(f"onnx-{recipe}") / "model"
        shutil.copytree(src, dst)
        out[recipe] = dst
    return out


def channel_for(recipe: str, digits, sst2):
    return sst2 / "validation" if recipe == "text-lstm" else digits / "test"


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
def test_onnx_export_passes_its_parity_check(recipe, onnx_dirs, capsys):
    import export

    rc = export.main(["onnx", "--model-dir", str(onnx_dirs[recipe])])
    line = capsys.readouterr().out
    assert rc == 0
    assert float(re.search(r"max_abs_diff=(\S+)", line).group(1)) <= ONNX_TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
def test_onnx_backend_answers_like_pytorch_on_real_data(
    recipe, onnx_dirs, digits, sst2, monkeypatch
):
    import export
    from inference import model_fn
    from maas_training.evaluate import model_outputs

    model_dir = onnx_dirs[recipe]
    if not (model_dir / "model.onnx").exists():
        export.export_onnx(model_dir)
    monkeypatch.setenv("MAAS_INFERENCE_BACKEND", "onnx")
    onnx_model = model_fn(str(model_dir))
    monkeypatch.setenv("MAAS_INFERENCE_BACKEND", "torch")
    torch_model = model_fn(str(model_dir))
    assert (onnx_model.backend.name, torch_model.backend.name) == ("onnx:model.onnx", "torch")
    got, _ = model_outputs(onnx_model, channel_for(recipe, digits, sst2))
    want, _ = model_outputs(torch_model, channel_for(recipe, digits, sst2))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, atol=ONNX_TOLERANCE, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["image-cnn", "text-lstm"])
def test_int8_quantization_shrinks_the_model_and_keeps_its_accuracy(
    recipe, onnx_dirs, digits, sst2, capsys
):
    import export

    model_dir = onnx_dirs[recipe]
    assert (
        export.main(
            [
                "quantize",
                "--model-dir",
                str(model_dir),
                "--data",
                str(channel_for(recipe, digits, sst2)),
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert (model_dir / "model.int8.onnx").exists()
    assert report["onnx_int8_bytes"] < report["onnx_fp32_bytes"]
    assert report["torch_int8_bytes"] < report["torch_fp32_bytes"]
    for key in ("torch_int8_accuracy", "onnx_int8_accuracy"):
        assert abs(report[key] - report["torch_fp32_accuracy"]) <= 0.05, (key, report)


@pytest.mark.slow
def test_package_with_onnx_serves_with_onnxruntime_after_extraction(
    onnx_dirs, digits, tmp_path, monkeypatch
):
    import export
    from inference import input_fn, model_fn, output_fn, predict_fn

    model_dir = onnx_dirs["autoencoder"]
    if not (model_dir / "model.int8.onnx").exists():
        export.export_onnx(model_dir)
        export.quantize_onnx(model_dir)
    tar_path = tmp_path / "model.tar.gz"
    assert (
        export.main(
            ["package", "--model-dir", str(model_dir), "--out", str(tar_path), "--onnx", "int8"]
        )
        == 0
    )
    with tarfile.open(tar_path) as tar:
        names = set(tar.getnames())
        tar.extractall(tmp_path / "x", filter="data")
    assert {"model.int8.onnx", "model.safetensors", "config.json", "code/inference.py"} <= names
    assert "model.onnx" not in names
    assert "onnxruntime" in (tmp_path / "x" / "code" / "requirements.txt").read_text()

    model = model_fn(str(tmp_path / "x"))  # auto: the ONNX file is there and onnxruntime imports
    assert model.backend.name == "onnx:model.int8.onnx"
    x = np.load(digits / "test" / "digits.npz")["x"][:3]
    preds = json.loads(
        output_fn(
            predict_fn(input_fn(json.dumps({"instances": x.tolist()}), "application/json"), model),
            "application/json",
        )
    )["predictions"]
    assert len(preds) == 3 and all(p["anomaly_score"] >= 0 for p in preds)


@pytest.mark.slow
def test_backend_choice_follows_maas_inference_backend(trained, onnx_dirs, monkeypatch):
    from maas_training.backends import choose_backend

    monkeypatch.setenv("MAAS_INFERENCE_BACKEND", "onnx")
    with pytest.raises(FileNotFoundError, match="model.onnx"):
        choose_backend(trained["image-cnn"])  # the original dir has no ONNX file
    monkeypatch.setenv("MAAS_INFERENCE_BACKEND", "tensorrt")
    with pytest.raises(ValueError, match="torch, onnx"):
        choose_backend(trained["image-cnn"])
    monkeypatch.delenv("MAAS_INFERENCE_BACKEND")
    assert choose_backend(trained["image-cnn"]).name == "torch"
