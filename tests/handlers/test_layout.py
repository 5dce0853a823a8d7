"""handlers/ reads at a glance: one folder per route group with the same three parts, entry
points where the contract says, and the registry's two modules alone write its keys and
expressions: `registry_table` (the key layout and item codec) and `registry_lifecycle` (the
conditional transitions of deployments and removals). The streaming groups are ASGI apps with
vLLM's three parts (app, protocol, serving); the token-usage table's keys and expressions are
its one module's (`handlers/openai/quotas.py`)."""

from __future__ import annotations

import importlib
import re

import pytest

from maas_contract.routes import (
    EVENTS_GROUP,
    ROUTE_GROUPS,
    STREAMING_GROUPS,
    handler_entry,
    handler_module,
)
from tests.handlers.support import ROOT

HANDLERS = ROOT / "handlers"
GROUPS = [g for g in (*ROUTE_GROUPS, EVENTS_GROUP) if g not in STREAMING_GROUPS]
TABLE_MODULE = HANDLERS / "shared" / "registry_table.py"
USAGE_MODULE = HANDLERS / "openai" / "quotas.py"  # the token-usage table's
LIFECYCLE_MODULE = HANDLERS / "shared" / "registry_lifecycle.py"
# What only the table module may write: expressions, and the key attributes and layout.
TABLE_DETAILS = re.compile(
    r"KeyConditionExpression|ConditionExpression|UpdateExpression|\"(pk|sk|gsi1pk|gsi1sk)\""
    r"|MODEL#|JOB#|VERSION#|DEPLOYMENT#"
)
# DynamoDB's condition language: only the two registry modules write it.
CONDITIONS = re.compile(r"attribute_(not_)?exists\(|\bSET\s+\w+\s*=|\bREMOVE\s+\w")


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_has_routes_service_and_schemas(group):
    folder = HANDLERS / group
    assert {"routes.py", "service.py", "schemas.py"} <= {p.name for p in folder.glob("*.py")}


@pytest.mark.parametrize("group", sorted(STREAMING_GROUPS))
def test_every_streaming_group_is_an_asgi_app_with_app_protocol_and_serving(group):
    import inspect

    folder = HANDLERS / group
    module = importlib.import_module(f"handlers.{group}.app")

    assert {"app.py", "protocol.py", "serving.py"} <= {p.name for p in folder.glob("*.py")}
    assert inspect.iscoroutinefunction(module.app)
    assert list(inspect.signature(module.app).parameters) == ["scope", "receive", "send"]


@pytest.mark.parametrize("group", GROUPS)
def test_the_contracts_entry_point_of_each_group_is_its_routes_modules_handler(group):
    module = importlib.import_module(handler_module(group))

    assert handler_entry(group) == f"handlers.{group}.routes.handler"
    assert callable(module.handler)


def test_only_the_registry_table_module_writes_keys_and_expressions():
    offenders = [
        str(path.relative_to(ROOT))
        for path in HANDLERS.rglob("*.py")
        if path not in (TABLE_MODULE, USAGE_MODULE) and TABLE_DETAILS.search(path.read_text())
    ]

    assert offenders == []
    assert TABLE_DETAILS.search(TABLE_MODULE.read_text())
    assert not re.search(r"MODEL#|JOB#|VERSION#|DEPLOYMENT#", USAGE_MODULE.read_text())


def test_only_the_registry_modules_write_condition_expressions():
    owners = {TABLE_MODULE, LIFECYCLE_MODULE}
    offenders = [
        str(path.relative_to(ROOT))
        for path in HANDLERS.rglob("*.py")
        if path not in owners and CONDITIONS.search(path.read_text())
    ]

    assert offenders == []
    assert CONDITIONS.search(LIFECYCLE_MODULE.read_text())


def test_no_handlers_module_is_over_300_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in HANDLERS.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 300
    }

    assert long == {}
