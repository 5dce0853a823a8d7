"""The API commands: `maas train`, `maas models`, `maas versions`, `maas deploy`,
`maas deployments`, `maas rollback`, `maas predict`, `maas infer` (and `maas jobs`, in
commands_jobs).

They take --api-url/--api-key/--token (or MAAS_API_URL, MAAS_API_KEY, MAAS_TOKEN) and so work
against a deployed stage; without them they call the running local stack.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from maas import commands_jobs
from maas.client import Client
from maas.credentials import Credentials
from maas.errors import UsageError
from maas.output import add_option, emit, table

_THRESHOLD = re.compile(r"^\s*([A-Za-z0-9_.:/-]+)\s*(>=|<=)\s*([-+0-9.eE]+)\s*$")


def parse_threshold(text: str) -> dict[str, Any]:
    """'validation:accuracy>=0.95' -> {metric, value, goal: maximize}; '<=' minimizes."""
    found = _THRESHOLD.match(text)
    if not found:
        raise argparse.ArgumentTypeError("expected METRIC>=VALUE or METRIC<=VALUE")
    metric, op, value = found.groups()
    return {
        "metric": metric,
        "value": float(value),
        "goal": "maximize" if op == ">=" else "minimize",
    }


def parse_hyperparameter(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("expected KEY=VALUE")
    for kind in (int, float):
        try:
            return key, kind(raw)
        except ValueError:
            pass
    return key, {"true": True, "false": False}.get(raw.lower(), raw)


def _local_time_scale() -> str:
    """The emulator's time scale, as the running local stack recorded it."""
    from maas_local.config import StackPaths, default_home, read_json

    state = read_json(StackPaths(default_home()).state_file) or {}
    return str(state.get("sagemaker_time_scale", "0.1"))


def deployment_spec(args: argparse.Namespace, model: str, local: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"canary_percent": args.canary, "canary_wait_seconds": args.wait_seconds}
    if args.rollback_alarm:
        spec["rollback_alarms"] = args.rollback_alarm
    elif local:
        from maas_local.config import RESOURCE_PREFIX

        # The emulator raises any named alarm when the new fleet's error rate climbs.
        spec["rollback_alarms"] = [f"{RESOURCE_PREFIX}-{model}-model-errors"]
    if local:
        scale = _local_time_scale()
        print(
            f"local stack: deployment waits run at {scale}x the time asked for "
            "(MAAS_SAGEMAKER_TIME_SCALE at `maas local up`)",
            file=sys.stderr,  # stdout stays the command's answer, JSON where it is JSON
            flush=True,
        )
    if args.instance_type:
        spec["instance_type"] = args.instance_type
    return spec


def _deployment_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--canary", type=int, default=10, help="canary size, %% of capacity")
    parser.add_argument(
        "--wait-seconds",
        type=int,
        default=300,
        help="how long the canary bakes before the rest shifts",
    )
    parser.add_argument(
        "--rollback-alarm",
        action="append",
        default=[],
        help="CloudWatch alarm that rolls the canary back (repeatable)",
    )
    parser.add_argument("--instance-type", help="endpoint instance type, e.g. ml.m5.large")


