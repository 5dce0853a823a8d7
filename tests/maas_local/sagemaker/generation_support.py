"""A tiny Hugging Face causal LM folder for the generation tests, built in about a second.

A byte-level BPE tokenizer with few merges, trained on text with multi-byte characters, so
that generated tokens often end inside a UTF-8 character; and a randomly initialised one-layer
GPT-2 over it, saved as the text-generation recipe saves its folder.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

END_OF_TEXT = "<|endoftext|>"
CORPUS = [
    "The café serves crème brûlée and naïve coffee.",
    "東京 and 大阪 are cities; 日本語 is a language.",
    "Emoji like 🙂 and 🚀 take four bytes each.",
    "Models learn text one token at a time, then they generate more text.",
] * 4


def build_tiny_model(folder: Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=END_OF_TEXT, eos_token=END_OF_TEXT, pad_token=END_OF_TEXT
    )
    eos = tokenizer.eos_token_id
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=64,
        n_embd=32,
        n_layer=1,
        n_head=2,
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    model = GPT2LMHeadModel(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def model_tarball(folder: Path) -> bytes:
    """model.tar.gz with the folder at its root, as the recipe's artifact is."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    return buffer.getvalue()
