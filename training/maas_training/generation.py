"""Causal language modelling for the text-generation recipe: text, tokenizer, model and folder.

A channel's `*.txt` files are read as UTF-8 and cut into documents at blank lines. Every
document's tokens follow an end-of-text token, and the whole stream is cut into windows of
`--block-size` tokens, each position predicting the token after it. A fresh model gets a
byte-level BPE tokenizer trained on the training documents alone and a GPT-2 architecture;
`--pretrained-path` fine-tunes a Hugging Face causal LM folder, with its own tokenizer, instead.

The model folder is a standard Hugging Face one (config.json, generation_config.json,
model.safetensors, tokenizer.json, tokenizer_config.json) that AutoModelForCausalLM and
AutoTokenizer load unchanged; maas's own config sits beside it in maas.json.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from maas_training import lora
from maas_training.data import DataError, TensorData
from maas_training.models import hf_offline

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

END_OF_TEXT = "<|endoftext|>"
IGNORE = -100  # F.cross_entropy's ignore_index: the padding after a stream's last token
BYTES = 256  # a byte-level vocabulary holds every byte before any merge
_BLANK_LINE = re.compile(r"\n\s*\n")


def read_documents(channel: str | Path) -> list[str]:
    """Every `*.txt` in a channel (or the one file named), cut into documents at blank lines."""
    root = Path(channel)
    if not root.exists():
        raise DataError(f"data channel {root} does not exist")
    files = [root] if root.is_file() else sorted(root.rglob("*.txt"))
    if not files:
        raise DataError(f"no .txt files in data channel {root}")
    docs = [d.strip() for f in files for d in _BLANK_LINE.split(f.read_text(encoding="utf-8"))]
    docs = [d for d in docs if d]
    if not docs:
        raise DataError(f"the .txt files of {root} hold no text")
    return docs


class CausalTokenizer:
    """A Hugging Face fast tokenizer and the end-of-text token that separates documents."""

    def __init__(self, tok: PreTrainedTokenizerBase, portable_class: bool = False):
        if not tok.is_fast or tok.eos_token_id is None:
            raise DataError("text-generation needs a fast tokenizer with an eos token")
        self.tok = tok
        self.eos_id = int(tok.eos_token_id)
        self.portable_class = portable_class

    def __len__(self) -> int:
        return len(self.tok)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        # The backend encodes a whole corpus at once, without the wrapper's per-text length
        # checks, which are about model inputs rather than training text.
        encoded = self.tok.backend_tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [e.ids for e in encoded]

    def save(self, path: Path) -> None:
        self.tok.save_pretrained(str(path))
        if self.portable_class:
            # transformers 5 records its own backend's class name, which transformers 4 cannot
            # resolve; this generic name loads tokenizer.json in both.
            config_file = path / "tokenizer_config.json"
            config = json.loads(config_file.read_text())
            config["tokenizer_class"] = "PreTrainedTokenizerFast"
            config_file.write_text(json.dumps(config, indent=2))


def train_tokenizer(texts: Sequence[str], vocab_size: int) -> CausalTokenizer:
    """Byte-level BPE trained on `texts`: every byte is a symbol, so no text is unknown."""
    if vocab_size <= BYTES:
        raise DataError(f"--vocab-size must exceed the {BYTES} bytes, got {vocab_size}")
    hf_offline()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer)  # merges rank by count, then pair: deterministic
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT, pad_token=END_OF_TEXT
    )
    return CausalTokenizer(tok, portable_class=True)


def fresh_model(
    tokenizer: CausalTokenizer,
    block_size: int,
    n_layer: int,
    n_head: int,
    n_embd: int,
    dropout: float,
) -> PreTrainedModel:
    """An untrained GPT-2 sized by the hyperparameters, its context `block_size` tokens."""
    if n_embd % n_head:
        raise ValueError(f"--n-embd ({n_embd}) must be a multiple of --n-head ({n_head})")
    hf_offline()
    from transformers import GPT2Config, GPT2LMHeadModel

    eos = tokenizer.eos_id
    cfg = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=block_size,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        resid_pdrop=dropout,
        embd_pdrop=dropout,
        attn_pdrop=dropout,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,  # generation pads a batch of prompts with it
    )
    return GPT2LMHeadModel(cfg)


def load_pretrained(path: str | Path) -> tuple[PreTrainedModel, CausalTokenizer]:
    """A local Hugging Face causal LM folder and its tokenizer; never reaches a hub."""
    hf_offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
    return model.float(), CausalTokenizer(tok)  # fp32 master weights; autocast does bf16


def context_length(model: PreTrainedModel) -> int:
    cfg = model.config
    n = getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)
    if not n:
        raise ValueError(f"{type(model).__name__}'s config names no context length")
    return int(n)


def vocab_size(model: torch.nn.Module) -> int:
    return int(cast("PreTrainedModel", model).config.vocab_size)


def model_config(model: torch.nn.Module) -> dict[str, Any]:
    """What maas.json records of the architecture: the Hugging Face config, as config.json."""
    return cast("PreTrainedModel", model).config.to_diff_dict()


def build(config: dict[str, Any]) -> PreTrainedModel:
    """An untrained causal LM of the architecture maas.json records."""
    hf_offline()
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = dict(config)
    return AutoModelForCausalLM.from_config(AutoConfig.for_model(cfg.pop("model_type"), **cfg))


def save(model: torch.nn.Module, folder: Path) -> None:
    """config.json, generation_config.json and model.safetensors, as Hugging Face writes them
    (tied embeddings once). A LoRA-wrapped model also writes its adapter to adapter/ and saves
    its weights with the adapter merged in, so the folder loads without peft."""
    hf_offline()
    if lora.is_wrapped(model):
        model = lora.save_merged(model, folder)
    cast("PreTrainedModel", model).save_pretrained(str(folder))


def load(folder: Path) -> PreTrainedModel:
    hf_offline()
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True)


@dataclass
class TokenBlocks(TensorData):
    """Windows of a token stream: inputs (ids (N, T),) and targets (N, T), each target the
    token after its input. The last window's tail has IGNORE targets."""

    # (V,) on validation data: log-probabilities of a unigram model of the training tokens
    unigram_log_probs: torch.Tensor | None = None

    @property
    def tokens(self) -> int:
        return int((self.targets != IGNORE).sum())


