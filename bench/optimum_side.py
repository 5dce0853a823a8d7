"""Hugging Face Optimum (ONNX Runtime) as benchmark 1's expert baseline, from the project side.

Optimum's ONNX Runtime package cannot be installed beside the project's pins:
`install_error()` asks pip, live, and quotes its answer. `make bench` and `make test` install
it instead into a folder of its own, `.venv-optimum/` (`pip install --no-deps --target`, the
pins in bench/optimum-requirements.txt): Optimum and the transformers it supports, in front of
the project venv's own torch, onnx and onnxruntime. bench/optimum_worker.py runs there, in a
subprocess, and this module drives it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("MAAS_OPTIMUM_SITE") or ROOT / ".venv-optimum")
REQUIREMENTS = Path(__file__).resolve().parent / "optimum-requirements.txt"
QUANTIZED = "model_quantized.onnx"  # what Optimum's quantizer writes for model.onnx


def _env() -> dict[str, str]:
    if not (SITE / "optimum" / "onnxruntime").is_dir():
        raise FileNotFoundError(
            f"Optimum's environment is not installed at {SITE}: run `make optimum-env`"
        )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join([str(SITE), str(ROOT)])
    env["HF_HUB_OFFLINE"] = "1"
    return env


def install_error(timeout: float = 240.0) -> str:
    """pip's own answer to installing Optimum's ONNX Runtime extra beside the project's
    installed pins (a dry run, constrained to `pip freeze` of this venv: nothing changes),
    reduced to its error lines; "" if it would install."""
    import tempfile

    spec = [ln.split("#")[0].strip() for ln in REQUIREMENTS.read_text().splitlines()]
    wanted = next(s for s in spec if s.startswith("optimum-onnx"))
    pip = [sys.executable, "-m", "pip"]
    try:
        frozen = subprocess.run([*pip, "freeze", "--exclude-editable"], capture_output=True,
                                text=True, timeout=60, check=True).stdout  # fmt: skip
        with tempfile.NamedTemporaryFile("w", suffix=".txt") as pins:
            pins.write(frozen)
            pins.flush()
            done = subprocess.run(
                [*pip, "install", "--dry-run", "-c", pins.name,
                 wanted.replace("optimum-onnx", "optimum-onnx[onnxruntime]")],
                capture_output=True, text=True, timeout=timeout,
            )  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"pip gave no answer in {timeout:.0f} s"
    if done.returncode == 0:
        return ""
    lines = [ln.strip() for ln in (done.stdout + done.stderr).splitlines()]
    wanted_lines = r"depends on|\(constraint\)|^ERROR: Cannot"
    keep = sorted((ln for ln in lines if re.search(wanted_lines, ln)),
                  key=lambda ln: not ln.startswith("ERROR"))  # fmt: skip
    return "; ".join(dict.fromkeys(keep)) or done.stderr.strip()[-400:]


def prepare(model_dir: Path, work: Path, log=print) -> Path:
    """Optimum's folder for the model at `model_dir` (exported and quantized by Optimum), and
    `model_dir/model_quantized.onnx`: maas's own graph quantized with the same preset."""
    from maas_training.artifacts import load_model

    out = work / "optimum"
    if (out / QUANTIZED).exists() and (model_dir / QUANTIZED).exists():
        return out
    hf = work / "hf"
    wrapper, config = load_model(model_dir)
    wrapper.hf.save_pretrained(str(hf))  # the fine-tuned weights as a plain HF checkpoint
    tokenizer = model_dir / config["input"]["tokenizer"]
    for f in tokenizer.iterdir():
        (hf / f.name).write_bytes(f.read_bytes())
    if not (model_dir / "model.onnx").exists():
        raise FileNotFoundError(f"{model_dir} has no model.onnx: run training/export.py onnx first")
    log("[optimum] exporting and quantizing with Optimum (dynamic int8)")
    done = subprocess.run(
        [sys.executable, "-m", "bench.optimum_worker", "prepare", "--hf-dir", str(hf),
         "--out-dir", str(out), "--also-quantize", str(model_dir / "model.onnx")],
        cwd=ROOT, env=_env(), capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"Optimum's prepare failed: {done.stderr.strip()[-2000:]}")
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    (out / "maas-prepare.json").write_text(json.dumps(facts))
    return out


def preset(folder: Path) -> str:
    return json.loads((folder / "maas-prepare.json").read_text())["preset"]


class OptimumPipeline:
    """A running `pipeline("text-classification")` over Optimum's ORTModel, in its own process."""

    def __init__(self, folder: Path, threads: int, max_len: int, batch_size: int = 32):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.optimum_worker", "serve", "--model-dir", str(folder),
             "--threads", str(threads), "--batch-size", str(batch_size),
             "--max-len", str(max_len)],
            cwd=ROOT, env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.last_seconds = 0.0
        if "ready" not in self._read():
            raise RuntimeError("Optimum's worker did not start")

    def _read(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"Optimum's worker exited ({self.proc.wait()})")
        return json.loads(line)

    def classify(self, texts: list[str]) -> tuple[list[int], np.ndarray]:
        """Class indexes and per-class scores; `last_seconds`: the pipeline call alone."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"texts": texts}) + "\n")
        self.proc.stdin.flush()
        answer = self._read()
        self.last_seconds = answer["seconds"]
        return answer["labels"], np.asarray(answer["scores"], dtype=np.float64)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> OptimumPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serving_dir(model_dir: Path, int8_file: str, dest: Path) -> Path:
    """A view of `model_dir` (links, no copies) whose model.int8.onnx is `int8_file`: what the
    serving path loads with MAAS_INFERENCE_BACKEND=onnx-int8."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in model_dir.iterdir():
        if entry.name not in ("model.int8.onnx", "model.onnx") and not (dest / entry.name).exists():
            (dest / entry.name).symlink_to(entry.resolve())
    link = dest / "model.int8.onnx"
    link.unlink(missing_ok=True)
    link.symlink_to((model_dir / int8_file).resolve())
    return dest
