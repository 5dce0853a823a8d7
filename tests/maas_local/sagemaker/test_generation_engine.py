"""The continuous-batching generation engine on a tiny GPT-2 built in the test.

Parameters follow LMI's GenerationParameters:
https://docs.djl.ai/docs/serving/serving/docs/lmi/user_guides/lmi_input_output_schema.html
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from maas_local.sagemaker.detokenizer import REPLACEMENT, Detokenizer
from maas_local.sagemaker.generation_engine import (
    GenerationEngine,
    InvalidRequest,
    QueueFull,
    SamplingParams,
    TokenEvent,
)
from tests.maas_local.sagemaker.generation_support import build_tiny_model

PROMPTS = ["The café", "東京 and", "Emoji like 🙂", "Models learn"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="module")
def engine(model_dir: Path):
    engine = GenerationEngine(model_dir, max_batch_size=8, max_queue=16, device="cpu")
    yield engine
    engine.close()


def test_greedy_output_equals_hugging_face_generate(model_dir: Path, engine) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    for prompt in PROMPTS[:2]:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        expected = model.generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=12
        )[0, ids.shape[1] :].tolist()
        finished = engine.generate(prompt, SamplingParams(max_new_tokens=12, ignore_eos=True))
        assert [t.id for t in finished.tokens] == expected


def test_same_seed_gives_the_same_text_alone_and_in_a_shared_batch(engine) -> None:
    params = SamplingParams(max_new_tokens=16, do_sample=True, temperature=1.0, seed=42)
    alone = engine.generate("東京 and", params)
    others = [
        engine.submit(p, SamplingParams(max_new_tokens=48, do_sample=True, seed=i))
        for i, p in enumerate(PROMPTS[:3])
    ]
    shared = engine.submit("東京 and", params)
    together = shared.result(timeout=60)
    for other in others:
        other.result(timeout=60)
    assert alone.max_shared == 1
    assert together.max_shared > 1  # it did share forward passes with other streams
    assert [t.id for t in together.tokens] == [t.id for t in alone.tokens]
    assert together.generated_text == alone.generated_text


def test_different_seeds_sample_different_texts(engine) -> None:
    texts = {
        engine.generate(
            "Models", SamplingParams(max_new_tokens=12, do_sample=True, seed=s)
        ).generated_text
        for s in range(4)
    }
    assert len(texts) > 1


def test_concurrent_streams_share_decode_steps(engine) -> None:
    before = engine.stats.shared_steps
    params = SamplingParams(max_new_tokens=40, ignore_eos=True)
    streams = [engine.submit(p, params) for p in PROMPTS]
    results = [s.result(timeout=60) for s in streams]
    assert engine.stats.shared_steps > before
    assert max(r.max_shared for r in results) == len(PROMPTS)
    assert engine.stats.max_batch >= len(PROMPTS)


def test_max_new_tokens_ends_with_length(engine) -> None:
    finished = engine.generate("Models", SamplingParams(max_new_tokens=5, ignore_eos=True))
    assert finished.generated_tokens == 5
    assert finished.finish_reason == "length"


def test_a_stop_sequence_ends_the_text_before_it(engine) -> None:
    params = SamplingParams(max_new_tokens=24, ignore_eos=True)
    free = engine.generate("Models learn", params).generated_text
    stop = free[4:6]
    assert stop.isprintable() and free.index(stop) > 0, free
    stopped = engine.generate("Models learn", SamplingParams(max_new_tokens=24, stop=(stop,)))
    assert stopped.finish_reason == "stop_sequence"
    assert stopped.generated_text == free[: free.index(stop)]
    assert stop not in "".join(t.text for t in stopped.tokens)


def test_top_p_keeps_only_the_most_likely_token_when_tiny(engine) -> None:
    greedy = engine.generate("The café", SamplingParams(max_new_tokens=8, ignore_eos=True))
    nucleus = SamplingParams(max_new_tokens=8, do_sample=True, top_p=1e-6, seed=5, ignore_eos=True)
    sampled = engine.generate("The café", nucleus)
    assert [t.id for t in sampled.tokens] == [t.id for t in greedy.tokens]


def test_streamed_pieces_never_break_a_character_and_join_to_the_text(engine) -> None:
    stream = engine.submit("Emoji like 🙂", SamplingParams(max_new_tokens=20, seed=1))
    pieces = [e.text for e in stream if isinstance(e, TokenEvent)]
    assert "".join(pieces) == stream.result().generated_text


def test_detokenizer_holds_back_a_character_split_across_tokens(engine) -> None:
    text = "東京 🙂 café"
    ids = engine.tokenizer.encode(text)
    assert len(ids) > len(text.split()) + 3, "the tiny vocabulary should split characters"
    detok = Detokenizer(engine.tokenizer, [])
    pieces = [detok.add(i)[0] for i in ids] + [detok.flush()]
    assert "".join(pieces) == text
    assert all(REPLACEMENT not in p for p in pieces)
    assert "" in pieces  # some token ended inside a character and released nothing


def test_invalid_requests_are_refused_at_submit(engine) -> None:
    with pytest.raises(InvalidRequest):
        engine.submit("x", SamplingParams(top_p=0.0))
    with pytest.raises(InvalidRequest):
        engine.submit("word " * 80, SamplingParams())  # beyond the 64-token context


def test_a_full_queue_refuses_new_requests(model_dir: Path) -> None:
    engine = GenerationEngine(model_dir, max_batch_size=1, max_queue=1, device="cpu")
    try:
        params = SamplingParams(max_new_tokens=40, ignore_eos=True)
        accepted, refused = [], 0
        for _ in range(6):
            try:
                accepted.append(engine.submit("Models", params))
            except QueueFull:
                refused += 1
        assert refused >= 1
        assert all(s.result(timeout=60).generated_tokens == 40 for s in accepted)
    finally:
        engine.close()
