"""The demo's steps, each a function of the API client, so the end-to-end test runs the same."""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maas.client import Client
from maas.commands import describe_job
from maas_local.aws_resources import local_client
from maas_local.config import REPO_ROOT, RESOURCE_PREFIX

MODEL = "digits"
DATA_BUCKET = f"{RESOURCE_PREFIX}-data"
DATA_PREFIX = "digits"
ROLLBACK_ALARMS = [f"{RESOURCE_PREFIX}-{MODEL}-model-errors"]
Say = Callable[[str], None]


@dataclass(frozen=True)
class HeldOut:
    x: np.ndarray  # (N, 1, 8, 8) float32
    y: np.ndarray  # (N,) int


def prepare_and_upload(
    s3_url: str, say: Say, credentials: dict[str, str] | None
) -> tuple[dict[str, str], HeldOut]:
    """Writes train/validation/test .npz with maas_training.prepare_digits; uploads train and
    validation to the data bucket (signed with `credentials`, the stack's own); keeps test for
    the predictions."""
    with tempfile.TemporaryDirectory(prefix="maas-digits-") as folder:
        subprocess.run(
            [sys.executable, "-m", "maas_training.prepare_digits", "--out", folder],
            cwd=REPO_ROOT / "training",  # the training code, in the checkout or the wheel
            check=True,
            capture_output=True,
            text=True,
        )
        s3 = local_client("s3", s3_url, credentials)
        channels = {}
        for channel in ("train", "validation"):
            key = f"{DATA_PREFIX}/{channel}/digits.npz"
            s3.upload_file(str(Path(folder, channel, "digits.npz")), DATA_BUCKET, key)
            channels[channel] = f"s3://{DATA_BUCKET}/{DATA_PREFIX}/{channel}/"
            say(f"uploaded {channels[channel]}digits.npz")
        with np.load(Path(folder, "test", "digits.npz")) as test:
            held_out = HeldOut(x=test["x"].astype(np.float32), y=test["y"].astype(int))
    return channels, held_out


def training_request(
    channels: dict[str, str], *, seed: int, epochs: int, auto_deploy: bool
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": MODEL,
        "recipe": "image-cnn",
        "datasets": channels,
        "hyperparameters": {"epochs": epochs, "seed": seed},
        "metric_threshold": {"metric": "validation:accuracy", "value": 0.9, "goal": "maximize"},
        "max_runtime_seconds": 900,
    }
    if auto_deploy:
        spec["auto_deploy"] = True
        spec["deployment"] = {"rollback_alarms": ROLLBACK_ALARMS, "instance_type": "ml.m5.large"}
    return spec


def train(api: Client, spec: dict[str, Any], say: Say, timeout_s: float = 600) -> dict:
    """Starts the job through the API and follows it to its end; returns the last view of it."""
    job = api.start_training(spec)
    say(f"started training job {job['id']}")
    started = time.monotonic()
    for job in api.watch_training(job["id"], timeout_s=timeout_s):  # noqa: B020 - keep the last
        say(describe_job(job, started))
    return job


def wait_for_version(api: Client, job_id: str, timeout_s: float = 60) -> dict:
    """The event handler registers the version a moment after the job completes."""
    deadline = time.monotonic() + timeout_s
    job = api.training_job(job_id)
    while job.get("registered_version") is None and time.monotonic() < deadline:
        if job.get("outcome") and job.get("outcome") != "registered":
            break
        time.sleep(0.5)
        job = api.training_job(job_id)
    return job


def follow_auto_deployment(api: Client, job_id: str, say: Say, timeout_s: float = 300) -> dict:
    """The event handler starts the deployment just after it registers the version."""
    deadline = time.monotonic() + 60
    job = api.training_job(job_id)
    while not job.get("deployment_id") and time.monotonic() < deadline:
        time.sleep(0.3)
        job = api.training_job(job_id)
    if not job.get("deployment_id"):
        raise RuntimeError(f"no deployment started for {job_id}: {job}")
    deployment: dict = {}
    for deployment in api.watch_deployment(job["model"], job["deployment_id"], timeout_s):
        say(f"deployment {deployment['id']}: v{deployment['version']} {deployment['status']}")
    return deployment


def wait_until_live(
    api: Client, version: int, say: Say, timeout_s: float = 300, name: str = MODEL
) -> dict:
    deadline = time.monotonic() + timeout_s
    model = api.model(name)
    while model.get("live_version") != version and time.monotonic() < deadline:
        time.sleep(0.5)
        model = api.model(name)
    say(f"model {name}: live version {model.get('live_version')}")
    return model


# -- text generation ----------------------------------------------------------------------------
WRITER = "docs-writer"
TEXT_PREFIX = "stdlib-text"
# A slice of the standard library's docstrings (the recipe's default corpus, ~2.3 M characters
# in all), so that the demo's one epoch takes about 40 seconds on two cores.
DEMO_TEXT_CHARS = 900_000
# The recipe's model beats a unigram model of the text (perplexity ~600) by far; a version
# that does not is not deployed.
PERPLEXITY_GATE = 400.0
PROMPT = "Return a new list"


