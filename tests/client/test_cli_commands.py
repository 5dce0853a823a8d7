"""The `maas` command, run as a user runs it (a subprocess, its exit code checked), against a
stand-in API: each command calls the route it should, prints JSON or a table, follows every
page, and a user's mistake ends in one line and exit code 2, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.client.stub_api import Reply, Request, stub_api

REPO = Path(__file__).resolve().parents[2]
JOB = {
    "id": "maas-digits-1",
    "model": "digits",
    "recipe": "image-cnn",
    "status": "Completed",
    "metrics": {"validation:accuracy": 0.97},
    "registered_version": 3,
}
DEPLOYMENT = {"id": "d-1", "model": "digits", "version": 2, "status": "Succeeded"}


def maas(*argv: str, stdin: str | None = None, home: Path | None = None) -> tuple[int, str, str]:
    """`maas ARGV` in its own process. No AWS settings of the developer's leak in: without a
    region boto3 refuses at once, so a job's log in "the cloud" (CloudWatch) is never called."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAAS_", "AWS_"))}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    if home is not None:
        env["MAAS_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-m", "maas", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env=env,
    )
    return done.returncode, done.stdout, done.stderr


def remote(url: str) -> tuple[str, ...]:
    return ("--api-url", url, "--api-key", "k", "--token", "t")


def routes(request: Request) -> Reply:
    """A tiny API: two pages of models, jobs, a deployment, a version, an OIP answer."""
    path = urlsplit(request.path).path
    query = parse_qs(urlsplit(request.path).query)
    if path == "/v1/models":
        if "next_token" in query:
            return Reply(200, {"items": [{"name": "b", "latest_version": 1}], "next_token": None})
        first = {"name": "a", "latest_version": 2, "live_version": 2}
        return Reply(200, {"items": [first], "next_token": "page-2"})
    if path == "/v1/training-jobs":
        return Reply(200, {"items": [JOB], "next_token": None})
    if path.startswith("/v1/training-jobs/"):
        return Reply(200, JOB)
    if path.endswith("/rollback") or "/deployments/" in path:
        return Reply(202 if request.method == "POST" else 200, DEPLOYMENT)
    if path.endswith("/versions") and request.method == "POST":
        return Reply(201, {"model": "digits", "version": 7, **request.json()})
    if path.endswith("/infer"):
        return Reply(200, {"model_name": "digits", "outputs": [], "echo": request.json()})
    if path.endswith("/predict"):
        return Reply(200, {"version": 2, "outputs": request.json()})
    return Reply(404, {"error": "no route", "code": "NotFound", "request_id": "r"})


def test_models_follows_every_page_and_prints_a_table_or_json():
    with stub_api(routes) as api:
        code, out, err = maas("models", *remote(api.url))
        as_json = maas("models", "-o", "json", *remote(api.url))

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["model", "latest", "live", "deploying"]
    assert [line.split()[0] for line in lines[1:]] == ["a", "b"]  # the second page too
    assert [m["name"] for m in json.loads(as_json[1])] == ["a", "b"]


def test_jobs_list_show_and_follow():
    with stub_api(routes) as api:
        listed = maas("jobs", "list", *remote(api.url))
        shown = maas("jobs", "show", "maas-digits-1", *remote(api.url), "-o", "json")
        as_pairs = maas("jobs", "show", "maas-digits-1", *remote(api.url))
        followed = maas("jobs", "follow", "maas-digits-1", *remote(api.url))

    assert listed[0] == 0 and "maas-digits-1" in listed[1] and "Completed" in listed[1]
    assert json.loads(shown[1])["registered_version"] == 3
    assert as_pairs[0] == 0 and "registered_version  3" in as_pairs[1]  # the default: pairs
    assert followed[0] == 0
    assert "job maas-digits-1 completed; registered as version 3 of digits" in followed[1]


def test_a_job_whose_log_cannot_be_read_is_shown_with_sagemakers_metrics_instead():
    # given: a stage whose job logs (CloudWatch) this machine cannot read: no AWS region
    with stub_api(routes) as api:
        shown = maas("jobs", "show", "maas-digits-1", *remote(api.url), "-o", "json")
        followed = maas("jobs", "follow", "maas-digits-1", *remote(api.url))

    assert shown[0] == 0 and json.loads(shown[1])["history"] == []
    assert "cannot read the job's log, so no epochs from it" in shown[2]
    assert followed[0] == 0
    assert "validation:accuracy=0.97" in followed[1]  # SageMaker's latest, as the API gives it
    assert followed[2].count("cannot read the job's log") == 1


def test_jobs_stop_deletes_the_job():
    with stub_api(routes) as api:
        code, _, err = maas("jobs", "stop", "maas-digits-1", *remote(api.url))

    assert code == 0, err
    assert [(r.method, r.path) for r in api.requests] == [
        ("DELETE", "/v1/training-jobs/maas-digits-1")
    ]


def test_deployments_show_and_rollback():
    with stub_api(routes) as api:
        shown = maas("deployments", "show", "digits", "d-1", *remote(api.url))
        rolled = maas("rollback", "digits", *remote(api.url))

    assert shown[0] == 0 and json.loads(shown[1])["status"] == "Succeeded"
    assert rolled[0] == 0
    rollback = [r for r in api.requests if r.method == "POST"][0]
    assert rollback.path == "/v1/models/digits/rollback"
    assert rollback.headers.get("Idempotency-Key")  # a retry replays, never flips back


