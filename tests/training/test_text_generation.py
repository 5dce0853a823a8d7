"""The text-generation recipe: a small GPT-2 learns text, resumes exactly, and its folder is a
Hugging Face one that transformers loads and generates with, unchanged."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from maas_training import generation, serving
from maas_training.artifacts import load_model, read_config
from maas_training.metrics import parse_line
from maas_training.prepare_stdlib_text import docstrings, write_stdlib_text
from tests.training.support import run_train

# A model small enough to learn a corpus slice in seconds on one CPU thread.
TINY_GPT = (
    "--n-layer", "1", "--n-embd", "64", "--n-head", "2", "--block-size", "64",
    "--vocab-size", "512", "--batch-size", "16", "--lr", "3e-3",
)  # fmt: skip
EPOCHS = ("--epochs", "2")
# Two epochs on the slice reach ~130; a unigram model of the training tokens scores ~230.
PERPLEXITY_BOUND = 160.0


def _json(path: Path):
    return json.loads(path.read_text())


def _weights(model_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


def _epoch_lines(stdout: str) -> list[dict[str, float]]:
    return [
        parse_line(line)
        for line in stdout.splitlines()
        if line.startswith("epoch=") and " step=" not in line
    ]


@pytest.fixture(scope="module")
def stdlib_slice(tmp_path_factory) -> Path:
    """About 150,000 characters of the standard library's docstrings, as train/validation/."""
    out = tmp_path_factory.mktemp("stdlib")
    sizes = write_stdlib_text(out, max_chars=150_000)
    assert sizes["train_docstrings"] > 100 and sizes["validation_docstrings"] > 5
    return out


@pytest.fixture(scope="module")
def straight(stdlib_slice, tmp_path_factory) -> Path:
    """One uninterrupted run with per-epoch checkpoints."""
    out = tmp_path_factory.mktemp("straight")
    run_train(
        "text-generation",
        stdlib_slice,
        out,
        *TINY_GPT,
        *EPOCHS,
        "--checkpoint-dir",
        str(out / "ckpt"),
    )
    return out


def user_corpus(root: Path, with_validation: bool) -> Path:
    """Hand-made text, as a user would upload it: several .txt files of paragraphs."""
    rng = random.Random(0)
    names, things = ["Ada", "Brian", "Grace", "Linus"], ["apples", "books", "coins", "maps"]

    def paragraph() -> str:
        lines = []
        for _ in range(3):
            a, b, thing = rng.choice(names), rng.choice(names), rng.choice(things)
            n = rng.randint(2, 9)
            lines.append(f"{a} has {n} {thing} and gives one to {b}, so {a} keeps {n - 1}.")
        return "\n".join(lines)

    channels = {"train": 3, "validation": 1} if with_validation else {"train": 3}
    for channel, files in channels.items():
        for i in range(files):
            folder = root / channel
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"part{i}.txt").write_text("\n\n".join(paragraph() for _ in range(100)))
    return root


def test_documents_are_the_paragraphs_of_every_txt_file(tmp_path):
    (tmp_path / "b.txt").write_text("third\n\n")
    (tmp_path / "a.txt").write_text("first line\nstill first\n\n \n\nsecond")
    (tmp_path / "skipped.tsv").write_text("label\ttext\n")
    assert generation.read_documents(tmp_path) == ["first line\nstill first", "second", "third"]


def test_stdlib_docstrings_are_read_without_importing_and_split_by_module(stdlib_slice):
    source = b'"""The module."""\nclass C:\n    """A class."""\n    def f(self):\n        pass\n'
    assert docstrings(source) == ["The module.", "A class."]
    assert docstrings(b"print 'python 2'\n") == []
    train = (stdlib_slice / "train" / "stdlib.txt").read_text()
    validation = (stdlib_slice / "validation" / "stdlib.txt").read_text()
    held_out = [d for d in validation.split("\n\n") if len(d) > 200]
    assert held_out and not any(d in train for d in held_out)


@pytest.mark.slow
def test_the_recipe_learns_stdlib_text_beyond_a_unigram_model(straight):
    first, last = _json(straight / "output" / "history.json")
    assert last["val_perplexity"] < first["val_perplexity"]
    assert last["val_perplexity"] < PERPLEXITY_BOUND
    assert last["val_perplexity"] < 0.7 * last["val_unigram_perplexity"]
    assert _json(straight / "output" / "metrics.json") == pytest.approx(
        {
            "train:loss": last["train_loss"],
            "validation:loss": last["val_loss"],
            "validation:perplexity": last["val_perplexity"],
            "validation:unigram_perplexity": last["val_unigram_perplexity"],
        }
    )
    corpus = read_config(straight / "model")["corpus"]
    assert corpus["train_tokens"] > 20_000 and corpus["validation_tokens"] > 1_000


