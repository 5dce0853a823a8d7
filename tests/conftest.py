"""How make test spreads the suite over pytest-xdist's workers (`--dist loadgroup`).

Each test file is a group of its own, so module fixtures (a local stack, a trained model) are
built once. The folders whose session fixtures are expensive stay whole on one worker, so each
is built once per run rather than once per worker: the reliability stack and its trained
digits model, LocalStack, the CDK synthesis of both stages, and the tiny trained models.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
WHOLE_FOLDERS = {"reliability", "localstack", "infra", "training"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        relative = item.path.resolve().relative_to(TESTS)
        top = relative.parts[0]
        group = top if top in WHOLE_FOLDERS else relative.as_posix()
        item.add_marker(pytest.mark.xdist_group(group))