def prepare_text_and_upload(
    s3_url: str, say: Say, credentials: dict[str, str] | None
) -> dict[str, str]:
    """Writes train/ and validation/ text from this Python's standard library docstrings with
    maas_training.prepare_stdlib_text (nothing is downloaded) and uploads them."""
    with tempfile.TemporaryDirectory(prefix="maas-text-") as folder:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "maas_training.prepare_stdlib_text",
                "--out",
                folder,
                "--max-chars",
                str(DEMO_TEXT_CHARS),
            ],
            cwd=REPO_ROOT / "training",
            check=True,
            capture_output=True,
            text=True,
        )
        s3 = local_client("s3", s3_url, credentials)
        channels = {}
        for channel in ("train", "validation"):
            path = Path(folder, channel, "stdlib.txt")
            key = f"{TEXT_PREFIX}/{channel}/stdlib.txt"
            s3.upload_file(str(path), DATA_BUCKET, key)
            channels[channel] = f"s3://{DATA_BUCKET}/{TEXT_PREFIX}/{channel}/"
            say(f"uploaded {channels[channel]}stdlib.txt ({path.stat().st_size // 1000} kB)")
    return channels


def generation_request(channels: dict[str, str]) -> dict[str, Any]:
    """The recipe's model and defaults (one epoch), deployed on the LMI container (the
    deployments API's choice for text-generation) once its perplexity clears the gate."""
    return {
        "model": WRITER,
        "recipe": "text-generation",
        "datasets": channels,
        "hyperparameters": {"seed": 1},
        "metric_threshold": {
            "metric": "validation:perplexity",
            "value": PERPLEXITY_GATE,
            "goal": "minimize",
        },
        "max_runtime_seconds": 900,
        "auto_deploy": True,
        "deployment": {"rollback_alarms": [f"{RESOURCE_PREFIX}-{WRITER}-model-errors"]},
    }


def stream_completion(api: Client, write: Callable[[str], Any]) -> dict[str, int]:
    """Streams a completion of PROMPT through /openai/v1/completions, writing each piece as it
    arrives; returns the usage the final chunk reports."""
    usage: dict[str, int] = {}
    write(PROMPT)
    for chunk in api.stream_completion(
        WRITER,
        PROMPT,
        max_tokens=60,
        temperature=0.8,
        seed=7,
        stream_options={"include_usage": True},
    ):
        for choice in chunk.get("choices") or []:
            write(choice.get("text") or "")
        if chunk.get("usage"):
            usage = chunk["usage"]
    write("\n")
    return usage


def npy(x: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, x, allow_pickle=False)
    return buffer.getvalue()


def predict_labels(api: Client, x: np.ndarray) -> tuple[list[int], int | None]:
    """Labels for a batch sent as application/x-npy, and the version that answered."""
    answer = api.predict(MODEL, data=npy(x), content_type="application/x-npy")
    predictions = answer["outputs"]["predictions"]
    return [int(p["label"]) for p in predictions], answer.get("version")


def show_predictions(
    api: Client, held: HeldOut, say: Say, shown: int = 10, scored: int = 50
) -> float:
    labels, version = predict_labels(api, held.x[:scored])
    say(f"version {version} answered; first {shown} held-out digits:")
    for index in range(shown):
        mark = "ok" if labels[index] == held.y[index] else "WRONG"
        say(f"  digit #{index:<3} truth {held.y[index]}  predicted {labels[index]}  {mark}")
    accuracy = float(np.mean(np.array(labels) == held.y[:scored]))
    say(f"accuracy on {scored} held-out digits: {accuracy:.1%}")
    every_label, _ = predict_labels(api, held.x)
    overall = float(np.mean(np.array(every_label) == held.y))
    say(f"accuracy on all {len(held.y)} held-out test digits: {overall:.1%}")
    return accuracy


def canary_split(
    api: Client,
    held: HeldOut,
    new_version: int,
    say: Say,
    calls: int = 200,
    settle_timeout_s: float = 120,
) -> Counter:
    """Waits for the canary's first answer, then counts which version answers each call."""
    deadline = time.monotonic() + settle_timeout_s
    while time.monotonic() < deadline:
        if predict_labels(api, held.x[:1])[1] == new_version:
            break
        time.sleep(0.2)
    else:
        raise TimeoutError(f"version {new_version} never answered within {settle_timeout_s}s")
    split: Counter = Counter()
    started = time.monotonic()
    for index in range(calls):
        _, version = predict_labels(api, held.x[index % len(held.x)][None])
        split[version] += 1
    elapsed = time.monotonic() - started
    shares = ", ".join(f"v{v}: {n} ({n / calls:.0%})" for v, n in sorted(split.items()))
    say(f"traffic over {calls} calls: {shares}")
    say(
        f"{calls} predictions through the gateway in {elapsed:.1f}s "
        f"({elapsed / calls * 1000:.0f} ms each, one at a time)"
    )
    return split
