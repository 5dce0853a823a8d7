"""The recipe registry is the one place recipes differ, and a model's code/ is self-contained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from maas_training.artifacts import load_model, write_code, write_model_dir
from maas_training.models import ImageCNN, ImageCNNConfig, model_config_dict
from maas_training.recipes import RECIPES, recipe_named
from tests.training.support import TRAINING


def files_under(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_code_folder_holds_inference_py_and_the_whole_package_without_caches(tmp_path):
    (TRAINING / "maas_training" / "__pycache__").mkdir(exist_ok=True)  # present after any import
    write_code(tmp_path, RECIPES["image-cnn"])
    code = tmp_path / "code"
    assert (code / "inference.py").read_bytes() == (TRAINING / "inference.py").read_bytes()
    shipped = files_under(code / "maas_training")
    assert shipped == files_under(TRAINING / "maas_training")
    assert "serving.py" in shipped and "recipes.py" in shipped
    assert not any(p.name == "__pycache__" for p in code.rglob("*"))


def test_repackaging_replaces_the_package_copy_so_no_stale_module_survives(tmp_path):
    stale = tmp_path / "code" / "maas_training" / "removed_long_ago.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("raise ImportError\n")
    write_code(tmp_path, RECIPES["image-cnn"])
    assert not stale.exists()
    assert (tmp_path / "code" / "maas_training" / "serving.py").exists()


@pytest.mark.parametrize(
    ("recipe", "with_onnx", "wanted"),
    [
        ("image-cnn", False, set()),
        ("text-lstm", True, {"onnxruntime>=1.19"}),
        ("text-transformer", False, {"transformers>=4.44", "tokenizers>=0.19"}),
    ],
)
def test_requirements_come_from_the_recipe(recipe, with_onnx, wanted, tmp_path):
    write_code(tmp_path, RECIPES[recipe], with_onnx)
    lines = (tmp_path / "code" / "requirements.txt").read_text().splitlines()
    assert {line for line in lines if not line.startswith("#")} == wanted


def test_train_py_takes_every_registered_recipe_with_its_defaults(tmp_path):
    import train

    for name, recipe in RECIPES.items():
        args = train.parse_args(["--recipe", name, "--train", str(tmp_path)])
        assert {key: getattr(args, key) for key in recipe.defaults} == dict(recipe.defaults)
    with pytest.raises(SystemExit):
        train.parse_args(["--recipe", "resnet", "--train", str(tmp_path)])


def test_a_model_dir_of_an_unknown_recipe_is_refused_naming_the_known_ones(tmp_path):
    model = ImageCNN(ImageCNNConfig(base_channels=4)).eval()
    config = {
        "recipe": "image-cnn",
        "model_config": model_config_dict(model),
        "labels": list(range(10)),
        "input": {"kind": "image", "shape": [1, 8, 8], "dtype": "float32"},
    }
    write_model_dir(tmp_path, model, config)
    rebuilt, _ = load_model(tmp_path)
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(rebuilt(x), model(x))  # the registry's builder rebuilds the architecture

    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "recipe": "resnet"}))
    with pytest.raises(ValueError, match="'resnet'.*image-cnn, text-lstm, text-transformer"):
        load_model(tmp_path)
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe_named("")
