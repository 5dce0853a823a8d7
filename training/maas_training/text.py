"""Text to token ids, the same way in training and in serving.

text-lstm uses a word vocabulary built from its training data (saved as vocab.json);
text-transformer uses the Hugging Face tokenizer saved next to its weights (tokenizer/).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

PAD_ID, UNK_ID = 0, 1
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class WordVocab:
    """Word-level vocabulary: id 0 pads, id 1 stands for every unknown word."""

    def __init__(self, itos: list[str], max_len: int):
        self.itos = itos
        self.stoi = {w: i for i, w in enumerate(itos)}
        self.max_len = max_len
        self.pad_id = PAD_ID

    @classmethod
    def build(cls, texts: Iterable[str], max_size: int, min_freq: int, max_len: int) -> WordVocab:
        counts = Counter(w for t in texts for w in words(t))
        # Ties break alphabetically so the same data always gives the same ids.
        ranked = sorted(
            (w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w)
        )
        return cls(["<pad>", "<unk>", *ranked[: max(0, max_size - 2)]], max_len)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [
            [self.stoi.get(w, UNK_ID) for w in words(t)][: self.max_len] or [UNK_ID] for t in texts
        ]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"max_len": self.max_len, "itos": self.itos}))

    @classmethod
    def load(cls, path: Path) -> WordVocab:
        d = json.loads(path.read_text())
        return cls(d["itos"], d["max_len"])


class HFTokenizer:
    """A saved Hugging Face tokenizer, loaded from a local folder only."""

    def __init__(self, path: str | Path, max_len: int):
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.max_len = max_len
        self.pad_id = int(self.tok.pad_token_id or 0)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        out = self.tok(list(texts), truncation=True, max_length=self.max_len)
        return [list(ids) for ids in out["input_ids"]]

    def save(self, path: Path) -> None:
        self.tok.save_pretrained(str(path))


def pad(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pads to the longest sequence: ids (N, T) int64, lengths (N,) int64."""
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    ids = np.full((len(seqs), int(lengths.max(initial=1))), pad_id, dtype=np.int64)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
    return ids, lengths


def length_buckets(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Index groups of similar length, so each padded batch wastes little compute."""
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
