"""Hugging Face Optimum's path (benchmark 1's expert baseline) answers as the plain path does,
and as maas's serving path does on the same int8 weights.

Optimum runs in its own environment (bench/optimum_side.py says why), installed by `make test`
(`make optimum-env`). Stated tolerances (absolute), with what was measured in brackets:
- Optimum's int8 pipeline against plain PyTorch fp32: probabilities within 0.25 (see
  test_fast_paths.py: dynamic int8 moves the probabilities of this untrained-head model that
  much), and the same label wherever fp32 is at least 75% sure.
- maas's serving path on its own graph quantized by Optimum's quantizer, against Optimum's
  pipeline on Optimum's export quantized by the same preset: probabilities within 0.02 (6e-8).
  Both quantize activations dynamically over their own padded batch (maas: length buckets;
  the pipeline: batches of 32 in arrival order), so the same weights still answer a little
  differently.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench import optimum_side
from tests.bench.sentences import SENTENCES
from tests.bench.test_fast_paths import INT8_PROBS, SURE, load, predictions

pytestmark = pytest.mark.slow

SAME_WEIGHTS_PROBS = 0.02


@pytest.fixture(scope="module")
def optimum_answers(minilm_dir, tmp_path_factory):
    folder = optimum_side.prepare(minilm_dir, tmp_path_factory.mktemp("optimum"))
    with optimum_side.OptimumPipeline(folder, threads=2, max_len=64) as pipe:
        labels, scores = pipe.classify(SENTENCES)
    return folder, labels, scores


def test_optimum_quantizes_with_its_own_preset_for_this_cpu(optimum_answers):
    folder, _, _ = optimum_answers
    assert (folder / optimum_side.QUANTIZED).stat().st_size > 0
    assert optimum_side.preset(folder) in ("avx2", "avx512", "avx512_vnni")


def test_optimum_pipeline_answers_as_plain_pytorch(optimum_answers, minilm_dir, monkeypatch):
    _, labels, scores = optimum_answers
    want = np.array(
        [p["probabilities"] for p in predictions(load(minilm_dir, "torch", monkeypatch), SENTENCES)]
    )

    print("optimum int8 vs torch fp32: max abs diff", np.abs(scores - want).max())
    np.testing.assert_allclose(scores, want, atol=INT8_PROBS, rtol=0)
    sure = [i for i, p in enumerate(want) if p.max() >= SURE]
    assert len(sure) >= 3
    assert [labels[i] for i in sure] == [int(np.argmax(want[i])) for i in sure]


def test_maas_on_optimum_quantized_weights_answers_as_optimum(
    optimum_answers, minilm_dir, tmp_path, monkeypatch
):
    _, labels, scores = optimum_answers
    view = optimum_side.serving_dir(minilm_dir, optimum_side.QUANTIZED, tmp_path / "view")
    model = load(view, "onnx-int8", monkeypatch)
    got = np.array([p["probabilities"] for p in predictions(model, SENTENCES)])

    print("maas vs optimum, same int8 weights: max abs diff", np.abs(got - scores).max())
    np.testing.assert_allclose(got, scores, atol=SAME_WEIGHTS_PROBS, rtol=0)
