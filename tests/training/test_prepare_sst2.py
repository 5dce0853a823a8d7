"""The sentence-level SST-2 split: whole sentences held out, none of their pieces in training.

The rule (maas_training/prepare_sst2.py, training/README.md): held-out rows are long rows that
no other row contains; every row in a word-boundary substring relation with a held-out row,
either way, leaves training. The checks on the real file below use an implementation of
their own (sets of word n-grams), not the module's string search.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maas_training.prepare_sst2 import normalise, read_tsv, sentence_split, write_split

SST2 = Path(__file__).resolve().parents[3] / "shared" / "data" / "sst2" / "train.tsv"

ROWS = [
    ("1", "a gorgeous , witty , seductive movie ."),  # a whole sentence
    ("1", "gorgeous , witty"),  # inside it: dropped
    ("1", "witty"),  # inside it: dropped
    ("0", "wit"),  # not a word of it ("witty" is): kept
    ("1", "seductive movie . and more"),  # overlaps it without containment: kept
    ("1", "a gorgeous , witty , seductive movie ."),  # its duplicate: dropped
    ("0", "the plot is a mess from start to finish"),  # a sentence ...
    ("0", "sadly , the plot is a mess from start to finish"),  # ... inside a longer one
    ("0", "plot"),
]


def test_held_out_rows_are_whole_sentences_and_their_pieces_leave_training():
    split = sentence_split(ROWS, held_out=2, min_words=5, seed=0)

    held = {t for _, t in split.validation}
    # "the plot is a mess ..." sits inside a longer row, so it is never held out; the longer
    # row and the gorgeous sentence are the two whole sentences of five words or more.
    assert held == {
        "a gorgeous , witty , seductive movie .",
        "sadly , the plot is a mess from start to finish",
    }
    kept = [t for _, t in split.train]
    assert kept == ["wit", "seductive movie . and more"]
    assert split.dropped == len(ROWS) - 2 - len(kept)


def test_a_held_out_row_is_never_inside_another_row():
    rows = [("1", "one two three four five"), ("1", "zero one two three four five six")]
    with pytest.raises(ValueError, match="only 1 rows"):
        sentence_split(rows, held_out=2, min_words=5, seed=0)


def test_matching_is_on_word_boundaries_and_ignores_case_and_spacing():
    rows = [("1", "The  Cat sat on the mat today"), ("0", "cat sat"), ("0", "at on")]
    split = sentence_split(rows, held_out=1, min_words=5, seed=0)
    assert [t for _, t in split.train] == ["at on"]  # "at" is inside "sat", not a word of it


def _ngrams(text: str, min_n: int = 1) -> set[str]:
    w = text.split()
    return {" ".join(w[a:b]) for a in range(len(w)) for b in range(a + min_n, len(w) + 1)}


@pytest.mark.skipif(not SST2.is_file(), reason=f"SST-2 is not at {SST2}")
def test_the_real_split_leaks_no_phrase_either_way(tmp_path):
    summary = write_split(SST2, tmp_path, held_out=1000, min_words=15, seed=20240601)
    train = [normalise(t) for _, t in read_tsv(tmp_path / "train" / "train.tsv")]
    held = [normalise(t) for _, t in read_tsv(tmp_path / "validation" / "validation.tsv")]
    every = [normalise(t) for _, t in read_tsv(SST2)]

    assert summary["validation_rows"] == len(held) == len(set(held)) == 1000
    assert summary["train_rows"] == len(train)
    assert json.loads((tmp_path / "split.json").read_text())["seed"] == 20240601
    assert all(len(h.split()) >= 15 for h in held)
    # no training row is a piece of a held-out sentence
    pieces = set().union(*(_ngrams(h) for h in held))
    assert not pieces.intersection(train)
    # no training row contains a held-out sentence (held-out rows have 15+ words)
    held_set = set(held)
    assert not any(held_set & _ngrams(t, 15) for t in train if len(t.split()) >= 15)
    # and no row of the whole file contains a held-out sentence but the sentence itself
    longer = [t for t in every if len(t.split()) > 15]
    assert not any(held_set & (_ngrams(t, 15) - {t}) for t in longer)
    # the split is seeded
    again = sentence_split(read_tsv(SST2), 1000, 15, 20240601)
    assert [normalise(t) for _, t in again.validation] == held
