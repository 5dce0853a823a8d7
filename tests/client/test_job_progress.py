"""A job's progress and curves, read from its log: `maas train --wait` and `maas jobs follow`
print `epoch k/N`, its steps and its metrics under it, then the end in plain words; `maas jobs
show` gives each epoch's metrics as JSON (`history`), as text charts, or as a PNG.

The commands run as a user runs them, against a stand-in API named by a local stack's state
folder, and read the job's log where the SageMaker emulator writes it (test_logs_command pins
that path to the emulator's own)."""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

from maas import history, plot
from maas.progress import EpochProgress
from maas_contract import names
from tests.client.stub_api import Reply, Request, stub_api

REPO = Path(__file__).resolve().parents[2]
JOB_ID = names.training_job_name("maas-local", "digits", datetime(2025, 1, 2, 3, 4, 5), "ab12")
JOB = {"id": JOB_ID, "model": "digits", "recipe": "image-cnn", "instance_count": 1}
METRICS = {  # per epoch, as train.py prints them after each one
    1: "train_loss=0.5 val_loss=0.6 val_accuracy=0.78",
    2: "train_loss=0.3333 val_loss=0.4 val_accuracy=0.9",
    3: "train_loss=0.25 val_loss=0.3 val_accuracy=0.94",
}
HISTORY = [
    {"epoch": 1, "train_loss": 0.5, "val_loss": 0.6, "val_accuracy": 0.78},
    {"epoch": 2, "train_loss": 0.3333, "val_loss": 0.4, "val_accuracy": 0.9},
    {"epoch": 3, "train_loss": 0.25, "val_loss": 0.3, "val_accuracy": 0.94},
]


def epoch_lines(epoch: int) -> str:
    """What train.py prints in an epoch of 10 steps: a line every 3, then the metrics."""
    steps = [f"epoch={epoch} step={s}/10 train_loss={1 / (epoch + s / 10):.4f}" for s in (3, 6, 9)]
    return "\n".join([*steps, f"epoch={epoch} {METRICS[epoch]}"]) + "\n"


def head_lines() -> str:
    return (
        "[sagemaker-local] 03:04:05 status InProgress / Training: Training in progress\n"
        "recipe=image-cnn train_rows=1437 val_rows=160 device=cpu world_size=1 bf16=False\n"
    )


def local_stack(home: Path, api_url: str) -> Path:
    """A stack folder whose state names `api_url` as the API; the path of the job's log."""
    from maas_local.config import StackPaths, write_private_json
    from maas_local.tokens import create_issuer

    paths = StackPaths(home).ensure()
    create_issuer(paths.keys, api_url)
    write_private_json(paths.state_file, {"api_url": api_url, "api_key": "k"})
    log = paths.training_job_log(JOB_ID)
    log.parent.mkdir(parents=True, exist_ok=True)
    return log