def api_options() -> argparse.ArgumentParser:
    """The options every API command takes: where the API is and the caller's credentials."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--api-url", help="the API's base URL, stage included")
    parent.add_argument("--api-key", help="value for the x-api-key header")
    parent.add_argument("--token", help="bearer token (OAuth2 client-credentials access token)")
    parent.add_argument(
        "--profile",
        help="a profile of ~/.config/maas/config (or MAAS_PROFILE): the API URL, key, and the "
        "token or the client credentials to get one",
    )
    add_option(parent)
    return parent


def read_json_argument(text: str, what: str = "--json") -> Any:
    """A JSON value given inline, as @FILE, or as - (standard input)."""
    if text == "-":
        raw = sys.stdin.read()
    elif text.startswith("@"):
        raw = read_file_argument(Path(text[1:]), what).decode("utf-8", errors="replace")
    else:
        raw = text
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        raise UsageError(f"{what} is not JSON: {error.msg} at line {error.lineno}") from error


def read_file_argument(path: Path, what: str = "--file") -> bytes:
    """A file's bytes, or standard input's for -."""
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as error:
        raise UsageError(f"{what} {path}: {error.strerror or error}") from error


def add_parsers(commands: argparse._SubParsersAction, api: argparse.ArgumentParser) -> None:
    train = commands.add_parser("train", parents=[api], help="start a training job")
    train.add_argument("--model", required=True, help="model name, e.g. digits")
    train.add_argument(
        "--recipe",
        required=True,
        help="the training recipe, e.g. image-cnn; the API lists the others if it refuses one",
    )
    train.add_argument("--data", required=True, help="s3:// URI of the train channel")
    train.add_argument("--validation", help="s3:// URI of the validation channel")
    train.add_argument(
        "--hp",
        action="append",
        type=parse_hyperparameter,
        default=[],
        metavar="KEY=VALUE",
        help="hyperparameter (repeatable)",
    )
    train.add_argument(
        "--threshold", type=parse_threshold, help="register only if e.g. validation:accuracy>=0.95"
    )
    train.add_argument("--deploy", action="store_true", help="deploy the version if it clears")
    train.add_argument("--on-demand", action="store_true", help="no managed spot")
    train.add_argument("--wait", action="store_true", help="follow the job until it ends")
    _deployment_options(train)
    commands.add_parser(
        "usage",
        parents=[api],
        help="each client's tokens of the OpenAI-compatible API, this minute and today, "
        "against its limits (admin scope)",
    )
    models = commands.add_parser("models", parents=[api], help="list models, or show one")
    models.add_argument("name", nargs="?")
    deploy = commands.add_parser("deploy", parents=[api], help="roll a version onto its endpoint")
    deploy.add_argument("name")
    deploy.add_argument("--version", type=int, required=True)
    deploy.add_argument("--wait", action="store_true", help="follow until it settles")
    _deployment_options(deploy)
    predict = commands.add_parser("predict", parents=[api], help="call a model")
    predict.add_argument("name")
    predict.add_argument("--version", type=int, help="only this version (while it is live)")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--file", type=Path, help=".npy file (- for standard input), sent as application/x-npy"
    )
    source.add_argument(
        "--json",
        help="instances: '[[...]]' or '{\"instances\": ...}', @FILE, or - for standard input",
    )
    infer = commands.add_parser("infer", parents=[api], help="Open Inference Protocol v2 infer")
    infer.add_argument("name")
    infer.add_argument("--version", type=int, help="only this version (while it is live)")
    infer.add_argument(
        "--json", required=True, help='{"inputs": [...]} inline, @FILE, or - for standard input'
    )
    versions = commands.add_parser("versions", help="a model's versions: list, register")
    version_actions = versions.add_subparsers(dest="action", required=True)
    listed = version_actions.add_parser("list", parents=[api], help="every version, newest first")
    listed.add_argument("name")
    register = version_actions.add_parser(
        "register", parents=[api], help="register a model.tar.gz already in the artifact bucket"
    )
    register.add_argument("name")
    register.add_argument("--artifact", required=True, help="s3:// URI of the model.tar.gz")
    register.add_argument("--recipe", required=True, help="the recipe that made it")
    register.add_argument("--version", type=int, help="the number (default: the next one)")
    register.add_argument(
        "--metric",
        action="append",
        type=parse_hyperparameter,
        default=[],
        metavar="NAME=VALUE",
        help="a metric to record, e.g. validation:accuracy=0.97 (repeatable)",
    )
    register.add_argument("--description", help="a line about this version")
    deployments = commands.add_parser("deployments", help="a deployment's status: show, watch")
    deployment_actions = deployments.add_subparsers(dest="action", required=True)
    for action, text in (("show", "its status now"), ("watch", "follow it until it settles")):
        one = deployment_actions.add_parser(action, parents=[api], help=text)
        one.add_argument("name", help="the model")
        one.add_argument("id", help="the deployment's id, as `maas deploy` printed it")
    rollback = commands.add_parser(
        "rollback", parents=[api], help="back to the version that was live before"
    )
    rollback.add_argument("name")
    rollback.add_argument("--wait", action="store_true", help="follow until it settles")
    delete = commands.add_parser("delete", help="what costs money or is no longer wanted")
    removals = delete.add_subparsers(dest="action", required=True)
    endpoint = removals.add_parser(
        "endpoint", parents=[api], help="a model's endpoint (GPU endpoints bill while idle)"
    )
    endpoint.add_argument("name", help="the model")
    endpoint.add_argument(
        "--wait", action="store_true", help="call again until SageMaker has deleted it"
    )
    version = removals.add_parser("version", parents=[api], help="a version that is not live")
    version.add_argument("name", help="the model")
    version.add_argument("version", type=int)
    model = removals.add_parser(
        "model", parents=[api], help="a model and its versions, once its endpoint is gone"
    )
    model.add_argument("name")
    commands_jobs.add_parsers(commands, api)


def training_spec(args: argparse.Namespace, local: bool = False) -> dict[str, Any]:
    datasets = {"train": args.data}
    if args.validation:
        datasets["validation"] = args.validation
    spec: dict[str, Any] = {
        "model": args.model,
        "recipe": args.recipe,
        "datasets": datasets,
        "hyperparameters": dict(args.hp),
        "spot": not args.on_demand,
    }
    if args.threshold:
        spec["metric_threshold"] = args.threshold
    if args.deploy:
        spec["auto_deploy"] = True
        spec["deployment"] = deployment_spec(args, args.model, local)
    return spec


def describe_job(job: dict[str, Any], started: float) -> str:
    metrics = " ".join(f"{k}={v:.4g}" for k, v in sorted((job.get("metrics") or {}).items()))
    status = job.get("status", "?")
    if job.get("secondary_status"):
        status += f"/{job['secondary_status']}"
    line = f"[{time.monotonic() - started:5.1f}s] {job.get('id', '')} {status} {metrics}"
    if job.get("failure_reason"):
        line += f" reason: {job['failure_reason']}"
    if job.get("registered_version"):
        line += f" -> version {job['registered_version']}"
    return line.rstrip()


def run(args: argparse.Namespace, home: Path | None) -> int:
    """Runs the API command `args.command`; `home` is the local stack's state folder."""
    api = Client(
        Credentials.resolve(home, args.api_url, args.api_key, args.token, profile=args.profile)
    )
    commands = {
        "train": _train,
        "models": _models,
        "versions": _versions,
        "deploy": _deploy,
        "deployments": _deployments,
        "rollback": _rollback,
        "predict": _predict,
        "infer": _infer,
        "jobs": commands_jobs.run,
        "delete": _delete,
        "usage": _usage,
    }
    return commands[args.command](api, args)


