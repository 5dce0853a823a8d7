"""Every recipe trains on real data, its loss falls, and its log lines feed SageMaker's metrics."""

from __future__ import annotations

import json

import pytest

from maas_training.metrics import parse_line
from tests.training.support import TINY, run_train


def epoch_metrics(stdout: str) -> list[dict[str, float]]:
    """The per-epoch lines, read with the regexes of metric_definitions.json."""
    return [
        parse_line(line)
        for line in stdout.splitlines()
        if line.startswith("epoch=") and " step=" not in line
    ]


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["image-cnn", "text-lstm", "autoencoder"])
def test_recipe_trains_and_its_loss_falls(recipe, digits, sst2, tmp_path, capsys):
    run_train(recipe, sst2 if recipe == "text-lstm" else digits, tmp_path, *TINY[recipe])
    epochs = epoch_metrics(capsys.readouterr().out)
    assert len(epochs) == 3
    assert epochs[-1]["train:loss"] < epochs[0]["train:loss"]
    assert epochs[-1]["validation:loss"] < epochs[0]["validation:loss"]
    written = json.loads((tmp_path / "output" / "metrics.json").read_text())
    assert written == pytest.approx(epochs[-1], rel=1e-4)
    model_dir = tmp_path / "model"
    assert {"model.safetensors", "config.json", "code"} <= {p.name for p in model_dir.iterdir()}
    assert (model_dir / "code" / "inference.py").exists()
    assert (model_dir / "code" / "requirements.txt").read_text().strip()


@pytest.mark.slow
def test_digits_cnn_learns_to_classify(trained, digits):
    from inference import model_fn
    from maas_training.evaluate import score

    result = score(model_fn(str(trained["image-cnn"])), digits / "test")
    assert result["rows"] == 359
    assert result["accuracy"] > 0.8  # 3 tiny epochs; the full recipe's figure is in the README


@pytest.mark.slow
def test_autoencoder_reports_roc_auc_for_its_anomaly_class(digits, tmp_path, capsys):
    run_train(
        "autoencoder",
        digits,
        tmp_path,
        "--epochs",
        "2",
        "--anomaly-class",
        "0",
        "--ae-kind",
        "conv",
    )
    epochs = epoch_metrics(capsys.readouterr().out)
    assert all(0.0 <= e["validation:roc_auc"] <= 1.0 for e in epochs)
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["anomaly_class"] == "0" and config["model_config"]["kind"] == "conv"


@pytest.mark.slow
def test_text_transformer_fine_tunes_offline_from_the_packaged_checkpoint(
    sst2, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run_train(
        "text-transformer",
        sst2,
        tmp_path,
        "--epochs",
        "3",
        "--max-train-samples",
        "48",
        "--batch-size",
        "16",
        "--max-len",
        "24",
        "--lr",
        "2e-4",
        "--dropout",
        "0.0",
    )
    epochs = epoch_metrics(capsys.readouterr().out)
    assert epochs[-1]["train:loss"] < epochs[0]["train:loss"]
    model_dir = tmp_path / "model"
    assert (model_dir / "tokenizer" / "tokenizer.json").exists()
    from inference import input_fn, model_fn, output_fn, predict_fn

    model = model_fn(str(model_dir))
    body = output_fn(
        predict_fn(input_fn("a great movie\nawful", "text/plain"), model), "application/json"
    )
    preds = json.loads(body)["predictions"]
    assert [p["label"] in ("0", "1") for p in preds] == [True, True]
    assert all(abs(sum(p["probabilities"]) - 1) < 1e-5 for p in preds)


@pytest.mark.slow
def test_progress_bar_is_drawn_when_asked_and_epoch_lines_still_print(digits, tmp_path, capsys):
    run_train(
        "image-cnn", digits, tmp_path, "--epochs", "1", "--base-channels", "8", "--progress", "bar"
    )
    captured = capsys.readouterr()
    assert "epoch 1:" in captured.err and "batch" in captured.err  # tqdm's bar, on stderr
    assert " step=" not in captured.out
    assert len(epoch_metrics(captured.out)) == 1


@pytest.mark.slow
def test_bf16_autocast_trains(digits, tmp_path, capsys):
    run_train("image-cnn", digits, tmp_path, *TINY["image-cnn"], "--precision", "bf16")
    out = capsys.readouterr().out
    assert "bf16=True" in out
    epochs = epoch_metrics(out)
    assert epochs[-1]["train:loss"] < epochs[0]["train:loss"]
