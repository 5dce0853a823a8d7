"""Continuous-batching text generation over a Hugging Face causal LM folder, with a KV cache.

The local stand-in for the LMI container's rolling-batch engine (vLLM in the cloud). One
scheduler thread owns the model. Between two decode steps it admits waiting requests (up to
`max_batch_size` running), prefills them together, and merges them into the running batch;
then one batched forward pass decodes a token for every running sequence. Finished sequences
leave the batch between steps. Ragged lengths are handled by left padding: each row of the
batch's KV cache is padded on the left, with an attention mask and explicit position ids, so
every sequence attends only to its own tokens.

Each request samples with its own `torch.Generator`, seeded from its `seed`, on its own row of
logits: the same prompt and seed give the same text whether it runs alone or shares the batch.

Use in process (what a bench needs):

    engine = GenerationEngine(model_dir, max_batch_size=16)
    streams = [engine.submit(prompt, SamplingParams(max_new_tokens=32, seed=i)) for i ...]
    texts = [s.result().generated_text for s in streams]      # or: for event in stream: ...
    engine.stats.max_batch, engine.close()
"""

from __future__ import annotations

import inspect
import itertools
import math
import os
import queue
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from maas_contract import generation as lmi
from maas_local.sagemaker.detokenizer import Detokenizer

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class QueueFull(Exception):
    """The waiting queue is at its bound (the container's job_queue_size)."""


class InvalidRequest(ValueError):
    """A request the engine cannot run (prompt too long, bad parameter value)."""


@dataclass(frozen=True)
class SamplingParams:
    """The decoding of one request, as GenerationParameters give it (maas_contract.generation).

    Greedy when `do_sample` is false or `temperature` is 0."""

    max_new_tokens: int = lmi.DEFAULT_MAX_NEW_TOKENS
    do_sample: bool = False
    temperature: float = lmi.DEFAULT_TEMPERATURE
    top_p: float = lmi.DEFAULT_TOP_P
    top_k: int = 0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    ignore_eos: bool = False

    @property
    def greedy(self) -> bool:
        return not self.do_sample or self.temperature == 0

    def check(self) -> None:
        if self.max_new_tokens < 1:
            raise InvalidRequest("max_new_tokens must be at least 1")
        if self.temperature < 0 or not math.isfinite(self.temperature):
            raise InvalidRequest("temperature must be a finite number >= 0")
        if not 0 < self.top_p <= 1:
            raise InvalidRequest("top_p must be in (0, 1]")
        if self.top_k < 0 and self.top_k != -1:
            raise InvalidRequest("top_k must be -1 (off), 0 (off) or positive")
        if self.repetition_penalty <= 0:
            raise InvalidRequest("repetition_penalty must be > 0")
        if any(not s for s in self.stop):
            raise InvalidRequest("stop sequences must not be empty")


@dataclass(frozen=True)
class TokenEvent:
    """One generated token and the text it released (may be '' while held back)."""

    id: int
    text: str
    log_prob: float
    special: bool = False


@dataclass(frozen=True)
class Finished:
    """The end of a request."""

    finish_reason: str  # lmi.FINISH_LENGTH / FINISH_EOS / FINISH_STOP / FINISH_ERROR
    generated_text: str
    prompt_token_ids: tuple[int, ...]
    tokens: tuple[TokenEvent, ...]
    error: str | None = None
    max_shared: int = 0  # the most sequences that shared one of this request's forward passes

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)

    @property
    def generated_tokens(self) -> int:
        return len(self.tokens)


class Stream:
    """A submitted request: iterate for TokenEvents then one Finished, or call result()."""

    def __init__(self, prompt: str, prompt_ids: list[int], params: SamplingParams) -> None:
        self.prompt = prompt
        self.prompt_ids = prompt_ids
        self.params = params
        self.cancelled = False
        self.done = False  # set by the engine when it has put the Finished event
        self._events: queue.SimpleQueue[TokenEvent | Finished] = queue.SimpleQueue()
        self._finished: Finished | None = None

    def __iter__(self) -> Iterator[TokenEvent | Finished]:
        while self._finished is None:
            event = self._events.get()
            if isinstance(event, Finished):
                self._finished = event
            yield event

    def result(self, timeout: float | None = None) -> Finished:
        while self._finished is None:
            event = self._events.get(timeout=timeout)
            if isinstance(event, Finished):
                self._finished = event
        return self._finished

    def cancel(self) -> None:
        """The caller went away: the sequence leaves the batch at the next step."""
        self.cancelled = True

    def _put(self, event: TokenEvent | Finished) -> None:
        self._events.put(event)