# training/train.py's --epochs default per recipe (maas_training.recipes), for a job started
# without one.
TRAIN_DEFAULT_EPOCHS = 10
RECIPE_DEFAULT_EPOCHS = {"text-generation": 1, "text-transformer": 1}


def total_epochs(hyperparameters: dict[str, Any], recipe: str | None = None) -> int | None:
    """How many epochs a job with these hyperparameters runs (None: not a count we can read)."""
    default = RECIPE_DEFAULT_EPOCHS.get(recipe or "", TRAIN_DEFAULT_EPOCHS)
    epochs = hyperparameters.get("epochs", default)
    return epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None


def _train(api: Client, args: argparse.Namespace) -> int:
    spec = training_spec(args, api.credentials.local)
    job = api.start_training(spec)
    if not args.wait:
        emit(args, job)
        return 0
    home = commands_jobs.stack_home(args)
    ended = commands_jobs.follow(
        api, job["id"], home, total_epochs(spec["hyperparameters"], spec["recipe"])
    )
    if ended is None:
        return 130
    if ended["status"] != "Completed":
        return 1
    if not args.deploy:
        return 0
    return _follow_auto_deployment(api, ended)


def _follow_auto_deployment(api: Client, job: dict[str, Any], wait_s: float = 120.0) -> int:
    """After a job with --deploy: the deployment its completion started, followed until it
    settles (or why there is none: the threshold was not met)."""
    deadline = time.monotonic() + wait_s
    # "registered" comes first, the deployment's id a moment later; "not registered: why"
    # means there will be none.
    while not job.get("deployment_id") and not str(job.get("outcome")).startswith("not "):
        if time.monotonic() > deadline:
            print(f"no deployment started within {wait_s:.0f}s of the job's end", flush=True)
            return 1
        time.sleep(1.0)
        job = api.training_job(job["id"])
    if not job.get("deployment_id"):
        print(job.get("outcome"), flush=True)
        return 1
    model, deployment_id = job["model"], job["deployment_id"]
    print(f"waiting for deployment {deployment_id} of {model} ...", flush=True)
    deployment: dict[str, Any] = {}
    try:
        for deployment in api.watch_deployment(model, deployment_id):
            print(f"deployment {deployment['id']} {deployment['status']}", flush=True)
    except KeyboardInterrupt:
        print(
            f"\nthe deployment goes on; `maas deployments watch {model} {deployment_id}` "
            "picks it up again",
            file=sys.stderr,
        )
        return 130
    return 0 if deployment.get("status") == "Succeeded" else 1


def _models(api: Client, args: argparse.Namespace) -> int:
    if args.name:
        emit(args, {"model": api.model(args.name), "versions": api.versions(args.name)})
        return 0
    models = api.models()  # every page
    rows = [
        [m["name"], m["latest_version"], m.get("live_version"), m.get("active_deployment")]
        for m in models
    ]
    emit(args, models, lambda: table(["model", "latest", "live", "deploying"], rows))
    return 0


USAGE_COLUMNS = ["client", "name", "window", "prompt", "completion", "total", "limit", "left"]


