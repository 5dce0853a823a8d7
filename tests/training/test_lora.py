"""LoRA fine-tuning in the text-generation recipe: only the adapters train, the saved folder is a
plain Hugging Face one with the adapter merged in (and the adapter beside it), and a stopped run
resumes to the same weights."""

from __future__ import annotations

import contextlib
import json
import random
import sys
from pathlib import Path

import pytest
import torch

from maas_training.checkpoint import CHECKPOINT_FILE, CheckpointMismatchError
from maas_training.recipes import RECIPES, prepare
from maas_training.tasks import LANGUAGE_MODELING
from tests.training.support import TRAINING, run_train, train_argv

# A model that learns the pretraining pattern in seconds on one thread.
TINY_BASE = (
    "--n-layer", "1", "--n-embd", "64", "--n-head", "2", "--block-size", "32",
    "--vocab-size", "300", "--batch-size", "8", "--lr", "5e-3", "--epochs", "2",
)  # fmt: skip
RANK = 8
# LoRA wants a higher rate than full fine-tuning: its updates start from zero.
LORA = ("--lora-r", str(RANK), "--batch-size", "8", "--lr", "1e-2", "--epochs", "2")


def sentences(root: Path, pattern: str, seed: int, paragraphs: int) -> Path:
    """train/ and validation/ .txt channels of three-sentence paragraphs of one pattern."""
    rng = random.Random(seed)
    names, things = ["Ada", "Brian", "Grace", "Linus"], ["apples", "books", "coins", "maps"]

    def sentence() -> str:
        a, b, thing, n = rng.choice(names), rng.choice(names), rng.choice(things), rng.randint(2, 9)
        if pattern == "gifts":
            return f"{a} has {n} {thing} and gives one to {b}, so {a} keeps {n - 1}."
        return f"The {thing} of {a} lie north of the {rng.choice(things)} of {b}, {n} miles away."

    for channel, count in (("train", paragraphs), ("validation", paragraphs // 5)):
        folder = root / channel
        folder.mkdir(parents=True)
        text = "\n\n".join("\n".join(sentence() for _ in range(3)) for _ in range(count))
        (folder / "part.txt").write_text(text)
    return root


def _json(path: Path):
    return json.loads(path.read_text())


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> Path:
    """A tiny GPT-2 the recipe trained from scratch on one sentence pattern."""
    root = tmp_path_factory.mktemp("lora_base")
    run_train("text-generation", sentences(root / "data", "gifts", 0, 120), root, *TINY_BASE)
    return root / "model"


@pytest.fixture(scope="module")
def new_text(tmp_path_factory) -> Path:
    """Another sentence pattern, which the pretrained model has never seen."""
    return sentences(tmp_path_factory.mktemp("lora_data"), "places", 1, 80)


@pytest.fixture(scope="module")
def tuned(pretrained, new_text, tmp_path_factory) -> Path:
    """One uninterrupted LoRA run with per-epoch checkpoints."""
    out = tmp_path_factory.mktemp("lora_tuned")
    run_train(
        "text-generation",
        new_text,
        out,
        "--pretrained-path",
        str(pretrained),
        *LORA,
        "--checkpoint-dir",
        str(out / "ckpt"),
    )
    return out


def base_validation_loss(pretrained: Path, data: Path) -> float:
    """The pretrained model's loss on the validation text, as the recipe measures it."""
    import train

    args = train.parse_args(
        train_argv("text-generation", data, data, "--pretrained-path", str(pretrained))
    )
    prepared = prepare(RECIPES["text-generation"], args)
    return LANGUAGE_MODELING.validate(
        prepared.model, prepared.val, 32, torch.device("cpu"), contextlib.nullcontext
    )["val_loss"]


@pytest.mark.slow
def test_lora_trains_only_the_adapters_and_lowers_validation_loss(tuned, pretrained, new_text):
    last = _json(tuned / "output" / "history.json")[-1]
    before = base_validation_loss(pretrained, new_text)
    assert last["val_loss"] < 0.7 * before  # ~2.3 against ~5.7 (perplexity ~10 against ~300)

    lora = _json(tuned / "model" / "maas.json")["lora"]
    total = sum(t.numel() for t in _weights(pretrained / "model.safetensors").values())
    # rank 8 on the four projections of one block: (64 + 192) + (64 + 64) + (64 + 256) + (256 + 64)
    assert lora["trainable_parameters"] == RANK * (256 + 128 + 320 + 320)
    assert lora["total_parameters"] == total + lora["trainable_parameters"]
    assert lora["target_modules"] is None and lora["alpha"] == 2 * RANK

    adapter = _weights(tuned / "model" / "adapter" / "adapter_model.safetensors")
    assert sum(t.numel() for t in adapter.values()) == lora["trainable_parameters"]
    assert all(".lora_A." in k or ".lora_B." in k for k in adapter)


@pytest.mark.slow
def test_the_base_weights_change_only_by_the_merged_adapter(tuned, pretrained):
    base = _weights(pretrained / "model.safetensors")
    merged = _weights(tuned / "model" / "model.safetensors")
    adapter = _weights(tuned / "model" / "adapter" / "adapter_model.safetensors")
    assert base.keys() == merged.keys()
    scale = 2.0  # alpha / r
    projections = {
        k.removesuffix(".lora_A.weight").removeprefix("base_model.model.")
        for k in adapter
        if ".lora_A." in k
    }
    assert projections == {
        "transformer.h.0.attn.c_attn",
        "transformer.h.0.attn.c_proj",
        "transformer.h.0.mlp.c_fc",
        "transformer.h.0.mlp.c_proj",
    }
    for name in base:
        module = name.removesuffix(".weight")
        if module in projections:
            a = adapter[f"base_model.model.{module}.lora_A.weight"]  # (r, in)
            b = adapter[f"base_model.model.{module}.lora_B.weight"]  # (out, r)
            # GPT-2's Conv1D keeps its weight as (in, out)
            torch.testing.assert_close(merged[name], base[name] + scale * (b @ a).T)
        else:
            assert torch.equal(merged[name], base[name]), name


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing`:FutureWarning")  # peft's own call
def test_the_merged_folder_loads_unchanged_and_matches_base_plus_adapter(tuned, pretrained):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tuned / "model"
    config = _json(folder / "config.json")
    assert config["architectures"] == ["GPT2LMHeadModel"] and "peft" not in json.dumps(config)
    adapter_config = _json(folder / "adapter" / "adapter_config.json")
    assert adapter_config["peft_type"] == "LORA" and adapter_config["r"] == RANK

    merged = AutoModelForCausalLM.from_pretrained(folder).eval()
    wrapped = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(pretrained), folder / "adapter"
    ).eval()
    ids = AutoTokenizer.from_pretrained(folder)("The maps of Ada lie north", return_tensors="pt")
    with torch.inference_mode():
        want = wrapped(**ids).logits
        got = merged(**ids).logits
        plain = AutoModelForCausalLM.from_pretrained(pretrained).eval()(**ids).logits
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(got, plain, atol=1e-2)  # the adapter did change the model


@pytest.mark.slow
def test_a_lora_run_stopped_after_epoch_one_resumes_to_identical_weights(
    tuned, pretrained, new_text, tmp_path, capsys
):
    common = (
        "--pretrained-path",
        str(pretrained),
        *LORA,
        "--checkpoint-dir",
        str(tmp_path / "ckpt"),
    )
    stopped = run_train("text-generation", new_text, tmp_path, *common, "--stop-after-epoch", "1")
    assert stopped == {"stopped_after_epoch": 1}
    state = torch.load(tmp_path / "ckpt" / CHECKPOINT_FILE, weights_only=True)
    assert state["model"] and all("lora_" in k for k in state["model"])  # the adapters alone
    capsys.readouterr()
    run_train("text-generation", new_text, tmp_path, *common)
    assert "resumed from" in capsys.readouterr().out
    for file in ("model.safetensors", "adapter/adapter_model.safetensors"):
        want, got = _weights(tuned / "model" / file), _weights(tmp_path / "model" / file)
        assert want.keys() == got.keys()
        assert [k for k in want if not torch.equal(want[k], got[k])] == []

    other_rank = [*common]
    other_rank[other_rank.index("--lora-r") + 1] = "4"
    with pytest.raises(CheckpointMismatchError, match="lora_r"):
        run_train("text-generation", new_text, tmp_path, *other_rank)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--recipe", "text-generation", "--lora-r", "8"], "--lora-r needs --pretrained-path"),
        (
            ["--recipe", "image-cnn", "--lora-r", "8", "--pretrained-path", "x"],
            "recipe image-cnn has no LoRA fine-tuning (only text-generation)",
        ),
        (["--recipe", "text-generation", "--lora-r", "-1"], "--lora-r must be 0"),
        (
            [
                "--recipe",
                "text-generation",
                "--lora-r",
                "4",
                "--pretrained-path",
                "x",
                "--lora-dropout",
                "1",
            ],
            "--lora-dropout must be in",
        ),
    ],
)
def test_lora_where_it_cannot_apply_exits_with_a_message(argv, message, tmp_path, capsys):
    import train

    with pytest.raises(SystemExit) as exited:
        train.parse_args([*argv, "--train", str(tmp_path)])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_lora_hyperparameters_come_from_sm_hps_with_defaults(tmp_path, monkeypatch):
    import train

    args = train.parse_args(["--recipe", "text-generation", "--train", str(tmp_path)])
    assert (args.lora_r, args.lora_alpha, args.lora_dropout, args.lora_target_modules) == (
        0,
        None,
        0.0,
        None,
    )
    hps = {"lora_r": 16, "lora_alpha": 8, "lora_target_modules": "c_attn", "pretrained_path": "p"}
    monkeypatch.setenv("SM_HPS", json.dumps(hps))
    args = train.parse_args(["--recipe", "text-generation", "--train", str(tmp_path)])
    assert (args.lora_r, args.lora_alpha, args.lora_target_modules) == (16, 8.0, "c_attn")


@pytest.mark.slow
def test_target_modules_that_match_nothing_fail_with_the_argument_named(
    pretrained, new_text, tmp_path
):
    with pytest.raises(ValueError, match="--lora-target-modules"):
        run_train(
            "text-generation", new_text, tmp_path, "--pretrained-path", str(pretrained),
            "--lora-r", "4", "--lora-target-modules", "q_proj,v_proj",
        )  # fmt: skip


def test_without_peft_lora_names_the_package_to_install(monkeypatch):
    from maas_training import lora

    monkeypatch.setitem(sys.modules, "peft", None)  # as in an image that lacks it
    with pytest.raises(ImportError, match=r"peft==0\.21\.2"):
        lora.wrap(torch.nn.Linear(2, 2), lora.LoraSettings.from_args(4, None, 0.0, None))  # type: ignore[arg-type]


def test_the_training_source_dir_asks_the_container_to_install_nothing():
    """The training toolkit pip-installs a requirements.txt found beside the entry point
    (sagemaker-training-toolkit, entry_point.install: PYTHON_PROGRAM and has_requirements),
    and maas's jobs run with EnableNetworkIsolation, where "no inbound or outbound network
    calls can be made" (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html):
    such a file would fail every job, LoRA or not. peft and transformers come with the image."""
    assert not (TRAINING / "requirements.txt").exists()