@dataclass
class EngineStats:
    prefill_steps: int = 0
    decode_steps: int = 0
    decoded_tokens: int = 0  # sum over decode steps of the sequences in each
    max_batch: int = 0  # the most sequences one decode step carried
    shared_steps: int = 0  # decode steps that carried more than one sequence


@dataclass
class _Sequence:
    stream: Stream
    generator: torch.Generator
    detok: Detokenizer
    out_ids: list[int] = field(default_factory=list)
    tokens: list[TokenEvent] = field(default_factory=list)
    max_shared: int = 0

    @property
    def length(self) -> int:
        return len(self.stream.prompt_ids) + len(self.out_ids)


@dataclass
class _Batch:
    """Running sequences; row i of every cache tensor and of `mask` is sequences[i]."""

    sequences: list[_Sequence]
    layers: list[tuple[torch.Tensor, torch.Tensor]]  # (B, heads, T, head_dim) each
    mask: torch.Tensor  # (B, T), 0 where a row is left-padded


class GenerationEngine:
    def __init__(
        self,
        model_dir: str | Path,
        *,
        max_batch_size: int = lmi.DEFAULT_MAX_ROLLING_BATCH_SIZE,
        max_queue: int = lmi.DEFAULT_JOB_QUEUE_SIZE,
        max_model_len: int | None = None,
        device: str | None = None,
        dtype: str | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        torch_dtype = DTYPES[dtype] if dtype else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            str(model_dir), local_files_only=True, dtype=torch_dtype
        )
        self.model = model.to(self.device).eval()  # type: ignore[arg-type]  # transformers stub
        config = self.model.config
        limit = getattr(config, "n_positions", None) or getattr(
            config, "max_position_embeddings", None
        )
        self.max_model_len = min(x for x in (max_model_len, limit) if x) if limit else max_model_len
        self.eos_id = self.tokenizer.eos_token_id
        self.max_batch_size = max(1, max_batch_size)
        self.max_queue = max(0, max_queue)
        self.stats = EngineStats()
        params = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"
        self._waiting: deque[_Sequence] = deque()
        self._lock = threading.Condition()
        self._closed = False
        self._batch: _Batch | None = None
        self._thread = threading.Thread(target=self._loop, name="generation-engine", daemon=True)
        self._thread.start()

    # -- the callers' side ------------------------------------------------------------------

    def encode(self, prompt: str) -> list[int]:
        ids = list(self.tokenizer.encode(prompt))
        if not ids and self.tokenizer.bos_token_id is not None:
            ids = [self.tokenizer.bos_token_id]  # an empty prompt starts a document
        return ids

    def submit(self, prompt: str, params: SamplingParams) -> Stream:
        """Queues a request; raises InvalidRequest or QueueFull at once, never later."""
        params.check()
        prompt_ids = self.encode(prompt)
        if not prompt_ids:
            raise InvalidRequest("the prompt is empty")
        if self.max_model_len and len(prompt_ids) >= self.max_model_len:
            raise InvalidRequest(
                f"the prompt has {len(prompt_ids)} tokens; this model's maximum context "
                f"length is {self.max_model_len}"
            )
        stream = Stream(prompt, prompt_ids, params)
        generator = torch.Generator(device=self.device)
        seed = params.seed if params.seed is not None else int.from_bytes(os.urandom(7), "big")
        generator.manual_seed(seed)
        sequence = _Sequence(
            stream, generator, Detokenizer(self.tokenizer, prompt_ids, params.stop)
        )
        with self._lock:
            if self._closed:
                raise QueueFull("the engine is shut down")
            if len(self._waiting) >= self.max_queue:
                raise QueueFull(f"the queue holds {len(self._waiting)} waiting requests")
            self._waiting.append(sequence)
            self._lock.notify()
        return stream

    def generate(self, prompt: str, params: SamplingParams) -> Finished:
        return self.submit(prompt, params).result()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join(timeout=10)

    # -- the scheduler ----------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._closed and not self._waiting and self._batch is None:
                    self._lock.wait()
                if self._closed:
                    break
                room = self.max_batch_size - (len(self._batch.sequences) if self._batch else 0)
                admitted = [self._waiting.popleft() for _ in range(min(room, len(self._waiting)))]
            try:
                with torch.inference_mode():
                    if admitted:
                        self._prefill(admitted)
                    if self._batch is not None:
                        self._decode()
            except Exception as exc:  # fail what is running; the engine keeps serving
                failed = (self._batch.sequences if self._batch else []) + admitted
                self._batch = None
                for sequence in failed:
                    if not sequence.stream.done:
                        self._finish(sequence, lmi.FINISH_ERROR, f"{type(exc).__name__}: {exc}")
        for sequence in list(self._waiting) + (self._batch.sequences if self._batch else []):
            self._finish(sequence, lmi.FINISH_ERROR, "the engine shut down")

    def _forward(self, input_ids, mask, positions, layers) -> tuple[torch.Tensor, list]:
        from transformers import DynamicCache

        cache = DynamicCache(ddp_cache_data=layers) if layers else DynamicCache()
        kwargs = {self._cache_arg: cache}
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            **kwargs,
        )
        return out.logits[:, -1, :].float(), _cache_layers(cache)

    def _prefill(self, sequences: list[_Sequence]) -> None:
        """Runs the new prompts together (left-padded) and samples their first tokens."""
        longest = max(len(s.stream.prompt_ids) for s in sequences)
        ids = torch.zeros(len(sequences), longest, dtype=torch.long)
        mask = torch.zeros(len(sequences), longest, dtype=torch.long)
        for row, sequence in enumerate(sequences):
            prompt = sequence.stream.prompt_ids
            ids[row, longest - len(prompt) :] = torch.tensor(prompt)
            mask[row, longest - len(prompt) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # (B, T)
        logits, layers = self._forward(ids, mask, positions, None)
        self.stats.prefill_steps += 1
        new = _Batch(sequences, layers, mask)
        self._batch = new if self._batch is None else _merge(self._batch, new)
        self._advance(logits, sequences, shared=len(sequences))

    def _decode(self) -> None:
        """One forward for every running sequence: its last token in, its next token out."""
        batch = self._batch
        assert batch is not None
        size = len(batch.sequences)
        last = [s.out_ids[-1] for s in batch.sequences]
        ids = torch.tensor(last, dtype=torch.long, device=self.device).unsqueeze(1)  # (B, 1)
        ones = torch.ones(size, 1, dtype=batch.mask.dtype, device=self.device)
        mask = torch.cat([batch.mask, ones], dim=1)  # (B, T+1)
        positions = torch.tensor(
            [[s.length - 1] for s in batch.sequences], dtype=torch.long, device=self.device
        )  # (B, 1): the last token's own position
        logits, batch.layers = self._forward(ids, mask, positions, batch.layers)
        batch.mask = mask
        self.stats.decode_steps += 1
        self.stats.decoded_tokens += size
        self.stats.max_batch = max(self.stats.max_batch, size)
        self.stats.shared_steps += size > 1
        self._advance(logits, batch.sequences, shared=size)

    def _advance(self, logits: torch.Tensor, sequences: list[_Sequence], shared: int) -> None:
        """Samples one token per row, streams it, and drops finished rows from the batch."""
        for row, sequence in enumerate(sequences):
            sequence.max_shared = max(sequence.max_shared, shared)
            token, log_prob = _sample(logits[row], sequence)
            sequence.out_ids.append(token)
            special = token == self.eos_id
            finish = None
            if special and not sequence.stream.params.ignore_eos:
                finish = lmi.FINISH_EOS
            text, stopped = sequence.detok.add(token, special)
            if stopped:
                finish = lmi.FINISH_STOP
            elif finish is None and (
                len(sequence.out_ids) >= sequence.stream.params.max_new_tokens
                or (self.max_model_len and sequence.length >= self.max_model_len)
            ):
                finish = lmi.FINISH_LENGTH
            if finish is not None:
                text += sequence.detok.flush()
            event = TokenEvent(token, text, log_prob, special)
            sequence.tokens.append(event)
            sequence.stream._put(event)
            if finish is not None:
                self._finish(sequence, finish)
        self._drop_done()

    def _finish(self, sequence: _Sequence, reason: str, error: str | None = None) -> None:
        if sequence.stream.done:
            return
        finished = Finished(
            finish_reason=reason,
            generated_text=sequence.detok.text,
            prompt_token_ids=tuple(sequence.stream.prompt_ids),
            tokens=tuple(sequence.tokens),
            error=error,
            max_shared=sequence.max_shared,
        )
        sequence.stream.done = True
        sequence.stream._put(finished)

    def _drop_done(self) -> None:
        batch = self._batch
        if batch is None:
            return
        keep = [
            i for i, s in enumerate(batch.sequences) if not s.stream.done and not s.stream.cancelled
        ]
        for i, sequence in enumerate(batch.sequences):
            if sequence.stream.cancelled and i not in keep:
                self._finish(sequence, lmi.FINISH_ERROR, "cancelled")
        if len(keep) == len(batch.sequences):
            return
        if not keep:
            self._batch = None
            return
        index = torch.tensor(keep, device=batch.mask.device)
        mask = batch.mask.index_select(0, index)
        # Columns that every remaining row pads are dead weight: cut them.
        first = int((mask.sum(0) > 0).nonzero()[0])
        self._batch = _Batch(
            [batch.sequences[i] for i in keep],
            [
                (k.index_select(0, index)[:, :, first:], v.index_select(0, index)[:, :, first:])
                for k, v in batch.layers
            ],
            mask[:, first:],
        )


def _cache_layers(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    if hasattr(cache, "layers"):
        return [(layer.keys, layer.values) for layer in cache.layers]
    return list(zip(cache.key_cache, cache.value_cache, strict=True))  # transformers < 4.56


def _left_pad(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    if width == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = width
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def _merge(a: _Batch, b: _Batch) -> _Batch:
    """One batch of both, each left-padded to the longer cache."""
    ta, tb = a.mask.shape[1], b.mask.shape[1]
    length = max(ta, tb)
    layers = [
        (
            torch.cat([_left_pad(ka, length - ta, 2), _left_pad(kb, length - tb, 2)]),
            torch.cat([_left_pad(va, length - ta, 2), _left_pad(vb, length - tb, 2)]),
        )
        for (ka, va), (kb, vb) in zip(a.layers, b.layers, strict=True)
    ]
    mask = torch.cat([_left_pad(a.mask, length - ta, 1), _left_pad(b.mask, length - tb, 1)])
    return _Batch(a.sequences + b.sequences, layers, mask)


def _sample(logits: torch.Tensor, sequence: _Sequence) -> tuple[int, float]:
    """The next token from one row of logits, with the request's own generator; returns the
    token and its log probability under the model's distribution."""
    params = sequence.stream.params
    log_probs = torch.log_softmax(logits, dim=-1)
    scores = logits
    if params.repetition_penalty != 1.0:
        seen = torch.tensor(
            sorted(set(itertools.chain(sequence.stream.prompt_ids, sequence.out_ids))),
            device=logits.device,
        )
        picked = scores[seen]
        picked = torch.where(
            picked > 0, picked / params.repetition_penalty, picked * params.repetition_penalty
        )
        scores = scores.clone()
        scores[seen] = picked
    if params.greedy:
        token = int(torch.argmax(scores))
        return token, float(log_probs[token])
    scores = scores / params.temperature
    if params.top_k > 0:
        kth = torch.topk(scores, min(params.top_k, scores.numel())).values[-1]
        scores = scores.masked_fill(scores < kth, -math.inf)
    probs = torch.softmax(scores, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # mass ahead of each token
        sorted_probs = sorted_probs.masked_fill(before >= params.top_p, 0.0)
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    token = int(torch.multinomial(probs, 1, generator=sequence.generator))
    return token, float(log_probs[token])
