"""Export, compress and package a trained model dir.

python training/export.py onnx --model-dir model                 # model.onnx + parity check
python training/export.py quantize --model-dir model --data test # int8 size/accuracy, .int8.onnx
python training/export.py package --model-dir model --out model.tar.gz [--onnx fp32|int8|both]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from maas_training.artifacts import ONNX_FILES, load_model, package
from maas_training.backends import OnnxBackend, TorchBackend
from maas_training.recipes import recipe_named


def io_names(config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The graph's input names (by input kind) and output names (by the recipe's task)."""
    inputs = ["input_ids", "lengths"] if config["input"]["kind"] == "text" else ["input"]
    return inputs, list(recipe_named(config["recipe"]).task.output_names)


def sample_inputs(config: dict, batch: int, seq_len: int, seed: int) -> list[np.ndarray]:
    """Random inputs of the model's kind; lengths vary so padding is exercised."""
    rng = np.random.default_rng(seed)
    if config["input"]["kind"] == "image":
        return [rng.random((batch, *config["input"]["shape"]), dtype=np.float32)]
    vocab = config["model_config"]["vocab_size"]
    ids = rng.integers(2, vocab, size=(batch, seq_len), dtype=np.int64)
    lengths = np.maximum(1, seq_len - np.arange(batch) * 3).astype(np.int64)
    for row, n in enumerate(lengths):
        ids[row, n:] = 0
    return [ids, lengths]


def export_onnx(model_dir: Path, opset: int = 17) -> Path:
    model, config = load_model(model_dir)
    graph = recipe_named(config["recipe"]).task.serving_graph(model)
    in_names, out_names = io_names(config)
    dynamic = {
        "input_ids": {0: "batch", 1: "tokens"},
        "lengths": {0: "batch"},
        "input": {0: "batch"},
        "logits": {0: "batch"},
        "anomaly_score": {0: "batch"},
        "embedding": {0: "batch"},
    }
    example = tuple(torch.from_numpy(a) for a in sample_inputs(config, 2, 12, seed=0))
    out = model_dir / ONNX_FILES["fp32"]
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter's notes on LSTM batch sizes
        torch.onnx.export(
            graph,
            example,
            str(out),
            dynamo=False,
            opset_version=opset,
            input_names=in_names,
            output_names=out_names,
            dynamic_axes={k: v for k, v in dynamic.items() if k in in_names + out_names},
        )
    return out


def max_abs_diff(model_dir: Path, onnx_file: Path, batch: int = 5, seq_len: int = 17) -> float:
    """Largest |torch - onnxruntime| over every output, on inputs shaped unlike the export's."""
    config = json.loads((model_dir / "config.json").read_text())
    inputs = sample_inputs(config, batch, seq_len, seed=1)
    ref = TorchBackend.from_dir(model_dir).run(inputs)
    got = OnnxBackend(onnx_file).run(inputs)
    return max(float(np.abs(a - b).max()) for a, b in zip(ref, got, strict=True))


def state_bytes(model: nn.Module) -> int:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def quantize_torch(model: nn.Module) -> nn.Module:
    """Dynamic int8: Linear and LSTM weights stored as int8, activations quantized on the fly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(model, {nn.Linear, nn.LSTM}, dtype=torch.qint8)


def quantize_onnx(model_dir: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32, int8 = model_dir / ONNX_FILES["fp32"], model_dir / ONNX_FILES["int8"]
    if not fp32.exists():
        export_onnx(model_dir)
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    return int8


def cmd_quantize(model_dir: Path, data: str | None) -> dict:
    from maas_training.evaluate import score
    from maas_training.serving import load

    fp32_model, _ = load_model(model_dir)
    report: dict = {
        "torch_fp32_bytes": state_bytes(fp32_model),
        "torch_int8_bytes": state_bytes(quantize_torch(fp32_model)),
    }
    int8_file = quantize_onnx(model_dir)
    report["onnx_fp32_bytes"] = (model_dir / ONNX_FILES["fp32"]).stat().st_size
    report["onnx_int8_bytes"] = int8_file.stat().st_size
    report["onnx_int8_max_abs_diff"] = max_abs_diff(model_dir, int8_file)
    if data:
        loaded = load(model_dir)
        fp32 = TorchBackend.from_dir(model_dir)
        for name, backend in (
            ("torch_fp32", fp32),
            ("torch_int8", TorchBackend(quantize_torch(fp32.model), loaded.task)),
            ("onnx_int8", OnnxBackend(int8_file)),
        ):
            loaded.backend = backend
            report.update({f"{name}_{k}": v for k, v in score(loaded, data).items() if k != "rows"})
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    o = sub.add_parser("onnx", help="export model.onnx and check it against PyTorch")
    o.add_argument("--model-dir", required=True, help="a trained model dir")
    o.add_argument("--opset", type=int, default=17, help="ONNX opset version")
    o.add_argument(
        "--tolerance", type=float, default=1e-4, help="fail when max abs diff exceeds this"
    )
    q = sub.add_parser("quantize", help="dynamic int8 of Linear/LSTM layers, in PyTorch and ONNX")
    q.add_argument("--model-dir", required=True, help="a trained model dir")
    q.add_argument(
        "--data", default=None, help="labelled channel to measure accuracy before and after"
    )
    k = sub.add_parser("package", help="write model.tar.gz in SageMaker's layout")
    k.add_argument("--model-dir", required=True, help="a trained model dir")
    k.add_argument("--out", required=True, help="path of the model.tar.gz to write")
    k.add_argument(
        "--onnx",
        choices=("none", "fp32", "int8", "both"),
        default="none",
        help="ONNX files to include next to the weights (export them first)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    model_dir = Path(a.model_dir)
    if a.command == "onnx":
        path = export_onnx(model_dir, a.opset)
        diff = max_abs_diff(model_dir, path)
        print(f"wrote {path} max_abs_diff={diff:.3g} tolerance={a.tolerance:g}", flush=True)
        if not diff <= a.tolerance:
            print(
                f"ONNX parity check failed: max abs diff {diff:.3g} > {a.tolerance:g}",
                file=sys.stderr,
            )
            return 1
    elif a.command == "quantize":
        print(json.dumps(cmd_quantize(model_dir, a.data), indent=2), flush=True)
    else:
        print(f"wrote {package(model_dir, a.out, a.onnx)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
