"""Per recipe: read the channels into tensors and build a freshly initialised model."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from maas_training import generation, lora
from maas_training.data import (
    DataError,
    TensorData,
    encode_labels,
    holdout,
    read_npz,
    read_tsv,
    sorted_labels,
)
from maas_training.models import (
    AutoEncoder,
    AutoEncoderConfig,
    ImageCNN,
    ImageCNNConfig,
    TextLSTM,
    TextLSTMConfig,
    default_transformer_path,
    load_pretrained_transformer,
)
from maas_training.text import HFTokenizer, WordVocab, pad


class TextEncoder(Protocol):
    """What the model folder keeps of a text model's tokenizer (at config's input.tokenizer)."""

    def save(self, path: Path) -> None: ...


@dataclass
class Prepared:
    train: TensorData
    val: TensorData
    model: nn.Module
    config: dict[str, Any]  # what config.json will hold, less the metrics
    text_encoder: TextEncoder | None = None


def _split(args: argparse.Namespace, n: int) -> tuple[np.ndarray, np.ndarray]:
    return holdout(n, args.val_fraction, args.seed)


def _subsample(idx: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if limit <= 0 or limit >= len(idx):
        return idx
    return np.sort(np.random.default_rng(seed + 1).permutation(idx)[:limit])


def _images(args: argparse.Namespace) -> tuple[np.ndarray, Any, np.ndarray, Any]:
    x, y = read_npz(args.train)
    if args.validation:
        xv, yv = read_npz(args.validation)
        tr = _subsample(np.arange(len(x)), args.max_train_samples, args.seed)
        return x[tr], None if y is None else y[tr], xv, yv
    tr, va = _split(args, len(x))
    tr = _subsample(tr, args.max_train_samples, args.seed)
    return x[tr], None if y is None else y[tr], x[va], None if y is None else y[va]


def _image_spec(x: np.ndarray) -> dict:
    return {"kind": "image", "shape": list(x.shape[1:]), "dtype": "float32"}


def prepare_image_cnn(args: argparse.Namespace) -> Prepared:
    x, y, xv, yv = _images(args)
    if y is None or yv is None:
        raise DataError("image-cnn needs labels: every .npz must hold 'y' (N,)")
    labels = sorted_labels(y)
    c, h, w = x.shape[1:]
    model = ImageCNN(ImageCNNConfig(c, h, w, len(labels), args.base_channels, args.dropout))
    train = TensorData((torch.from_numpy(x),), torch.from_numpy(encode_labels(y, labels)))
    val = TensorData((torch.from_numpy(xv),), torch.from_numpy(encode_labels(yv, labels)))
    return Prepared(train, val, model, {"labels": labels, "input": _image_spec(x)})


def prepare_autoencoder(args: argparse.Namespace) -> Prepared:
    x, y, xv, yv = _images(args)
    anomaly = args.anomaly_class
    if anomaly is not None:
        if y is None or yv is None:
            raise DataError("--anomaly-class needs labels: every .npz must hold 'y' (N,)")
        normal = np.array([str(v) != anomaly for v in y])
        if normal.all() or not normal.any():
            raise DataError(
                f"--anomaly-class {anomaly!r} must name some but not all training labels"
            )
        x = x[normal]  # the autoencoder learns what normal looks like
        flags = np.array([str(v) == anomaly for v in yv], dtype=np.int64)
    else:
        flags = np.zeros(len(xv), dtype=np.int64)
    c, h, w = x.shape[1:]
    cfg = AutoEncoderConfig(c, h, w, args.latent_dim, args.hidden_dim, args.ae_kind)
    model = AutoEncoder(cfg)
    train = TensorData((torch.from_numpy(x),), torch.zeros(len(x), dtype=torch.long))
    val = TensorData((torch.from_numpy(xv),), torch.from_numpy(flags))
    return Prepared(
        train, val, model, {"labels": [], "input": _image_spec(x), "anomaly_class": anomaly}
    )


def _texts(args: argparse.Namespace) -> tuple[list, list, list, list]:
    y, t = read_tsv(args.train)
    if args.validation:
        yv, tv = read_tsv(args.validation)
        tr = _subsample(np.arange(len(t)), args.max_train_samples, args.seed)
    else:
        tr, va = _split(args, len(t))
        tr = _subsample(tr, args.max_train_samples, args.seed)
        yv, tv = [y[i] for i in va], [t[i] for i in va]
    return [y[i] for i in tr], [t[i] for i in tr], yv, tv


def prepare_text_lstm(args: argparse.Namespace) -> Prepared:
    y, t, yv, tv = _texts(args)
    labels = sorted_labels(y)
    vocab = WordVocab.build(t, args.vocab_size, args.min_freq, args.max_len)
    cfg = TextLSTMConfig(
        len(vocab.itos), len(labels), args.embed_dim, args.hidden_dim, args.dropout
    )
    spec = {"kind": "text", "max_len": args.max_len, "tokenizer": "vocab.json"}
    return _text_prepared((y, t, yv, tv), labels, vocab, TextLSTM(cfg), spec)


def prepare_text_transformer(args: argparse.Namespace) -> Prepared:
    y, t, yv, tv = _texts(args)
    labels = sorted_labels(y)
    path = args.pretrained_path or default_transformer_path()
    tokenizer = HFTokenizer(path, args.max_len)
    model = load_pretrained_transformer(path, labels)
    if not args.train_embeddings:
        # The word-embedding table is half of MiniLM's weights; fine-tuning moves it little,
        # and its dense gradient and AdamW update cost about a fifth of a CPU step.
        model.hf.get_input_embeddings().weight.requires_grad_(False)
    spec = {"kind": "text", "max_len": args.max_len, "tokenizer": "tokenizer"}
    return _text_prepared((y, t, yv, tv), labels, tokenizer, model, spec)


def _text_prepared(
    rows: tuple[list, list, list, list],
    labels: list,
    encoder: WordVocab | HFTokenizer,
    model: nn.Module,
    spec: dict[str, Any],
) -> Prepared:
    y, t, yv, tv = rows

    def tensors(texts: list[str], ys: list) -> TensorData:
        ids, lengths = pad(encoder.encode(texts), encoder.pad_id)
        return TensorData(
            (torch.from_numpy(ids), torch.from_numpy(lengths)),
            torch.from_numpy(encode_labels(ys, labels)),
        )

    return Prepared(
        tensors(t, y), tensors(tv, yv), model, {"labels": labels, "input": spec}, encoder
    )


def _documents(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    docs = generation.read_documents(args.train)
    if args.validation:
        val_docs = generation.read_documents(args.validation)
        tr = np.arange(len(docs))
    else:
        tr, va = _split(args, len(docs))
        val_docs = [docs[i] for i in va]
    tr = _subsample(tr, args.max_train_samples, args.seed)
    return [docs[i] for i in tr], val_docs


def prepare_text_generation(args: argparse.Namespace) -> Prepared:
    """A fresh GPT-2 with a BPE tokenizer trained on the training text, or the causal LM at
    --pretrained-path with its own tokenizer; the text as windows of --block-size tokens."""
    train_docs, val_docs = _documents(args)
    if args.pretrained_path:
        model, tokenizer = generation.load_pretrained(args.pretrained_path)
    else:
        tokenizer = generation.train_tokenizer(train_docs, args.vocab_size)
        model = generation.fresh_model(
            tokenizer, args.block_size, args.n_layer, args.n_head, args.n_embd, args.dropout
        )
    block = min(args.block_size, generation.context_length(model))
    train, val = (
        generation.token_blocks(generation.token_stream(tokenizer, docs), block, tokenizer.eos_id)
        for docs in (train_docs, val_docs)
    )
    val.unigram_log_probs = generation.unigram_log_probs(train, len(tokenizer))
    spec = {"kind": "prompt", "tokenizer": ".", "context_length": generation.context_length(model)}
    corpus = {
        "train_documents": len(train_docs),
        "train_tokens": train.tokens,
        "validation_documents": len(val_docs),
        "validation_tokens": val.tokens,
    }
    config: dict[str, Any] = {"labels": [], "input": spec, "corpus": corpus}
    if args.pretrained_path and args.lora_r > 0:  # train.py refuses LoRA without a pretrained
        settings = lora.LoraSettings.from_args(
            args.lora_r, args.lora_alpha, args.lora_dropout, args.lora_target_modules
        )
        adapted = lora.wrap(model, settings)
        config["lora"] = {**asdict(settings), **lora.parameter_counts(adapted)}
        return Prepared(train, val, adapted, config, tokenizer)
    return Prepared(train, val, model, config, tokenizer)
