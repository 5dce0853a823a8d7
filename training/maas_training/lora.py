"""LoRA fine-tuning of a causal LM with peft: low-rank adapters train, the base weights stay.

`wrap` freezes the pretrained model and adds a rank-`r` update B·A (scaled by alpha / r) beside
each targeted projection; only A and B train, so the optimizer state and the checkpoints stay
small. `save_merged` writes the adapter on its own (adapter/: adapter_config.json and
adapter_model.safetensors, which `peft.PeftModel.from_pretrained(base, "adapter")` reuses)
and then folds B·A into the weights, so the model folder is a plain Hugging Face one that
AutoModelForCausalLM and a vLLM server load with no peft at all.

peft is imported only when LoRA is asked for: the other recipes run without it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from maas_training.models import hf_offline

if TYPE_CHECKING:
    from transformers import PreTrainedModel

ADAPTER_DIR = "adapter"
# peft's name for every linear projection but the output head: for GPT-2 c_attn, c_proj, c_fc
ALL_LINEAR = "all-linear"
PEFT_PIN = "peft==0.21.2"


@dataclass(frozen=True)
class LoraSettings:
    r: int
    alpha: float
    dropout: float
    target_modules: tuple[str, ...] | None  # None: every linear projection (ALL_LINEAR)

    @classmethod
    def from_args(cls, r: int, alpha: float | None, dropout: float, targets: str | None):
        names = tuple(t.strip() for t in (targets or "").split(",") if t.strip())
        return cls(r, float(alpha if alpha is not None else 2 * r), dropout, names or None)


def _peft() -> Any:
    hf_offline()
    try:
        import peft
    except ImportError as exc:  # the plain PyTorch training image does not ship it
        raise ImportError(
            f"LoRA (--lora-r > 0) needs peft; install {PEFT_PIN} (the project's train extra) "
            "or use a training image that has it"
        ) from exc
    return peft


def _uses_conv1d(model: nn.Module) -> bool:
    """GPT-2's projections are transformers' Conv1D, whose weight is (in, out): peft must
    transpose its update there (fan_in_fan_out)."""
    from transformers.pytorch_utils import Conv1D

    return any(isinstance(m, Conv1D) for m in model.modules())


def wrap(model: PreTrainedModel, settings: LoraSettings) -> nn.Module:
    """The model with LoRA adapters on the target projections; every base weight frozen."""
    peft = _peft()
    config = peft.LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules or ()) or ALL_LINEAR,
        fan_in_fan_out=_uses_conv1d(model),
        task_type="CAUSAL_LM",
    )
    try:
        with warnings.catch_warnings():
            # peft asks transformers 5 for a renamed attribute; the warning is not ours to fix
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
            return peft.get_peft_model(model, config)
    except ValueError as exc:  # a target name that matches no module of this architecture
        raise ValueError(f"--lora-target-modules: {exc}") from exc


def is_wrapped(model: nn.Module) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Trainable and total parameters (tied weights counted once)."""
    params = list(model.parameters())
    return {
        "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
        "total_parameters": sum(p.numel() for p in params),
    }


def save_merged(model: nn.Module, folder: Path) -> nn.Module:
    """Writes the adapter to folder/adapter/ and returns the base model with the adapter
    merged into its weights. The wrapped model is consumed: its layers are replaced."""
    model.save_pretrained(str(folder / ADAPTER_DIR))  # type: ignore[operator]
    return model.merge_and_unload()  # type: ignore[operator]