def _usage(api: Client, args: argparse.Namespace) -> int:
    """Two rows a client: this minute's tokens and today's, each against its limit (schema
    ``UsageReport``)."""
    usage = api.usage()
    rows = []
    for client in usage.get("clients", []):
        for window, limit_name in (("minute", "tokens_per_minute"), ("day", "tokens_per_day")):
            used = client.get(window) or {}
            limit = (client.get("limits") or {}).get(limit_name)
            total = used.get("total_tokens", 0)
            left = max(0, limit - total) if isinstance(limit, int) else None
            rows.append(
                [
                    client.get("client_id"),
                    client.get("name"),
                    window,
                    used.get("prompt_tokens", 0),
                    used.get("completion_tokens", 0),
                    total,
                    limit,
                    left,
                ]
            )
    emit(args, usage, lambda: table(USAGE_COLUMNS, rows))
    return 0


def _versions(api: Client, args: argparse.Namespace) -> int:
    if args.action == "list":
        found = api.versions(args.name)
        rows = [
            [v["version"], v["recipe"], v.get("artifact_sha256", "")[:12], v["created_at"]]
            for v in found
        ]
        emit(args, found, lambda: table(["version", "recipe", "sha256", "created"], rows))
        return 0
    spec: dict[str, Any] = {
        "artifact_uri": args.artifact,
        "recipe": args.recipe,
        "metrics": {name: _number(name, value) for name, value in args.metric},
    }
    if args.version is not None:
        spec["version"] = args.version
    if args.description:
        spec["description"] = args.description
    emit(args, api.register_version(args.name, spec))
    return 0


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"--metric {name}={value}: a metric is a number")
    return float(value)


def _deployments(api: Client, args: argparse.Namespace) -> int:
    deployment = api.deployment(args.name, args.id)
    if args.action == "watch":
        for deployment in api.watch_deployment(args.name, args.id):  # noqa: B020
            print(f"{deployment['id']} {deployment['status']}", file=sys.stderr, flush=True)
    emit(args, deployment)
    return 0 if deployment["status"] in ("Succeeded", "InProgress") else 1


def _rollback(api: Client, args: argparse.Namespace) -> int:
    deployment = api.rollback(args.name)
    if args.wait:
        for deployment in api.watch_deployment(args.name, deployment["id"]):  # noqa: B020
            print(f"{deployment['id']} {deployment['status']}", file=sys.stderr, flush=True)
    emit(args, deployment)
    return 0 if deployment["status"] in ("Succeeded", "InProgress") else 1


def _deploy(api: Client, args: argparse.Namespace) -> int:
    spec = deployment_spec(args, args.name, api.credentials.local)
    deployment = api.deploy(args.name, {"version": args.version, **spec})
    if args.wait:
        for update in api.watch_deployment(args.name, deployment["id"]):
            print(f"{update['id']} {update['status']}", flush=True)
            deployment = update
    emit(args, deployment)
    if deployment["status"] == "Succeeded":
        return 0
    return 0 if not args.wait and deployment["status"] == "InProgress" else 1


def _predict(api: Client, args: argparse.Namespace) -> int:
    if args.file:
        data = read_file_argument(args.file)
        answer = api.predict(
            args.name, data=data, content_type="application/x-npy", version=args.version
        )
        emit(args, answer)
        return 0
    body = read_json_argument(args.json)
    if isinstance(body, dict) and "instances" not in body:
        hint = " (an Open Inference Protocol request: use `maas infer`)" if "inputs" in body else ""
        raise UsageError(f'--json takes [[...]] or {{"instances": [...]}}{hint}')
    instances = body["instances"] if isinstance(body, dict) else body
    if not isinstance(instances, list):
        raise UsageError("--json: the instances are a list, one item per row")
    emit(args, api.predict(args.name, instances, version=args.version))
    return 0


def _infer(api: Client, args: argparse.Namespace) -> int:
    request = read_json_argument(args.json)
    if not isinstance(request, dict) or "inputs" not in request:
        raise UsageError('--json takes an inference request: {"inputs": [...]}')
    emit(args, api.infer(args.name, request, version=args.version))
    return 0


def _delete(api: Client, args: argparse.Namespace) -> int:
    if args.action == "version":
        api.delete_version(args.name, args.version)
        print(f"version {args.version} of {args.name} deleted", file=sys.stderr)
        return 0
    if args.action == "model":
        api.delete_model(args.name)
        print(f"model {args.name} deleted", file=sys.stderr)
        return 0
    removal = api.delete_endpoint(args.name)
    deadline = time.monotonic() + 600
    while args.wait and removal.get("status") != "Deleted" and time.monotonic() < deadline:
        time.sleep(2.0)
        removal = api.delete_endpoint(args.name)  # each call answers alike, and cleans up
    emit(args, removal)
    return 0 if removal.get("status") == "Deleted" or not args.wait else 1
