"""Hugging Face Optimum's side of benchmark 1, run in Optimum's own environment.

Optimum's ONNX Runtime package cannot be installed beside the project's pins (see
bench/optimum-requirements.txt), so bench/optimum_side.py runs this module with the project's
Python, torch, onnx and onnxruntime and with Optimum's own transformers in front of them on
PYTHONPATH. Two commands:

    prepare  exports a Hugging Face checkpoint with Optimum's exporter, quantizes it with
             Optimum's quantizer (dynamic int8, the configuration for this CPU), and quantizes
             a second ONNX file (maas's own graph of the same weights) with the same
             configuration, so both sides of the comparison serve the same int8 weights;
    serve    loads the quantized model into `ORTModelForSequenceClassification` and a
             `pipeline("text-classification")`, then answers one JSON line per request on
             stdin: {"texts": [...]} -> {"labels": [...], "scores": [[...]], "seconds": s}:
             class indexes, scores in class-index order, `seconds` the pipeline call alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

QUANTIZED_SUFFIX = "quantized"


def quantization_config():
    """Optimum's dynamic-quantization preset for the instruction set this CPU has."""
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    from bench.common import cpu_flags  # ROOT is on this process's PYTHONPATH too

    flags = cpu_flags() or set()
    if "avx512_vnni" in flags:
        return "avx512_vnni", AutoQuantizationConfig.avx512_vnni(is_static=False)
    if "avx512f" in flags:
        return "avx512", AutoQuantizationConfig.avx512(is_static=False)
    return "avx2", AutoQuantizationConfig.avx2(is_static=False)


def prepare(hf_dir: Path, out_dir: Path, other_onnx: Path | None) -> dict:
    from optimum.onnxruntime import ORTModelForSequenceClassification, ORTQuantizer
    from transformers import AutoTokenizer

    exported = ORTModelForSequenceClassification.from_pretrained(str(hf_dir), export=True)
    exported.save_pretrained(str(out_dir))
    AutoTokenizer.from_pretrained(str(hf_dir)).save_pretrained(str(out_dir))
    name, config = quantization_config()
    ORTQuantizer.from_pretrained(str(out_dir), file_name="model.onnx").quantize(
        save_dir=str(out_dir), quantization_config=config, file_suffix=QUANTIZED_SUFFIX
    )
    facts = {"preset": name, "model": f"model_{QUANTIZED_SUFFIX}.onnx"}
    if other_onnx is not None:  # maas's graph of the same weights, quantized the same way
        ORTQuantizer.from_pretrained(str(other_onnx.parent), file_name=other_onnx.name).quantize(
            save_dir=str(other_onnx.parent), quantization_config=config,
            file_suffix=QUANTIZED_SUFFIX,
        )  # fmt: skip
        facts["other"] = f"{other_onnx.stem}_{QUANTIZED_SUFFIX}.onnx"
    return facts


def serve(model_dir: Path, threads: int, batch_size: int, max_len: int) -> None:
    import onnxruntime as ort
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoTokenizer, pipeline

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    model = ORTModelForSequenceClassification.from_pretrained(
        str(model_dir),
        file_name=f"model_{QUANTIZED_SUFFIX}.onnx",
        session_options=options,
        provider="CPUExecutionProvider",
    )
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        texts = json.loads(line)["texts"]
        started = time.perf_counter()
        out = pipe(texts, batch_size=batch_size, truncation=True, max_length=max_len, top_k=None)
        seconds = time.perf_counter() - started
        # top_k=None: every class's score, ordered by score; answer them in class-index order
        order = sorted(model.config.label2id, key=model.config.label2id.__getitem__)
        scores = [[{d["label"]: d["score"] for d in ranked}[k] for k in order] for ranked in out]
        labels = [max(range(len(row)), key=row.__getitem__) for row in scores]
        print(json.dumps({"labels": labels, "scores": scores, "seconds": seconds}), flush=True)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    prep = sub.add_parser("prepare")
    prep.add_argument("--hf-dir", type=Path, required=True)
    prep.add_argument("--out-dir", type=Path, required=True)
    prep.add_argument("--also-quantize", type=Path, default=None)
    srv = sub.add_parser("serve")
    srv.add_argument("--model-dir", type=Path, required=True)
    srv.add_argument("--threads", type=int, required=True)
    srv.add_argument("--batch-size", type=int, default=32)
    srv.add_argument("--max-len", type=int, required=True)
    args = p.parse_args(argv)
    if args.cmd == "prepare":
        print(json.dumps(prepare(args.hf_dir, args.out_dir, args.also_quantize)))
    else:
        serve(args.model_dir, args.threads, args.batch_size, args.max_len)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