def test_versions_register_sends_the_version_create_body():
    with stub_api(routes) as api:
        code, out, err = maas(
            "versions", "register", "digits", "--artifact", "s3://b/m.tar.gz",
            "--recipe", "image-cnn", "--metric", "validation:accuracy=0.97", *remote(api.url),
        )  # fmt: skip

    assert code == 0, err
    sent = [r for r in api.requests if r.method == "POST"][0].json()
    assert sent == {
        "artifact_uri": "s3://b/m.tar.gz",
        "recipe": "image-cnn",
        "metrics": {"validation:accuracy": 0.97},
    }
    assert json.loads(out)["version"] == 7


def test_delete_endpoint_waits_until_sagemaker_has_deleted_it_then_version_and_model():
    answers = iter(["Deleting", "Deleting", "Deleted"])

    def removal(request: Request) -> Reply:
        if request.path == "/v1/models/digits/endpoint":
            return Reply(202, {"model": "digits", "status": next(answers)})
        return Reply(204, b"")

    with stub_api(removal) as api:
        endpoint = maas("delete", "endpoint", "digits", "--wait", *remote(api.url))
        version = maas("delete", "version", "digits", "3", *remote(api.url))
        model = maas("delete", "model", "digits", *remote(api.url))

    assert endpoint[0] == 0 and json.loads(endpoint[1])["status"] == "Deleted", endpoint
    assert version[0] == model[0] == 0
    assert [(r.method, r.path) for r in api.requests] == [
        ("DELETE", "/v1/models/digits/endpoint"),
        ("DELETE", "/v1/models/digits/endpoint"),
        ("DELETE", "/v1/models/digits/endpoint"),
        ("DELETE", "/v1/models/digits/versions/3"),
        ("DELETE", "/v1/models/digits"),
    ]


def test_predict_pins_a_version_and_reads_standard_input():
    with stub_api(routes) as api:
        code, out, err = maas(
            "predict", "digits", "--version", "2", "--json", "-", *remote(api.url),
            stdin='{"instances": [[1, 2]]}',
        )  # fmt: skip

    assert code == 0, err
    (call,) = api.requests
    assert call.path == "/v1/models/digits/predict?version=2"
    assert call.json() == {"instances": [[1, 2]]}


def test_infer_sends_an_oip_request_from_a_file(tmp_path):
    request = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]}]}
    (tmp_path / "req.json").write_text(json.dumps(request))

    with stub_api(routes) as api:
        code, out, err = maas(
            "infer", "digits", "--json", f"@{tmp_path / 'req.json'}", *remote(api.url)
        )

    assert code == 0, err
    assert api.requests[0].path == "/v2/models/digits/infer"
    assert json.loads(out)["echo"] == request


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("predict", "digits", "--json", "[[1, 2"), "--json is not JSON"),
        (("predict", "digits", "--json", "@/no/such/file.json"), "No such file"),
        (("predict", "digits", "--file", "/no/such/x.npy"), "--file /no/such/x.npy"),
        (("predict", "digits", "--json", '{"inputs": []}'), "use `maas infer`"),
        (("infer", "digits", "--json", "[[1]]"), '{"inputs": [...]}'),
        (("versions", "register", "d", "--artifact", "s3://b/m.tar.gz", "--recipe", "r",
          "--metric", "acc=high"), "a metric is a number"),
    ],
)  # fmt: skip
def test_a_users_mistake_is_one_line_and_exit_code_2(argv, says):
    with stub_api(routes) as api:
        code, out, err = maas(*argv, *remote(api.url))

    assert code == 2, (out, err)
    assert "Traceback" not in err
    assert err.strip().count("\n") == 0 and says in err
    assert api.requests == []  # refused before any call


def test_global_options_go_before_or_after_the_command(tmp_path):
    before = maas("--home", str(tmp_path), "local", "status")
    after = maas("local", "status", "--home", str(tmp_path))

    assert before[0] == after[0] == 3
    assert str(tmp_path) in before[1] or "not running" in before[1]
    assert before[1] == after[1]


def test_version_and_defaults_in_help():
    version = maas("--version")
    helped = maas("deploy", "--help")

    assert version[0] == 0 and version[1].startswith("maas ")
    assert helped[0] == 0 and "(default: 10)" in helped[1]  # --canary


def test_a_reader_that_goes_away_is_no_traceback():
    """`maas models | head -c 5`: head leaves after 5 bytes of a 300 KB answer, so maas's
    next write meets a closed pipe; it ends quietly (141, as for SIGPIPE), no traceback."""
    many = [{"name": f"model-{i:05d}", "latest_version": 1} for i in range(5000)]

    with stub_api(lambda request: Reply(200, {"items": many, "next_token": None})) as api:
        command = f"{sys.executable} -m maas models -o json {' '.join(remote(api.url))}"
        done = subprocess.run(
            ["bash", "-c", f"set -o pipefail; {command} | head -c 5 > /dev/null"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )

    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.returncode == 141
