"""A trained model's signature: what it takes, what it answers, and the names of its labels.

`signature.json` holds it, in the Open Inference Protocol's terms (name, datatype, shape with
-1 for the batch dimension), so that the registry can answer model metadata without opening
the archive:

    {"inputs":  [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}],
     "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]},
                 {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}],
     "labels": ["0", "1", ...]}

A text-generation model takes a prompt and answers its continuation, named as in the Open
Inference Protocol's generate extension (Triton's `v2/models/{name}/generate`):

    {"inputs":  [{"name": "text_input", "datatype": "BYTES", "shape": [-1]}],
     "outputs": [{"name": "text_output", "datatype": "BYTES", "shape": [-1]}], "labels": []}

train.py writes it into the model folder (so it travels inside model.tar.gz) and into the
checkpoint folder, which SageMaker uploads to the job's CheckpointConfig.S3Uri even with
network isolation; export.py's `package` writes it beside the model.tar.gz it makes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FILE = "signature.json"
BATCH = -1  # the batch dimension: any number of instances

# The names requests give their one input tensor; the model accepts one input of its kind.
IMAGE_INPUT = "image"
TEXT_INPUT = "text"
PROMPT_INPUT, GENERATED_OUTPUT = "text_input", "text_output"


def label_names(config: dict[str, Any]) -> list[str]:
    """The labels a prediction names, in the model's class order: the `label_names` given at
    training time where there are any, else the labels as the data spelt them."""
    return [str(v) for v in config.get("label_names") or config.get("labels") or []]


def _tensor(name: str, datatype: str, *dims: int) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": [BATCH, *dims]}


def _label_datatype(config: dict[str, Any]) -> str:
    named = config.get("label_names") or config.get("labels") or []
    return "INT64" if all(isinstance(v, int) for v in named) and named else "BYTES"


def build(config: dict[str, Any]) -> dict[str, Any]:
    """The signature of the model whose config.json is `config`."""
    spec = config["input"]
    if spec["kind"] == "prompt":  # a text generator: prompts in, their continuations out
        return {
            "inputs": [_tensor(PROMPT_INPUT, "BYTES")],
            "outputs": [_tensor(GENERATED_OUTPUT, "BYTES")],
            "labels": [],
        }
    if spec["kind"] == "text":
        inputs = [_tensor(TEXT_INPUT, "BYTES")]
    else:
        inputs = [_tensor(IMAGE_INPUT, "FP32", *spec["shape"])]
    labels = label_names(config)
    if config.get("labels"):  # a classifier: a label and the probability of each class
        outputs = [
            _tensor("label", _label_datatype(config)),
            _tensor("probabilities", "FP32", len(labels)),
        ]
    else:  # an autoencoder: an anomaly score and the embedding it came from
        latent = int((config.get("model_config") or {}).get("latent_dim", BATCH))
        outputs = [_tensor("anomaly_score", "FP32"), _tensor("embedding", "FP32", latent)]
    return {"inputs": inputs, "outputs": outputs, "labels": labels}


def write(folder: str | Path, config: dict[str, Any]) -> Path:
    path = Path(folder) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build(config), indent=2))
    return path
