"""The `maas` package and command: a documented client that covers the API, and a command line
that loads the local stack only for `maas local`."""

from __future__ import annotations

import inspect
import json
import pydoc
import re
import subprocess
import sys
from pathlib import Path

import pytest

import maas
from maas.cli import main
from maas_contract.errors import error_body
from maas_contract.routes import STREAMING_GROUPS
from tests.client.stub_api import Reply, Request, stub_api

REPO = Path(__file__).resolve().parents[2]
ROUTE_METHODS = ("get", "post", "put", "patch", "delete")


def _loaded_after(code: str) -> list[str]:
    """The maas_local modules a fresh interpreter has loaded after running `code`."""
    probe = code + (
        "\nimport json, sys"
        "\nprint(json.dumps([m for m in sys.modules if m.startswith('maas_local')]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_maas_and_maas_help_leave_the_emulator_unloaded():
    assert _loaded_after("import maas") == []
    helped = "from maas.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    assert _loaded_after(helped) == []
    local_help = helped.replace("['--help']", "['local', 'up', '--help']")
    assert _loaded_after(local_help) == []


def test_python_m_maas_is_the_command():
    done = subprocess.run(
        [sys.executable, "-m", "maas", "--help"], capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert "usage: maas" in done.stdout and "local" in done.stdout


def test_help_on_the_client_documents_every_call():
    rendered = pydoc.render_doc(maas.Client, renderer=pydoc.plaintext)
    public = [name for name, _ in inspect.getmembers(maas.Client) if not name.startswith("_")]

    undocumented = [name for name in public if not inspect.getdoc(getattr(maas.Client, name))]
    assert undocumented == []
    assert all(name in rendered for name in public)
    assert "ApiError" in rendered and "Idempotency-Key" in rendered


def _templates() -> list[tuple[str, re.Pattern[str]]]:
    """The API's routes, less the streaming groups': the OpenAI-compatible API is called with
    the official `openai` client (tests/client/test_openai_client.py), not with maas.Client."""
    document = json.loads((REPO / "openapi.json").read_text())
    return [
        (method.upper(), re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"))
        for path, operations in document["paths"].items()
        for method in operations
        if method in ROUTE_METHODS
        and operations[method].get("tags", [""])[0] not in STREAMING_GROUPS
    ]


def _every_call(client: maas.Client) -> None:
    client.live()
    client.ready()
    client.server_metadata()
    client.model_ready("m")
    client.model_ready("m", 1)
    client.model_metadata("m")
    client.model_metadata("m", 1)
    client.openapi()
    client.predict("m", [[1]])
    client.infer("m", {"inputs": []})
    client.infer("m", {"inputs": []}, version=2)
    client.models()
    client.model("m")
    client.versions("m")
    client.register_version("m", {"artifact_uri": "s3://b/k"})
    client.deploy("m", {"version": 1})
    client.deployment("m", "d")
    client.rollback("m")
    client.start_training({"model": "m"})
    client.training_jobs()
    client.training_job("j")
    client.stop_training("j")
    client.delete_endpoint("m")
    client.create_upload("m")
    client.delete_version("m", 1)
    client.usage()
    client.delete_model("m")


def test_the_client_has_a_call_for_every_route_of_the_api():
    answer = {"items": [], "ready": True, "live": True, "status": "Completed"}

    with stub_api(lambda request: Reply(200, answer)) as api:
        _every_call(maas.Client.connect(api.url, "k", "t", timeout_s=5))

    called = {(r.method, r.path.split("?")[0]) for r in api.requests}
    uncovered = [
        (method, pattern.pattern)
        for method, pattern in _templates()
        if not any(m == method and pattern.match(path) for m, path in called)
    ]
    assert uncovered == []


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_command_prints_the_answer(capsys):
    def answer(request: Request) -> Reply:
        return Reply(200, {"version": 4, "instances_seen": request.json()["instances"]})

    with stub_api(answer) as api:
        remote = ("--api-url", api.url, "--api-key", "k", "--token", "t")
        code, out, _ = _run(capsys, "predict", "digits", "--json", '{"instances": [[1]]}', *remote)

    assert code == 0
    assert json.loads(out) == {"version": 4, "instances_seen": [[1]]}


def test_an_error_answer_exits_1_with_the_message_and_the_body(capsys):
    body = error_body("NotFound", "no model ghost", "req-3")

    with stub_api(lambda request: Reply(404, body)) as api:
        remote = ("--api-url", api.url, "--api-key", "k", "--token", "t")
        code, _, err = _run(capsys, "models", "ghost", *remote)

    assert code == 1
    assert "maas: HTTP 404 NotFound: no model ghost (request id req-3)" in err
    assert json.loads(err.split("\n", 1)[1]) == body


def test_local_commands_reach_the_stack_in_the_given_home(capsys, tmp_path):
    code, out, _ = _run(capsys, "--home", str(tmp_path), "local", "status")

    assert code == 3 and "not running" in out


def test_logs_of_an_unknown_part_names_the_parts(capsys, tmp_path):
    code, _, err = _run(capsys, "--home", str(tmp_path), "local", "logs", "nope")

    assert code == 2 and "supervisor" in err and "gateway" in err


@pytest.mark.parametrize("command", ["train", "models", "deploy", "predict"])
def test_api_commands_take_the_stage_flags(command):
    from maas.cli import build_parser

    parser = build_parser()
    required = {
        "train": ["--model", "m", "--recipe", "image-cnn", "--data", "s3://b/p/"],
        "models": [],
        "deploy": ["m", "--version", "1"],
        "predict": ["m", "--json", "[]"],
    }[command]

    args = parser.parse_args([command, *required, "--api-url", "https://a", "--token", "t"])

    assert (args.api_url, args.token, args.api_key) == ("https://a", "t", None)


def test_a_local_deployment_is_guarded_by_the_alarm_the_emulator_raises():
    from maas.cli import build_parser
    from maas.commands import deployment_spec

    args = build_parser().parse_args(["deploy", "digits", "--version", "2"])

    local = deployment_spec(args, "digits", local=True)
    remote = deployment_spec(args, "digits", local=False)

    assert local["rollback_alarms"] == ["maas-local-digits-model-errors"]
    assert "rollback_alarms" not in remote  # the stage's own alarms guard a cloud deployment
    assert remote == {"canary_percent": 10, "canary_wait_seconds": 300}
