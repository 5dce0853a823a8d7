"""train.py follows SageMaker's script-mode contract: SM_* environment, metrics, failures."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from maas_training.metrics import format_line, metric_definitions, parse_line, roc_auc
from maas_training.recipes import RECIPES
from tests.training.support import TRAINING, run_python


def test_hyperparameters_come_from_sm_hps_and_argv_wins(monkeypatch, tmp_path):
    import train

    monkeypatch.setenv(
        "SM_HPS",
        json.dumps(
            {
                "recipe": "text-lstm",
                "epochs": 7,
                "batch_size": 32,
                "compile": False,
                "sagemaker_program": "train.py",
            }
        ),
    )
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(tmp_path))
    args = train.parse_args(["--epochs", "2"])
    assert (args.recipe, args.epochs, args.batch_size, args.compile, args.train) == (
        "text-lstm",
        2,
        32,
        False,
        str(tmp_path),
    )
    assert args.lr == RECIPES["text-lstm"].defaults["lr"]


def test_unknown_hyperparameter_is_refused(monkeypatch, tmp_path):
    import train

    monkeypatch.setenv("SM_HPS", json.dumps({"recipe": "image-cnn", "epochz": 3}))
    with pytest.raises(SystemExit):
        train.parse_args(["--train", str(tmp_path)])


def test_log_lines_feed_every_metric_definition():
    line = format_line(
        {"epoch": 3},
        {"train_loss": 0.1234, "val_loss": 2e-05, "val_accuracy": 0.981, "val_roc_auc": 0.75},
    )
    assert line.startswith("epoch=3 train_loss=0.1234 ")
    assert parse_line(line) == {
        "train:loss": 0.1234,
        "validation:loss": 2e-05,
        "validation:accuracy": 0.981,
        "validation:roc_auc": 0.75,
    }
    assert {d["Name"] for d in metric_definitions()} == {
        "train:loss",
        "validation:loss",
        "validation:accuracy",
        "validation:roc_auc",
        "validation:perplexity",
        "validation:unigram_perplexity",
    }
    perplexities = format_line(
        {"epoch": 1}, {"val_perplexity": 97.5, "val_unigram_perplexity": 606}
    )
    assert parse_line(perplexities) == {
        "validation:perplexity": 97.5,
        "validation:unigram_perplexity": 606.0,
    }


def test_roc_auc_matches_scikit_learn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.random(300) + labels * 0.3, 1)  # rounding makes many ties
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_tsv_reader_skips_the_header_and_orders_numeric_labels(tmp_path):
    from maas_training.data import read_tsv, sorted_labels

    (tmp_path / "a.tsv").write_text("label\tsentence\n10\tten\n2\ttwo\tand a tab\n\n")
    labels, texts = read_tsv(tmp_path)
    assert labels == ["10", "2"] and texts == ["ten", "two\tand a tab"]
    assert sorted_labels(labels) == ["2", "10"]


@pytest.mark.slow
def test_script_mode_run_from_a_copied_code_dir_uses_sm_environment(digits, tmp_path):
    code = tmp_path / "opt_ml_code"
    shutil.copytree(TRAINING, code, ignore=shutil.ignore_patterns("__pycache__"))
    env_dirs = {
        "SM_MODEL_DIR": tmp_path / "model",
        "SM_OUTPUT_DATA_DIR": tmp_path / "output" / "data",
        "SM_CHANNEL_TRAIN": digits / "train",
    }
    hps = {"recipe": "image-cnn", "epochs": 1, "base-channels": 8, "val_fraction": 0.2}
    env = {
        **__import__("os").environ,
        "SM_HPS": json.dumps(hps),
        **{k: str(v) for k, v in env_dirs.items()},
    }
    result = run_python(["train.py"], cwd=code, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "train_rows=1007 val_rows=252" in result.stdout  # 20% held out of 1259, seeded
    assert set(json.loads((tmp_path / "output" / "data" / "metrics.json").read_text())) == {
        "train:loss",
        "validation:loss",
        "validation:accuracy",
    }
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["recipe"] == "image-cnn" and config["labels"] == list(range(10))
    assert config["input"] == {"kind": "image", "shape": [1, 8, 8], "dtype": "float32"}


@pytest.mark.slow
def test_failing_run_exits_non_zero_and_says_why_on_its_last_stderr_line(tmp_path):
    (tmp_path / "out").mkdir()
    env = {**__import__("os").environ, "SM_OUTPUT_DIR": str(tmp_path / "out")}
    result = run_python(
        [
            str(TRAINING / "train.py"),
            "--recipe",
            "image-cnn",
            "--train",
            str(tmp_path / "nope"),
            "--model-dir",
            str(tmp_path / "m"),
        ],
        env=env,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("maas training failed: DataError:") and "nope does not exist" in last
    assert "does not exist" in (tmp_path / "out" / "failure").read_text()
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int64", "bool", "float16"])
def test_safetensors_files_interchange_with_the_safetensors_package(dtype, tmp_path):
    import safetensors.torch as official
    import torch

    from maas_training.weights import load_file, save_file

    t = {
        "w": (torch.randn(3, 5) * 4).to(getattr(torch, dtype)),
        "b": torch.arange(7).to(getattr(torch, dtype)),
        "empty": torch.zeros(0, 2, dtype=getattr(torch, dtype)),
    }
    save_file(t, tmp_path / "ours.safetensors")
    official.save_file(t, str(tmp_path / "theirs.safetensors"))
    for got in (
        official.load_file(str(tmp_path / "ours.safetensors")),
        load_file(tmp_path / "theirs.safetensors"),
    ):
        assert got.keys() == t.keys() and all(
            torch.equal(got[k], t[k]) and got[k].dtype == t[k].dtype for k in t
        )
