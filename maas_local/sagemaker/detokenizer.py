"""Incremental detokenisation for streamed generation, with stop sequences.

A token may end in the middle of a UTF-8 character (byte-level BPE splits multi-byte
characters across tokens): its text is held back until the character is complete, so a stream
never carries a broken character. Text that could still turn into the start of a stop sequence
is held back too (at most the longest stop sequence less one character), so the stop sequence
itself is never streamed: the output ends before it, as vLLM's default
(`include_stop_str_in_output: false`) does. Joining every released piece gives `text`.
"""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"  # what decoding yields for an incomplete UTF-8 sequence


class Detokenizer:
    def __init__(self, tokenizer: Any, prompt_ids: list[int], stop: tuple[str, ...] = ()) -> None:
        self.tokenizer = tokenizer
        self.stop = stop
        self._hold = max((len(s) for s in stop), default=1) - 1
        self._ids: list[int] = []
        self._prefix = 0  # ids[_prefix:_read] decode to text already taken
        self._read = 0
        self.text = ""  # decoded so far (cut at a stop sequence once one is found)
        self._released = 0
        self.stopped = False

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def add(self, token: int, special: bool = False) -> tuple[str, bool]:
        """Takes one generated token; returns (text now safe to stream, stop sequence hit)."""
        if self.stopped:
            return "", True
        if not special:
            self._ids.append(token)
            before = self._decode(self._ids[self._prefix : self._read])
            after = self._decode(self._ids[self._prefix :])
            if not after.endswith(REPLACEMENT):  # else: a character is still incomplete
                start = max(0, len(self.text) - self._hold)
                self.text += after[len(before) :]
                self._prefix, self._read = self._read, len(self._ids)
                self._cut_at_stop(start)
        if self.stopped:
            return self._release(len(self.text)), True
        return self._release(len(self.text) - self._hold), False

    def _cut_at_stop(self, start: int) -> None:
        hits = [i for i in (self.text.find(s, start) for s in self.stop) if i >= 0]
        if hits:
            self.text = self.text[: min(hits)]
            self.stopped = True

    def _release(self, upto: int) -> str:
        upto = max(upto, self._released)
        piece = self.text[self._released : upto]
        self._released = upto
        return piece

    def flush(self) -> str:
        """The generation ended: everything held back, including an incomplete character as
        the decoder renders it."""
        if not self.stopped and self._read < len(self._ids):
            before = self._decode(self._ids[self._prefix : self._read])
            self.text += self._decode(self._ids[self._prefix :])[len(before) :]
            self._read = len(self._ids)
            self._cut_at_stop(max(0, self._released - self._hold))
        return self._release(len(self.text))