@pytest.mark.slow
def test_a_run_stopped_after_epoch_one_resumes_to_identical_weights(straight, stdlib_slice):
    reference, resumed = straight, straight / "resumed"
    common = (*TINY_GPT, *EPOCHS, "--checkpoint-dir", str(resumed / "ckpt"))
    stopped = run_train(
        "text-generation", stdlib_slice, resumed, *common, "--stop-after-epoch", "1"
    )
    assert stopped == {"stopped_after_epoch": 1}
    assert not (resumed / "model").exists()
    run_train("text-generation", stdlib_slice, resumed, *common)
    want, got = _weights(reference / "model"), _weights(resumed / "model")
    assert want.keys() == got.keys()
    assert [k for k in want if not torch.equal(want[k], got[k])] == []


@pytest.mark.slow
def test_the_folder_loads_with_transformers_unchanged_and_generates(straight):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = straight / "model"
    hf_config = _json(folder / "config.json")
    assert hf_config["model_type"] == "gpt2" and hf_config["architectures"] == ["GPT2LMHeadModel"]
    assert _json(folder / "tokenizer_config.json")["tokenizer_class"] == "PreTrainedTokenizerFast"
    maas = _json(folder / "maas.json")
    assert maas["recipe"] == "text-generation" and maas["hyperparameters"]["n_layer"] == 1
    assert _json(folder / "signature.json") == {
        "inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [-1]}],
        "outputs": [{"name": "text_output", "datatype": "BYTES", "shape": [-1]}],
        "labels": [],
    }

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    prompt = "Return the"
    ids = tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    text = tokenizer.decode(out[0], skip_special_tokens=True)
    assert text.startswith(prompt) and len(text) > len(prompt) + 5

    same, config = load_model(folder)  # maas's own loader finds maas.json and the weights
    assert config["recipe"] == "text-generation"
    with torch.inference_mode():
        assert torch.equal(same(ids["input_ids"]).logits, model(ids["input_ids"]).logits)
    with pytest.raises(NotImplementedError, match="AutoModelForCausalLM"):
        serving.load(folder)


@pytest.mark.slow
def test_user_text_without_validation_holds_out_a_fraction_and_is_learnt(tmp_path, capsys):
    data = user_corpus(tmp_path / "data", with_validation=False)
    out = tmp_path / "run"
    run_train("text-generation", data, out, *TINY_GPT, "--epochs", "3", "--validation", "")
    last = _epoch_lines(capsys.readouterr().out)[-1]  # as SageMaker's regexes read the log
    corpus = read_config(out / "model")["corpus"]
    assert corpus["validation_documents"] == 30  # 10% of the 300 paragraphs, seeded
    assert corpus["train_documents"] == 270
    # ~3.4 against ~27: the sentences' pattern is learnt, not just their word frequencies
    assert last["validation:perplexity"] < 0.3 * last["validation:unigram_perplexity"]


@pytest.mark.slow
def test_fine_tuning_continues_a_pretrained_folder_with_its_own_tokenizer(
    straight, tmp_path, capsys
):
    pretrained = straight / "model"
    data = user_corpus(tmp_path / "data", with_validation=True)
    out = tmp_path / "tuned"
    run_train(
        "text-generation",
        data,
        out,
        "--pretrained-path",
        str(pretrained),
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--lr",
        "3e-3",
    )
    last = _epoch_lines(capsys.readouterr().out)[-1]  # ~2.8 against ~36
    assert last["validation:perplexity"] < 0.3 * last["validation:unigram_perplexity"]
    tuned = out / "model"
    assert _json(tuned / "tokenizer.json") == _json(pretrained / "tokenizer.json")
    assert _json(tuned / "config.json")["n_embd"] == 64  # a fresh model would have 128
    before, after = _weights(pretrained), _weights(tuned)
    assert before.keys() == after.keys()
    assert not all(torch.equal(before[k], after[k]) for k in before)


def test_other_recipes_keep_their_defaults_where_text_generation_differs(tmp_path):
    import train

    for recipe in ("image-cnn", "text-lstm", "autoencoder"):
        args = train.parse_args(["--recipe", recipe, "--train", str(tmp_path)])
        assert (args.epochs, args.batch_size, args.vocab_size) == (10, 64, 20000)
        assert args.lr_schedule == "cosine"
    # text-transformer's are the 30-minute SST-2 fine-tune (training/README.md)
    args = train.parse_args(["--recipe", "text-transformer", "--train", str(tmp_path)])
    assert (args.epochs, args.batch_size, args.lr, args.lr_schedule) == (1, 32, 1e-4, "linear")
    assert args.train_embeddings is False
    args = train.parse_args(["--recipe", "text-generation", "--train", str(tmp_path)])
    assert (args.epochs, args.batch_size, args.vocab_size, args.block_size) == (1, 4, 2048, 128)
