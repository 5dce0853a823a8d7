"""`maas local reset`: erases the stack's saved state only when the user says yes, never while
the stack runs, and nothing in its home that is not the stack's."""

from __future__ import annotations

import io
import os

import psutil
import pytest

from maas.cli import main


class Terminal(io.StringIO):
    """Standard input as a person at a terminal would give it."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def stopped_stack(tmp_path):
    """A stack home as `maas local down` leaves it: a file where each part keeps its state, and
    a file of the user's own beside them."""
    from maas_local.config import StackPaths
    from maas_local.stack import Supervisor

    paths = StackPaths(tmp_path / "home").ensure()
    kept = [
        paths.moto_state / "s3.pkl",
        paths.moto_state / "blobs" / ("0" * 64),
        paths.keys / "issuer.json",
        Supervisor(paths)._policies_file,
        paths.sagemaker_root / "control-plane.pkl",
        paths.training_job_log("maas-local-digits-20250102030405-ab12"),
        paths.endpoint_logs("maas-local-digits") / "AllTraffic.log",
        paths.progress_log,
    ]
    for path in kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("state")
    (paths.home / "notes.txt").write_text("mine")
    return paths


def _reset(capsys, monkeypatch, paths, *flags: str, stdin: io.StringIO) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", stdin)
    code = main(["--home", str(paths.home), "local", "reset", *flags])
    out, err = capsys.readouterr()
    return code, out, err


def _left(paths) -> list[str]:
    return sorted(p.relative_to(paths.home).as_posix() for p in paths.home.rglob("*"))


@pytest.mark.parametrize("answer", ["n\n", "\n", "nope\n", ""])
def test_anything_but_yes_at_the_prompt_erases_nothing(stopped_stack, capsys, monkeypatch, answer):
    before = _left(stopped_stack)

    code, out, _ = _reset(capsys, monkeypatch, stopped_stack, stdin=Terminal(answer))

    assert code == 1
    assert "[y/N]" in out and "nothing erased" in out
    assert _left(stopped_stack) == before


@pytest.mark.parametrize("answer", ["y\n", "yes\n", "Y\n"])
def test_yes_at_the_prompt_erases_the_stacks_state_and_nothing_else(
    stopped_stack, capsys, monkeypatch, answer
):
    code, out, _ = _reset(capsys, monkeypatch, stopped_stack, stdin=Terminal(answer))

    assert code == 0 and "erased" in out
    assert _left(stopped_stack) == ["notes.txt"]


def test_yes_flag_erases_without_asking(stopped_stack, capsys, monkeypatch):
    code, out, _ = _reset(capsys, monkeypatch, stopped_stack, "--yes", stdin=io.StringIO(""))

    assert code == 0 and "[y/N]" not in out
    assert _left(stopped_stack) == ["notes.txt"]


def test_without_a_terminal_or_yes_it_refuses(stopped_stack, capsys, monkeypatch):
    before = _left(stopped_stack)

    code, out, err = _reset(capsys, monkeypatch, stopped_stack, stdin=io.StringIO("y\n"))

    assert code == 2 and "--yes" in err and "[y/N]" not in out
    assert _left(stopped_stack) == before


def test_a_running_stack_is_refused_with_the_way_to_stop_it(stopped_stack, capsys, monkeypatch):
    from maas_local.config import write_private_json

    me = psutil.Process(os.getpid())  # a live supervisor, as far as the state file says
    supervisor = {"pid": me.pid, "create_time": me.create_time()}
    write_private_json(stopped_stack.state_file, {"supervisor": supervisor, "parts": {}})
    before = _left(stopped_stack)

    code, _, err = _reset(capsys, monkeypatch, stopped_stack, "--yes", stdin=io.StringIO(""))

    assert code == 1 and "`maas local down` first" in err
    assert _left(stopped_stack) == before


def test_the_state_file_of_a_stack_that_died_goes_too(stopped_stack, capsys, monkeypatch):
    from maas_local.config import write_private_json

    dead = {"pid": 2**22 + 1, "create_time": 1.0}  # above pid_max's default: no such process
    write_private_json(stopped_stack.state_file, {"supervisor": dead, "parts": {}})

    code, _, _ = _reset(capsys, monkeypatch, stopped_stack, "--yes", stdin=io.StringIO(""))

    assert code == 0
    assert _left(stopped_stack) == ["notes.txt"]


def test_an_empty_home_has_nothing_to_erase(tmp_path, capsys, monkeypatch):
    from maas_local.config import StackPaths

    code, out, _ = _reset(capsys, monkeypatch, StackPaths(tmp_path), stdin=Terminal("y\n"))

    assert code == 0 and "nothing to erase" in out
