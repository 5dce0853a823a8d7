"""What a trained model says about itself: its signature and its per-epoch history.

The signature is in the Open Inference Protocol's terms (model metadata: name, datatype,
shape), https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol ;
it goes into the model folder, beside the packaged model.tar.gz, and into the checkpoint
folder, which SageMaker uploads to CheckpointConfig.S3Uri ("SageMaker AI saves checkpoints to
Amazon S3 and syncs your training job with the checkpoint S3 bucket",
https://docs.aws.amazon.com/sagemaker/latest/dg/model-checkpoints-enable.html).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from maas_training import protocol, serving
from maas_training.artifacts import package
from maas_training.data import DataError
from tests.training.support import TINY, run_train


def _json(path):
    return json.loads(path.read_text())


def test_an_image_classifier_writes_its_signature_and_history_everywhere(digits, tmp_path):
    ckpt = tmp_path / "ckpt"
    run_train("image-cnn", digits, tmp_path, *TINY["image-cnn"], "--checkpoint-dir", str(ckpt))
    model = tmp_path / "model"
    signature = _json(model / "signature.json")
    assert signature == {
        "inputs": [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
        ],
        "labels": [str(d) for d in range(10)],
    }
    assert _json(ckpt / "signature.json") == signature
    history = _json(tmp_path / "output" / "history.json")
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert {"train_loss", "val_loss", "val_accuracy"} <= history[0].keys()
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert _json(model / "history.json") == history == _json(ckpt / "history.json")

    out = package(model, tmp_path / "packaged" / "model.tar.gz")
    assert _json(out.parent / "signature.json") == signature


def test_a_resumed_run_keeps_the_history_of_the_epochs_before(digits, tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    common = (*TINY["image-cnn"], "--checkpoint-dir", str(ckpt))
    run_train("image-cnn", digits, tmp_path, *common, "--stop-after-epoch", "2")
    first = _json(ckpt / "history.json")
    assert [row["epoch"] for row in first] == [1, 2]
    run_train("image-cnn", digits, tmp_path, *common)
    assert "after epoch 2" in capsys.readouterr().out
    history = _json(tmp_path / "output" / "history.json")
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[:2] == first


def test_label_names_name_the_predictions_and_the_signature(sst2, tmp_path):
    extra = (*TINY["text-lstm"], "--epochs", "1", "--label-names", "negative,positive")
    run_train("text-lstm", sst2, tmp_path, *extra)
    signature = _json(tmp_path / "model" / "signature.json")
    assert signature["labels"] == ["negative", "positive"]
    assert signature["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert signature["outputs"][0] == {"name": "label", "datatype": "BYTES", "shape": [-1]}
    loaded = serving.load(tmp_path / "model")
    texts = ["a gorgeous , witty , seductive movie .", "the plot is nothing but boilerplate ."]
    answer = serving.predict(loaded, protocol.Request(texts, "instances"))
    assert set(answer.outputs["label"]) <= {"negative", "positive"}
    assert np.asarray(answer.outputs["probabilities"]).shape == (2, 2)


@pytest.mark.parametrize("names", ["negative", "a,a", "negative,,positive"])
def test_label_names_that_do_not_fit_the_labels_are_refused(sst2, tmp_path, names):
    extra = (*TINY["text-lstm"], "--epochs", "1", "--label-names", names)
    with pytest.raises(DataError, match="--label-names must give 2 distinct names"):
        run_train("text-lstm", sst2, tmp_path, *extra)


def test_an_autoencoders_signature_names_its_score_and_embedding(digits, tmp_path):
    run_train("autoencoder", digits, tmp_path, *TINY["autoencoder"], "--epochs", "1")
    signature = _json(tmp_path / "model" / "signature.json")
    assert signature["outputs"] == [
        {"name": "anomaly_score", "datatype": "FP32", "shape": [-1]},
        {"name": "embedding", "datatype": "FP32", "shape": [-1, 8]},
    ]
    assert signature["labels"] == []
