"""The recipes, by the name `--recipe` takes: the one place that tells them apart.

A recipe carries all that differs between models: how its channels are read and its fresh
model built (`prepare`), how config.json's `model_config` rebuilds its architecture (`build`),
what the model computes (`task`: loss, metrics, serving outputs), the hyperparameter defaults
that differ by recipe, and what its serving container needs beyond torch and numpy. A recipe
whose model folder is another library's format also says how to write and read that folder
and where maas's own config goes beside it. The rest of the code asks the recipe object and
never compares names.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from maas_training import generation
from maas_training.data import DataError
from maas_training.models import (
    AutoEncoder,
    AutoEncoderConfig,
    ImageCNN,
    ImageCNNConfig,
    TextLSTM,
    TextLSTMConfig,
    build_transformer,
    model_config_dict,
)
from maas_training.preparation import (
    Prepared,
    prepare_autoencoder,
    prepare_image_cnn,
    prepare_text_generation,
    prepare_text_lstm,
    prepare_text_transformer,
)
from maas_training.tasks import ANOMALY_DETECTION, CLASSIFICATION, LANGUAGE_MODELING, Task

CONFIG_FILE = "config.json"
# maas's config in a Hugging Face folder, where config.json is the library's own
BESIDE_HF_CONFIG_FILE = "maas.json"


@dataclass(frozen=True)
class Recipe:
    name: str
    task: Task
    prepare: Callable[[argparse.Namespace], Prepared]
    build: Callable[[dict[str, Any]], nn.Module]
    defaults: Mapping[str, float | str]  # used where the hyperparameter was not given
    requirements: tuple[str, ...] = ()  # code/requirements.txt: serving needs beyond torch, numpy
    describe: Callable[[nn.Module], dict[str, Any]] = model_config_dict  # config's model_config
    # Another library's folder format: how to write the model's files into the model dir and
    # read them back (None: model.safetensors, read with `build`), and maas's config file.
    save: Callable[[nn.Module, Path], None] | None = None
    load: Callable[[Path], nn.Module] | None = None
    config_file: str = CONFIG_FILE
    lora: bool = False  # whether --lora-r may fine-tune a pretrained model with LoRA adapters


# Defaults that text-generation alone sets otherwise.
_COMMON = {"epochs": 10, "batch_size": 64, "vocab_size": 20000, "lr_schedule": "cosine"}

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            name="image-cnn",
            task=CLASSIFICATION,
            prepare=prepare_image_cnn,
            build=lambda cfg: ImageCNN(ImageCNNConfig(**cfg)),
            defaults={**_COMMON, "lr": 3e-3, "dropout": 0.25, "hidden_dim": 64, "max_len": 50},
        ),
        Recipe(
            name="text-lstm",
            task=CLASSIFICATION,
            prepare=prepare_text_lstm,
            build=lambda cfg: TextLSTM(TextLSTMConfig(**cfg)),
            defaults={**_COMMON, "lr": 3e-3, "dropout": 0.3, "hidden_dim": 64, "max_len": 50},
        ),
        Recipe(
            name="text-transformer",
            task=CLASSIFICATION,
            prepare=prepare_text_transformer,
            build=build_transformer,
            # The 30-minute CPU fine-tune on SST-2 (training/README.md, "The SST-2 fine-tune").
            defaults={
                **_COMMON,
                "epochs": 1,
                "batch_size": 32,
                "lr": 1e-4,
                "lr_schedule": "linear",
                "max_len": 64,
            },
            requirements=("transformers>=4.44", "tokenizers>=0.19"),
        ),
        Recipe(
            name="autoencoder",
            task=ANOMALY_DETECTION,
            prepare=prepare_autoencoder,
            build=lambda cfg: AutoEncoder(AutoEncoderConfig(**cfg)),
            defaults={**_COMMON, "lr": 2e-3, "dropout": 0.0, "hidden_dim": 128, "max_len": 50},
        ),
        Recipe(
            name="text-generation",
            task=LANGUAGE_MODELING,
            prepare=prepare_text_generation,
            build=generation.build,
            # Sized for a run of about two minutes on two CPU cores, where the number of steps,
            # not the tokens per step, limits what a small model learns; raise --batch-size
            # and --lr together on a GPU.
            defaults={
                "epochs": 1,
                "batch_size": 4,
                "vocab_size": 2048,
                "lr": 1.5e-3,
                "dropout": 0.0,
                "lr_schedule": "cosine",
            },
            requirements=("transformers>=4.44", "tokenizers>=0.19"),
            describe=generation.model_config,
            save=generation.save,
            load=generation.load,
            config_file=BESIDE_HF_CONFIG_FILE,
            lora=True,
        ),
    )
}


def recipe_named(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; expected one of {', '.join(RECIPES)}")
    return RECIPES[name]


def prepare(recipe: Recipe, args: argparse.Namespace) -> Prepared:
    """Loads the data and builds a freshly initialised model of the recipe."""
    torch.manual_seed(args.seed)  # the initial weights depend on the seed alone
    p = recipe.prepare(args)
    if len(p.train) == 0 or len(p.val) == 0:
        raise DataError(f"need training and validation rows, got {len(p.train)} and {len(p.val)}")
    p.config = {"recipe": recipe.name, "model_config": recipe.describe(p.model), **p.config}
    names = getattr(args, "label_names", None)
    if names:
        p.config["label_names"] = _label_names(names, p.config.get("labels") or [])
    return p


def _label_names(given: str, labels: list) -> list[str]:
    """`--label-names negative,positive`: a name for each class, in class order (the labels
    sorted, numbers in numeric order), which predictions and the signature then carry."""
    names = [n.strip() for n in given.split(",")]
    if not labels:
        raise DataError("--label-names needs a classifier: this recipe predicts no labels")
    if len(names) != len(labels) or not all(names) or len(set(names)) != len(names):
        raise DataError(
            f"--label-names must give {len(labels)} distinct names, one for each label "
            f"({', '.join(map(str, labels))} in that order); got {given!r}"
        )
    return names
