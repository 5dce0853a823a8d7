"""What a recipe's model computes: class labels, anomaly scores with embeddings, or next tokens.

The task decides everything downstream of the model's forward pass: the training loss, the
validation metrics in the log lines, the outputs the served graph returns (their ONNX names
too), the predictions a request gets back, and the figures a labelled test channel gives.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from maas_training.data import TensorData, encode_labels
from maas_training.generation import IGNORE, TokenBlocks, vocab_size
from maas_training.metrics import roc_auc
from maas_training.models import AutoEncoder, ScoreAndEmbed
from maas_training.signature import GENERATED_OUTPUT

Inputs = tuple[torch.Tensor, ...]
Autocast = Callable[[], contextlib.AbstractContextManager]


class Task(Protocol):
    output_names: tuple[str, ...]  # the served graph's outputs, in order

    def loss(self, model: nn.Module, inputs: Inputs, targets: torch.Tensor) -> torch.Tensor: ...

    def validate(
        self, model: nn.Module, data: TensorData, batch_size: int, device, autocast: Autocast
    ) -> dict[str, float]:
        """Validation metrics keyed as the log lines name them (val_loss, val_...)."""
        ...

    def serving_graph(self, model: nn.Module) -> nn.Module:
        """The module whose forward returns `output_names`, for PyTorch serving and ONNX."""
        ...

    def predictions(self, outputs: list[np.ndarray], config: dict[str, Any]) -> dict[str, Any]:
        """The columns of an answer, from the served graph's outputs for a batch."""
        ...

    def score(
        self, outputs: list[np.ndarray], labels: list, config: dict[str, Any]
    ) -> dict[str, float]:
        """Test figures from the served graph's outputs and the channel's own labels."""
        ...


@contextlib.contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def _by_length(data: TensorData) -> torch.Tensor:
    """Validation order: texts shortest first, so each batch pads little; else as stored."""
    if len(data.inputs) == 2:
        return torch.argsort(data.inputs[1], stable=True)
    return torch.arange(len(data))


class Classification:
    output_names: tuple[str, ...] = ("logits",)

    def loss(self, model: nn.Module, inputs: Inputs, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(*inputs).float(), targets)

    def validate(
        self, model: nn.Module, data: TensorData, batch_size: int, device, autocast: Autocast
    ) -> dict[str, float]:
        loss, hits = 0.0, 0
        with _evaluating(model):
            for idx in _by_length(data).split(batch_size):
                inputs, targets = data.batch(idx, device)
                with autocast():
                    logits = model(*inputs).float()  # (B, K)
                loss += F.cross_entropy(logits, targets, reduction="sum").item()
                hits += int((logits.argmax(1) == targets).sum())
        return {"val_loss": loss / len(data), "val_accuracy": hits / len(data)}

    def serving_graph(self, model: nn.Module) -> nn.Module:
        return model

    def predictions(self, outputs: list[np.ndarray], config: dict[str, Any]) -> dict[str, Any]:
        probs = _softmax(outputs[0].astype(np.float64)).astype(np.float32)
        names = config.get("label_names") or config["labels"]  # names given at training time
        return {
            "label": [names[i] for i in probs.argmax(axis=1)],
            "probabilities": probs,
        }

    def score(
        self, outputs: list[np.ndarray], labels: list, config: dict[str, Any]
    ) -> dict[str, float]:
        targets = encode_labels(labels, config["labels"])
        hits = outputs[0].argmax(1) == targets
        return {"accuracy": float(hits.mean()), "rows": float(len(targets))}


