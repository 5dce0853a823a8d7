"""The predict function runs from a SnapStart snapshot: each function's routes module registers
one warm-up with the runtime's before-snapshot hook, which creates its AWS clients and builds
its routes' validators, so a restored function does neither on its first request.

Lambda's managed Python runtimes include the `snapshot_restore_py` library, whose
`register_before_snapshot(func)` runs `func` before the snapshot is taken; a hook registered in
a module the handler imports counts.
https://docs.aws.amazon.com/lambda/latest/dg/snapstart-runtime-hooks-python.html
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from handlers.predict import routes as predict
from handlers.shared.resolver import resolver, warm_before_snapshot
from maas_contract.routes import EVENTS_GROUP, ROUTE_GROUPS, STREAMING_GROUPS
from tests.handlers.support import ROOT, api_event

# Stands in for the runtime's library: it records what is registered.
FAKE_RUNTIME_LIBRARY = """
REGISTERED = []


def register_before_snapshot(func, *args, **kwargs):
    REGISTERED.append((func, args, kwargs))
    return func
"""
PROBE = """
import importlib, json, sys
from maas_contract.routes import STREAMING_GROUPS, handler_module
group = sys.argv[1]
streaming = group in STREAMING_GROUPS
importlib.import_module(f"handlers.{group}.app" if streaming else handler_module(group))
from handlers.shared import aws
before = sorted(aws._clients)
hooks = sys.modules.get("snapshot_restore_py")
registered = hooks.REGISTERED if hooks else []
for func, args, kwargs in registered:
    func(*args, **kwargs)
print(json.dumps({"hooks": len(registered), "before": before, "after": sorted(aws._clients),
                  "library": "snapshot_restore_py" in sys.modules}))
"""


def _probe(group: str, library_dir: str | None) -> dict:
    path = [str(ROOT)] + ([library_dir] if library_dir else [])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(path),
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "1",
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE, group],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def runtime_library(tmp_path) -> str:
    (tmp_path / "snapshot_restore_py.py").write_text(FAKE_RUNTIME_LIBRARY)
    return str(tmp_path)


def test_the_predict_function_warms_its_clients_in_the_before_snapshot_hook(runtime_library):
    probe = _probe("predict", runtime_library)

    assert probe["hooks"] == 1
    assert probe["before"] == []  # nothing is created at import ...
    assert probe["after"] == ["dynamodb", "sagemaker", "sagemaker-runtime"]  # ... but before


@pytest.mark.parametrize(
    "group", [g for g in (*ROUTE_GROUPS, EVENTS_GROUP) if g not in STREAMING_GROUPS]
)
def test_every_function_registers_exactly_its_own_warm_up(runtime_library, group):
    assert _probe(group, runtime_library)["hooks"] == 1


@pytest.mark.parametrize("group", sorted(STREAMING_GROUPS))
def test_a_streaming_function_registers_no_warm_up(runtime_library, group):
    """Its process is the ASGI server that the Lambda Web Adapter starts, not the Python
    runtime, whose before-snapshot hooks would never run there."""
    probe = _probe(group, runtime_library)

    assert probe["hooks"] == 0 and probe["before"] == []


def test_outside_lambda_the_hook_library_is_absent_and_nothing_is_registered():
    probe = _probe("predict", None)

    assert probe == {"hooks": 0, "before": [], "after": [], "library": False}


def _health(app, context) -> int:
    return app.resolve(api_event("GET", "/v2/health/live"), context)["statusCode"]


def _no_more_building(monkeypatch: pytest.MonkeyPatch) -> None:
    """From here on, building a route's validation model fails."""
    from aws_lambda_powertools.event_handler.openapi import dependant

    def refuse(**kwargs):
        raise AssertionError("a route's validation was built on the request path")

    monkeypatch.setattr(dependant, "get_dependant", refuse)


def test_the_warm_up_builds_every_routes_validation_before_the_first_request(
    monkeypatch, lambda_context
):
    app = resolver(predict.router)
    warm_before_snapshot([], app)()
    _no_more_building(monkeypatch)

    assert _health(app, lambda_context) == 200


def test_without_the_warm_up_the_first_request_builds_the_validation(monkeypatch, lambda_context):
    app = resolver(predict.router)
    _no_more_building(monkeypatch)

    assert _health(app, lambda_context) == 500