def token_stream(tokenizer: CausalTokenizer, docs: Sequence[str]) -> np.ndarray:
    """end-of-text, doc 1, end-of-text, doc 2, ..., end-of-text: the model learns where a
    document starts and when to stop."""
    eos = tokenizer.eos_id
    stream = [eos]
    for ids in tokenizer.encode(docs):
        stream += ids
        stream.append(eos)
    return np.array(stream, dtype=np.int64)


def token_blocks(stream: np.ndarray, block_size: int, pad_id: int) -> TokenBlocks:
    """Every token after the first is a target exactly once."""
    n_targets = len(stream) - 1
    n = -(-n_targets // block_size)
    x = np.full(n * block_size, pad_id, dtype=np.int64)
    y = np.full(n * block_size, IGNORE, dtype=np.int64)
    x[:n_targets], y[:n_targets] = stream[:-1], stream[1:]
    return TokenBlocks(
        (torch.from_numpy(x.reshape(n, block_size)),), torch.from_numpy(y.reshape(n, block_size))
    )


def unigram_log_probs(train: TokenBlocks, vocab: int) -> torch.Tensor:
    """(V,) log-frequencies of the training targets, add-one smoothed so that a token never
    seen in training still has a finite cost."""
    targets = train.targets[train.targets != IGNORE]
    counts = torch.bincount(targets, minlength=vocab).double() + 1.0
    return (counts / counts.sum()).log()
