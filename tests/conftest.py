"""How make test spreads the suite over pytest-xdist's workers (`--dist loadgroup`).

Each test file is a group of its own, so module fixtures (a local stack, a trained model) are
built once. The folders whose session fixtures are expensive stay whole on one worker, so each
is built once per run rather than once per worker: the reliability stack and its trained
digits model, LocalStack, the CDK synthesis of both stages, and the tiny trained models.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from tests.reliability.reliability_helpers import FIGURES_ENV

TESTS = Path(__file__).resolve().parent
WHOLE_FOLDERS = {"reliability", "localstack", "infra", "training"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        relative = item.path.resolve().relative_to(TESTS)
        top = relative.parts[0]
        group = top if top in WHOLE_FOLDERS else relative.as_posix()
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_configure(config: pytest.Config) -> None:
    """The run's figures file (tests/reliability's tallies), named before the workers start so
    that they inherit it; the summary below reads it back."""
    if not hasattr(config, "workerinput"):
        handle, path = tempfile.mkstemp(prefix="maas-figures-", suffix=".jsonl")
        os.close(handle)
        os.environ[FIGURES_ENV] = path


def pytest_terminal_summary(terminalreporter) -> None:
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