class AnomalyDetection:
    """An autoencoder: its reconstruction error is the anomaly score. Validation rows carry
    1 for the anomaly class and 0 otherwise; training rows are all normal."""

    output_names: tuple[str, ...] = ("anomaly_score", "embedding")

    def loss(self, model: nn.Module, inputs: Inputs, targets: torch.Tensor) -> torch.Tensor:
        x = inputs[0]  # (B, C, H, W)
        return F.mse_loss(model(x).float(), x)

    def validate(
        self, model: nn.Module, data: TensorData, batch_size: int, device, autocast: Autocast
    ) -> dict[str, float]:
        graph = self.serving_graph(model)
        scores = []
        with _evaluating(model):
            for idx in torch.arange(len(data)).split(batch_size):
                inputs, _ = data.batch(idx, device)
                with autocast():
                    score, _ = graph(inputs[0])  # (B,)
                scores.append(score.float().cpu())
        s, flags = torch.cat(scores).numpy(), data.targets.numpy()
        out = {"val_loss": float(s[flags == 0].mean())}
        if 0 < flags.sum() < len(flags):
            out["val_roc_auc"] = roc_auc(s, flags)
        return out

    def serving_graph(self, model: nn.Module) -> nn.Module:
        if not isinstance(model, AutoEncoder):
            raise TypeError(f"anomaly detection needs an AutoEncoder, got {type(model).__name__}")
        return ScoreAndEmbed(model)

    def predictions(self, outputs: list[np.ndarray], config: dict[str, Any]) -> dict[str, Any]:
        return {
            "anomaly_score": outputs[0].astype(np.float32),
            "embedding": outputs[1].astype(np.float32),
        }

    def score(
        self, outputs: list[np.ndarray], labels: list, config: dict[str, Any]
    ) -> dict[str, float]:
        anomaly = config.get("anomaly_class")
        if anomaly is None or not labels:
            return {"mean_anomaly_score": float(outputs[0].mean())}
        flags = np.array([str(v) == anomaly for v in labels])
        return {"roc_auc": roc_auc(outputs[0], flags), "rows": float(len(flags))}


class LanguageModeling:
    """A causal language model: each position predicts the next token (IGNORE targets pad).

    Validation reports the mean loss per token, its perplexity, and the perplexity that a
    unigram model of the training tokens gets on the same targets: the bar that any use of
    context must clear. Generation is served from the Hugging Face folder, not by this task.
    """

    output_names: tuple[str, ...] = (GENERATED_OUTPUT,)
    LOGITS_BUDGET = 2**24  # floats of (rows, T, V) logits per validation forward pass

    def loss(self, model: nn.Module, inputs: Inputs, targets: torch.Tensor) -> torch.Tensor:
        logits = model(inputs[0], use_cache=False).logits.float()  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)

    def validate(
        self, model: nn.Module, data: TensorData, batch_size: int, device, autocast: Autocast
    ) -> dict[str, float]:
        total, count = 0.0, 0
        tokens_per_row = data.targets.shape[1] * vocab_size(model)
        rows = max(1, min(batch_size, self.LOGITS_BUDGET // tokens_per_row))
        with _evaluating(model):
            for idx in torch.arange(len(data)).split(rows):
                inputs, targets = data.batch(idx, device)
                with autocast():
                    logits = model(inputs[0], use_cache=False).logits.float()  # (B, T, V)
                total += F.cross_entropy(
                    logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE, reduction="sum"
                ).item()
                count += int((targets != IGNORE).sum())
        out = {"val_loss": total / count, "val_perplexity": _perplexity(total / count)}
        if isinstance(data, TokenBlocks) and data.unigram_log_probs is not None:
            targets = data.targets[data.targets != IGNORE]
            unigram = -float(data.unigram_log_probs[targets].mean())
            out["val_unigram_perplexity"] = _perplexity(unigram)
        return out

    def serving_graph(self, model: nn.Module) -> nn.Module:
        raise NotImplementedError(_NOT_SERVED)

    def predictions(self, outputs: list[np.ndarray], config: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError(_NOT_SERVED)

    def score(
        self, outputs: list[np.ndarray], labels: list, config: dict[str, Any]
    ) -> dict[str, float]:
        raise NotImplementedError(_NOT_SERVED)


def _perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else math.inf  # exp overflows a float past ~709


_NOT_SERVED = (
    "inference.py does not serve text generation: load the model folder with "
    "transformers' AutoModelForCausalLM and AutoTokenizer"
)

CLASSIFICATION = Classification()
ANOMALY_DETECTION = AnomalyDetection()
LANGUAGE_MODELING = LanguageModeling()
