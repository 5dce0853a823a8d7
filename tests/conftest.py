"""How make test spreads the suite over pytest-xdist's workers.

Each test file is a group of its own, so module fixtures (a local stack, a trained model) are
built once. The folders whose session fixtures are expensive stay whole on one worker, so each
is built once per run rather than once per worker: the reliability stack and its trained
digits model, LocalStack, the CDK synthesis of both stages, the tiny trained models, and the
bench tests' MiniLM exports (ONNX, int8, Optimum's).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from tests.reliability.reliability_helpers import FIGURES_ENV

TESTS = Path(__file__).resolve().parent
WHOLE_FOLDERS = {"reliability", "localstack", "infra", "training", "bench"}


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """loadscope's scheduler with our scopes: a test file, or a whole folder of WHOLE_FOLDERS.
    (xdist's own `loadgroup` reads `xdist_group` marks into node ids, which pytest 9's items no
    longer report, so it falls back to scheduling test by test.) Scopes go out largest first."""
    from xdist.scheduler import LoadScopeScheduling

    class FileOrFolder(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]  # tests/<folder>/.../test_x.py
            parts = path.split("/")
            return parts[1] if len(parts) > 2 and parts[1] in WHOLE_FOLDERS else path

    return FileOrFolder(config, log)


def pytest_configure(config: pytest.Config) -> None:
    """The run's figures file (tests/reliability's tallies), named before the workers start so
    that they inherit it; the summary below reads it back."""
    if not hasattr(config, "workerinput") and FIGURES_ENV not in os.environ:
        # A worker inherits the controller's (it has no workerinput yet when this runs).
        handle, path = tempfile.mkstemp(prefix="maas-figures-", suffix=".jsonl")
        os.close(handle)
        os.environ[FIGURES_ENV] = path


def pytest_terminal_summary(terminalreporter) -> None:
    if hasattr(terminalreporter.config, "workerinput"):
        return  # a worker's summary is not shown; the controller's reads every worker's lines
    path = os.environ.get(FIGURES_ENV)
    if not path or not os.path.exists(path):
        return
    figures: dict = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            figure = json.loads(line)
            if figure["op"] == "add":
                figures[figure["name"]] = figures.get(figure["name"], 0) + figure["value"]
            else:
                figures[figure["name"]] = figure["value"]
    os.unlink(path)
    if figures:
        terminalreporter.section("reliability figures")
        for name, value in figures.items():
            terminalreporter.write_line(f"{name}: {value}")
