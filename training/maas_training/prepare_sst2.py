"""Splits SST-2's `train.tsv` into training rows and a validation set of whole sentences.

    python -m maas_training.prepare_sst2 --tsv ../shared/data/sst2/train.tsv --out data/sst2

SST-2's rows are phrases cut from about 6,900 movie-review sentences: "the movie", "the
movie is charming", and the whole sentence are three rows. A random split therefore scores
phrases of the very sentences the model trained on. This split holds out whole sentences and
keeps every piece of them out of training:

1. **Candidates** are the rows of at least `--min-words` words that no other row contains
   (matched on word boundaries): rows that are not a piece of something longer.
2. **Held out**: `--held-out` of them, drawn in a seeded order.
3. **Dropped from training**: every row that stands in a substring relation with a held-out
   row, in either direction, on word boundaries: the held-out row's own phrases (down to
   single words) and any row that contains a held-out row (duplicates included).

Words are the whitespace-separated tokens of the lower-cased text (SST-2 is already tokenised:
"it 's", "does n't"). Writes `train/train.tsv`, `validation/validation.tsv` and `split.json`
(the parameters and the row counts).
"""

from __future__ import annotations

import argparse
import bisect
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maas_training import data

HELD_OUT, MIN_WORDS, SEED = 1000, 15, 20240601


@dataclass
class SentenceSplit:
    train: list[tuple[str, str]]  # (label, text)
    validation: list[tuple[str, str]]
    dropped: int  # rows in a substring relation with a held-out sentence

    def summary(self, **params: object) -> dict[str, object]:
        return {
            **params,
            "train_rows": len(self.train),
            "validation_rows": len(self.validation),
            "dropped_rows": self.dropped,
        }


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


class _Corpus:
    """Every row's normalised text in one string, for word-boundary containment lookups."""

    def __init__(self, texts: list[str]):
        self.texts = texts
        # "\n <row> \n <row> \n": a needle " w1 w2 " can only match whole words of one row.
        self.joined = "\n" + "".join(f" {t} \n" for t in texts)
        self.starts: list[int] = []
        pos = 1
        for t in texts:
            self.starts.append(pos)
            pos += len(t) + 3

    def containing(self, text: str) -> list[int]:
        """Indexes of the rows that contain `text` on word boundaries (itself included)."""
        needle, found = f" {text} ", []
        at = self.joined.find(needle)
        while at != -1:
            found.append(bisect.bisect_right(self.starts, at) - 1)
            at = self.joined.find(needle, at + 1)
        return found


def _phrases(text: str) -> set[str]:
    words = text.split()
    return {" ".join(words[a:b]) for a in range(len(words)) for b in range(a + 1, len(words) + 1)}


def sentence_split(
    rows: list[tuple[str, str]],
    held_out: int = HELD_OUT,
    min_words: int = MIN_WORDS,
    seed: int = SEED,
) -> SentenceSplit:
    """Held-out whole sentences, and the training rows that share no phrase relation with them."""
    texts = [normalise(t) for _, t in rows]
    corpus = _Corpus(texts)
    long_rows = [i for i, t in enumerate(texts) if len(t.split()) >= min_words]
    order = [long_rows[k] for k in np.random.default_rng(seed).permutation(len(long_rows))]
    chosen: list[int] = []
    seen: set[str] = set()
    for i in order:
        if len(chosen) == held_out:
            break
        if texts[i] in seen:
            continue  # a duplicate of a held-out sentence is dropped below, not held out twice
        if any(texts[j] != texts[i] for j in corpus.containing(texts[i])):
            continue  # a piece of a longer row: not a whole sentence
        chosen.append(i)
        seen.add(texts[i])
    if len(chosen) < held_out:
        raise ValueError(
            f"only {len(chosen)} rows of at least {min_words} words are whole sentences; "
            f"asked to hold out {held_out}"
        )
    related: set[int] = set()
    pieces: set[str] = set()
    for i in chosen:
        pieces |= _phrases(texts[i])  # rows inside the held-out sentence
        related.update(corpus.containing(texts[i]))  # rows around it, and its duplicates
    related.update(j for j, t in enumerate(texts) if t in pieces)
    held = set(chosen)
    return SentenceSplit(
        train=[rows[j] for j in range(len(rows)) if j not in related],
        validation=[rows[i] for i in sorted(held)],
        dropped=len(related - held),
    )


def read_tsv(path: Path) -> list[tuple[str, str]]:
    """(label, text) rows of an SST-2 `label<TAB>sentence` file, as train.py reads a channel
    (a header line skipped), each text stripped."""
    labels, texts = data.read_tsv(path)
    return [(label, text.strip()) for label, text in zip(labels, texts, strict=True)]


def write_tsv(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("label\tsentence\n" + "".join(f"{y}\t{t}\n" for y, t in rows), "utf-8")


def write_split(tsv: Path, out: Path, held_out: int, min_words: int, seed: int) -> dict:
    split = sentence_split(read_tsv(tsv), held_out, min_words, seed)
    write_tsv(out / "train" / "train.tsv", split.train)
    write_tsv(out / "validation" / "validation.tsv", split.validation)
    summary = split.summary(source=str(tsv), held_out=held_out, min_words=min_words, seed=seed)
    (out / "split.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--tsv", type=Path, required=True, help="SST-2's train.tsv")
    p.add_argument("--out", type=Path, required=True, help="receives train/ and validation/")
    p.add_argument("--held-out", type=int, default=HELD_OUT, help="sentences held out")
    p.add_argument("--min-words", type=int, default=MIN_WORDS, help="words in a held-out row")
    p.add_argument("--seed", type=int, default=SEED, help="seeds which sentences are held out")
    args = p.parse_args(argv)
    print(json.dumps(write_split(args.tsv, args.out, args.held_out, args.min_words, args.seed)))


if __name__ == "__main__":
    main()