def maas(home: Path, *argv: str, **env: str) -> tuple[int, str, str]:
    """`maas --home HOME ARGV` in its own process: no terminal, so plain lines."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MAAS_", "AWS_"))}
    done = subprocess.run(
        [sys.executable, "-m", "maas", "--home", str(home), *argv],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        cwd=REPO,
        env={**clean, "PYTHONIOENCODING": "utf-8", **env},
    )
    return done.returncode, done.stdout, done.stderr


def job_api(states: list[dict], on_get=None, deployments: list[str] = ()):
    """The routes `maas train` and `maas jobs` call: the job's state changes with each GET, as
    `states` lists them (the last one stays), and `on_get(n)` runs before the n-th answer."""
    gets: list[str] = []
    deployment_states = list(deployments)

    def answer(request: Request) -> Reply:
        if request.method == "POST" and request.path == "/v1/training-jobs":
            return Reply(201, {**JOB, "status": "InProgress"})
        if request.path == f"/v1/training-jobs/{JOB_ID}":
            gets.append(request.path)
            if on_get:
                on_get(len(gets))
            return Reply(200, {**JOB, **states[min(len(gets), len(states)) - 1]})
        if request.path == "/v1/models/digits/deployments/d-1":
            status = deployment_states.pop(0) if len(deployment_states) > 1 else deployments[-1]
            return Reply(200, {"id": "d-1", "model": "digits", "version": 3, "status": status})
        return Reply(404, {"error": "no route", "code": "NotFound", "request_id": "r"})

    return answer


def positions(out: str, *wanted: str) -> list[int]:
    """The index of each wanted line in the output, in order; fails on a missing one."""
    lines = out.splitlines()
    missing = [w for w in wanted if w not in lines]
    assert not missing, f"{missing} not in:\n{out}"
    return [lines.index(w) for w in wanted]


COMPLETED = {"status": "Completed", "secondary_status": "Completed", "registered_version": 3}


def test_train_wait_shows_epoch_k_of_n_with_steps_and_each_epochs_metrics_under_it(tmp_path):
    # given: a job of 3 epochs whose log grows while the command follows it
    def grow(get: int) -> None:
        if get == 3:  # the second poll finds epochs 2 and 3, and the job at its end
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(epoch_lines(2) + epoch_lines(3))

    training = {"status": "InProgress", "secondary_status": "Training"}
    states = [training, training, COMPLETED]  # as `follow` finds it, then at each poll
    with stub_api(job_api(states, on_get=grow)) as api:
        log = local_stack(tmp_path, api.url)
        log.write_text(head_lines() + epoch_lines(1))

        # when
        code, out, err = maas(
            tmp_path, "train", "--model", "digits", "--recipe", "image-cnn",
            "--data", "s3://maas-local-data/digits/train/", "--hp", "epochs=3", "--wait",
        )  # fmt: skip

    # then: each epoch's heading, its steps, its metrics under it, in order; the end in words
    assert code == 0, err
    sent = next(r for r in api.requests if r.method == "POST").json()
    assert sent["hyperparameters"] == {"epochs": 3}
    found = positions(
        out,
        "epoch 1/3",
        "  [######--------------]  3/10 train_loss=0.7692",
        "  [##################--]  9/10 train_loss=0.5263",
        f"  {METRICS[1]}",
        "epoch 2/3",
        f"  {METRICS[2]}",
        "epoch 3/3",
        f"  {METRICS[3]}",
        f"job {JOB_ID} completed; registered as version 3 of digits",
    )
    assert found == sorted(found)
    assert found[1] == found[0] + 1 and found[3] == found[0] + 4  # steps, then metrics
    assert out.splitlines()[-1].startswith(f"job {JOB_ID} completed")
    assert "\r" not in out  # no terminal: no bar redrawn in place
    assert "InProgress/Training" in out.splitlines()[1]  # the job's status, said as it changes


def test_a_job_that_fails_mid_epoch_ends_in_plain_words_and_exit_1(tmp_path):
    failed = {"status": "Failed", "failure_reason": "AlgorithmError: out of memory"}
    failed["hyperparameters"] = {"epochs": 4}
    with stub_api(job_api([failed])) as api:
        log = local_stack(tmp_path, api.url)
        log.write_text(head_lines() + epoch_lines(1) + epoch_lines(2).splitlines(True)[0])

        code, out, err = maas(tmp_path, "jobs", "follow", JOB_ID)

    assert code == 1, err
    lines = out.splitlines()
    assert "epoch 2/4" in lines and f"  {METRICS[2]}" not in lines
    assert lines[-2] == "  [######--------------]  3/10 train_loss=0.4348"  # where it stopped
    assert lines[-1] == f"job {JOB_ID} failed: AlgorithmError: out of memory"


def test_jobs_follow_reattaches_and_shows_every_epoch_from_the_log(tmp_path):
    # given: a job that has ended; the API gives the hyperparameters it was started with
    ended = {**COMPLETED, "hyperparameters": {"epochs": 3}}
    with stub_api(job_api([ended])) as api:
        log = local_stack(tmp_path, api.url)
        log.write_text(head_lines() + "".join(epoch_lines(e) for e in (1, 2, 3)))

        code, out, err = maas(tmp_path, "jobs", "follow", JOB_ID)

    assert code == 0, err
    found = positions(out, "epoch 1/3", f"  {METRICS[1]}", "epoch 3/3", f"  {METRICS[3]}")
    assert found == sorted(found)
    assert out.splitlines()[0] == f"job {JOB_ID} of digits (image-cnn)"


def test_ctrl_c_stops_following_not_the_job_and_says_how_to_come_back(tmp_path):
    training = {"status": "InProgress", "secondary_status": "Training"}
    with stub_api(job_api([training])) as api:
        log = local_stack(tmp_path, api.url)
        log.write_text(epoch_lines(1))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MAAS_", "AWS_"))}
        proc = subprocess.Popen(
            [sys.executable, "-m", "maas", "--home", str(tmp_path), "jobs", "follow", JOB_ID],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True)
        reader.start()
        try:
            seen = [lines.get(timeout=15) for _ in range(7)]  # heading, status, epoch 1
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=10)
            err = proc.stderr.read()
        finally:
            proc.kill()
            proc.wait(timeout=10)

    assert seen[-1].rstrip() == f"  {METRICS[1]}"
    assert proc.returncode == 130
    assert f"the job goes on; `maas jobs follow {JOB_ID}` picks it up again" in err
    assert "Traceback" not in err
    assert not any(r.method == "DELETE" for r in api.requests)  # the job was left running


def test_train_deploy_wait_says_it_waits_for_the_deployment_then_follows_it(tmp_path):
    deployed = {**COMPLETED, "deployment_id": "d-1", "outcome": "registered; deploying"}
    with stub_api(job_api([deployed], deployments=["InProgress", "Succeeded"])) as api:
        log = local_stack(tmp_path, api.url)
        log.write_text(epoch_lines(1))

        code, out, err = maas(
            tmp_path, "train", "--model", "digits", "--recipe", "image-cnn",
            "--data", "s3://maas-local-data/digits/train/", "--hp", "epochs=1",
            "--deploy", "--wait",
        )  # fmt: skip

    assert code == 0, err
    found = positions(
        out,
        "epoch 1/1",
        f"job {JOB_ID} completed; registered as version 3 of digits",
        "waiting for deployment d-1 of digits ...",
        "deployment d-1 InProgress",
        "deployment d-1 Succeeded",
    )
    assert found == sorted(found)
    assert out.rstrip().endswith("Succeeded")  # what the README's quick start checks


def test_jobs_show_json_keeps_the_jobs_fields_and_adds_each_epochs_metrics(tmp_path):
    with stub_api(job_api([COMPLETED])) as api:
        log = local_stack(tmp_path, api.url)
        log.write_text(head_lines() + "".join(epoch_lines(e) for e in (1, 2, 3)))

        code, out, err = maas(tmp_path, "jobs", "show", JOB_ID, "-o", "json")

    assert code == 0, err
    shown = json.loads(out)
    assert shown["history"] == HISTORY
    assert shown["registered_version"] == 3 and shown["status"] == "Completed"


def test_jobs_show_table_draws_the_losses_and_the_accuracy_over_the_epochs(tmp_path):
    with stub_api(job_api([COMPLETED])) as api:
        log = local_stack(tmp_path, api.url)
        log.write_text(head_lines() + "".join(epoch_lines(e) for e in (1, 2, 3)))

        code, out, err = maas(tmp_path, "jobs", "show", JOB_ID)  # pairs and curves by default

    assert code == 0, err
    lines = out.splitlines()
    assert f"id                  {JOB_ID}" in lines  # the job's fields first, as pairs
    losses, accuracy = lines.index("losses"), lines.index("accuracy and other metrics")
    assert losses < accuracy
    # 6 rows, highest value on top: val_accuracy climbs from the bottom left to the top right,
    # one epoch every 3 columns.
    assert lines[accuracy + 1 : accuracy + 7] == [
        "0.94 ┤      ●",
        "     │   ●",
        "     │",
        "     │",
        "     │",
        "0.78 ┤●",
    ]
    assert lines[accuracy + 8].split() == ["1", "3", "epoch"]
    assert lines[accuracy + 9].strip() == "● val_accuracy 0.94"
    assert lines[losses + 1].startswith(" 0.6 ┤○")  # val_loss, the highest, at epoch 1
    assert lines[losses + 6] == "0.25 ┤      ●"  # train_loss, the lowest, at epoch 3
    assert lines[losses + 9].split() == ["●", "train_loss", "0.25", "○", "val_loss", "0.3"]


def test_jobs_show_plot_writes_the_curves_as_a_png(tmp_path):
    picture = tmp_path / "curves.png"
    with stub_api(job_api([COMPLETED])) as api:
        log = local_stack(tmp_path, api.url)
        log.write_text("".join(epoch_lines(e) for e in (1, 2, 3)))

        code, out, err = maas(
            tmp_path, "jobs", "show", JOB_ID, "--plot", str(picture), "-o", "json"
        )

    assert code == 0, err
    assert json.loads(out)["history"] == HISTORY
    assert f"wrote {picture}" in err
    data = picture.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])  # IHDR: two charts, one above the other
    assert (width, height) == (700, 560)
    assert len(data) > 20_000  # lines, markers and text, not a blank canvas


def test_plot_without_matplotlib_is_one_line_and_exit_code_2(tmp_path):
    # given: an environment where `import matplotlib` fails, as where it is not installed
    shadow = tmp_path / "no-matplotlib"
    (shadow / "matplotlib").mkdir(parents=True)
    (shadow / "matplotlib" / "__init__.py").write_text("raise ImportError('not installed')\n")
    picture = tmp_path / "curves.png"

    with stub_api(job_api([COMPLETED])) as api:
        local_stack(tmp_path, api.url)
        code, out, err = maas(
            tmp_path, "jobs", "show", JOB_ID, "--plot", str(picture), PYTHONPATH=str(shadow)
        )

    assert code == 2, (out, err)
    assert err == "maas: --plot needs matplotlib: pip install 'maas[plot]'\n"
    assert out == "" and not picture.exists()
    assert api.requests == []  # refused before any call


# -- the pieces, in this process ---------------------------------------------------------------


def test_only_lines_that_start_with_epoch_are_read_and_every_number_is_a_metric():
    step = history.parse("epoch=2 step=30/100 train_loss=0.4123")
    ended = history.parse("epoch=2 train_loss=0.41 val_loss=nan val_roc_auc=0.9 note=warm")

    assert step == history.Step(2, 30, 100, {"train_loss": 0.4123})
    assert ended == history.EpochEnd(2, {"train_loss": 0.41, "val_loss": None, "val_roc_auc": 0.9})
    assert history.parse("recipe=image-cnn train_rows=1437") is None
    assert history.parse("resumed from /opt/ml/checkpoints after epoch 2") is None
    assert history.parse("epoch=x train_loss=1") is None


def test_an_epoch_run_again_keeps_its_last_metrics():
    lines = ["epoch=1 train_loss=0.9", "epoch=2 train_loss=0.8", "epoch=2 train_loss=0.7"]

    assert history.history(lines) == [
        {"epoch": 1, "train_loss": 0.9},
        {"epoch": 2, "train_loss": 0.7},
    ]


def test_on_a_terminal_the_bar_is_redrawn_in_place_and_the_metrics_take_its_line():
    out = io.StringIO()
    shown = EpochProgress(out, total=3, redraw=True)

    for line in epoch_lines(1).splitlines():
        shown.line(line)
    shown.line("epoch=2 step=3/10 train_loss=0.4348")
    shown.close()

    heading, epoch_one, heading_two, bar_two, end = out.getvalue().split("\n")
    assert (heading, heading_two, end) == ("epoch 1/3", "epoch 2/3", "")
    drawn = epoch_one.split("\r")
    assert drawn[0] == "" and len(drawn) == 5  # three bars, then the metrics over them
    assert drawn[3].startswith("  [##################--]  9/10")
    assert drawn[4].rstrip() == f"  {METRICS[1]}"
    assert drawn[2].rstrip().endswith("6/10 train_loss=0.625")
    assert len(drawn[2]) == len(drawn[1])  # spaces cover what the longer bar before it left
    assert len(drawn[4]) >= len(drawn[3])
    assert bar_two == "\r  [######--------------]  3/10 train_loss=0.4348"


def test_losses_that_span_more_than_tenfold_are_drawn_on_a_log_scale():
    epochs = [{"epoch": e, "train_loss": v} for e, v in enumerate([1.0, 0.1, 0.001], start=1)]

    chart = plot.text_charts(epochs).splitlines()

    assert chart[:7] == [
        "losses (log scale)",
        "    1 ┤●",
        "      │",
        "      │   ●",  # on a linear scale, 0.1 would sit on the bottom row with 0.001
        "      │",
        "      │",
        "0.001 ┤      ●",
    ]


def test_a_stream_that_cannot_print_the_glyphs_gets_the_ascii_ones():
    assert plot.can_draw("utf-8") and not plot.can_draw("ascii") and not plot.can_draw(None)
    assert plot.can_draw("ascii", plot.ASCII)


def test_the_cli_knows_each_recipes_default_epochs_as_train_py_does():
    """`maas train --wait` and `jobs follow` draw `epoch k/N` for a job started without
    --epochs from what train.py will run: the recipe's own default."""
    from maas.commands import total_epochs
    from maas_training.recipes import RECIPES

    for name, recipe in RECIPES.items():
        assert total_epochs({}, name) == recipe.defaults["epochs"], name
    assert total_epochs({"epochs": 3}, "text-generation") == 3
    assert total_epochs({"epochs": "3"}, "image-cnn") is None  # not a count we can read
