"""`maas openapi`: the shipped document, or the one an API serves, to stdout or a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.client.stub_api import Reply, Request, stub_api
from tests.handlers.support import ROOT

SERVED = {"openapi": "3.1.0", "info": {"title": "maas", "version": "9"}, "paths": {}}


def _maas(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAAS_")}
    env["MAAS_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "maas", "openapi", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
    )


def _serves_the_document(request: Request) -> Reply:
    if request.path != "/v1/openapi.json":
        return Reply(404, {"error": "no route", "code": "NotFound", "request_id": "r"})
    if request.headers.get("x-api-key") != "key" or request.headers.get("Authorization") != (
        "Bearer tok"
    ):
        return Reply(403, {"error": "Forbidden", "code": "ACCESS_DENIED", "request_id": "r"})
    return Reply(200, SERVED)


def test_without_an_api_it_prints_the_shipped_document(tmp_path):
    done = _maas(home=tmp_path)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads((ROOT / "openapi.json").read_text())


def test_dash_o_writes_the_document_to_a_file(tmp_path):
    target = tmp_path / "api.json"

    done = _maas("-o", str(target), home=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert json.loads(target.read_text())["openapi"].startswith("3.")


def test_a_file_that_cannot_be_written_exits_2(tmp_path):
    done = _maas("-o", str(tmp_path / "missing" / "api.json"), home=tmp_path)

    assert done.returncode == 2
    assert "cannot write" in done.stderr


def test_with_an_api_url_it_fetches_what_the_api_serves(tmp_path):
    with stub_api(_serves_the_document) as api:
        done = _maas("--api-url", api.url, "--api-key", "key", "--token", "tok", home=tmp_path)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == SERVED
    assert [r.path for r in api.requests] == ["/v1/openapi.json"]


def test_an_api_that_refuses_exits_1_with_its_error(tmp_path):
    with stub_api(_serves_the_document) as api:
        done = _maas("--api-url", api.url, "--api-key", "wrong", "--token", "tok", home=tmp_path)

    assert done.returncode == 1
    assert "ACCESS_DENIED" in done.stderr
    assert done.stdout == ""
