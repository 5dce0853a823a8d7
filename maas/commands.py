"""The API commands: `maas train`, `maas models`, `maas deploy`, `maas predict`.

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

from maas.client import Client
from maas.credentials import Credentials

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
    return parent


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
    models = commands.add_parser("models", parents=[api], help="list models, or show one")
    models.add_argument("name", nargs="?")
    deploy = commands.add_parser("deploy", parents=[api], help="roll a version onto its endpoint")
    deploy.add_argument("name")
    deploy.add_argument("--version", type=int, required=True)
    deploy.add_argument("--wait", action="store_true", help="follow until it settles")
    _deployment_options(deploy)
    predict = commands.add_parser("predict", parents=[api], help="call a model")
    predict.add_argument("name")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", type=Path, help=".npy file, sent as application/x-npy")
    source.add_argument("--json", help="JSON instances, e.g. '[[...]]' or {\"instances\": ...}")


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


def _print(payload: Any) -> None:
    print(json.dumps(payload, indent=2, sort_keys=True))


def run(args: argparse.Namespace, home: Path | None) -> int:
    """Runs the API command `args.command`; `home` is the local stack's state folder."""
    api = Client(Credentials.resolve(home, args.api_url, args.api_key, args.token))
    commands = {"train": _train, "models": _models, "deploy": _deploy, "predict": _predict}
    return commands[args.command](api, args)


def _train(api: Client, args: argparse.Namespace) -> int:
    job = api.start_training(training_spec(args, api.credentials.local))
    if not args.wait:
        _print(job)
        return 0
    started = time.monotonic()
    for update in api.watch_training(job["id"]):
        print(describe_job(update, started), flush=True)
        job = update
    if job["status"] != "Completed":
        return 1
    if not args.deploy:
        return 0
    return _follow_auto_deployment(api, job)


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
    deployment: dict[str, Any] = {}
    for deployment in api.watch_deployment(job["model"], job["deployment_id"]):
        print(f"deployment {deployment['id']} {deployment['status']}", flush=True)
    return 0 if deployment.get("status") == "Succeeded" else 1


def _models(api: Client, args: argparse.Namespace) -> int:
    if args.name:
        _print({"model": api.model(args.name), "versions": api.versions(args.name)})
        return 0
    for item in api.models():
        live = item.get("live_version") or "-"
        print(f"{item['name']:<24} latest v{item['latest_version']:<4} live v{live}")
    return 0


def _deploy(api: Client, args: argparse.Namespace) -> int:
    spec = deployment_spec(args, args.name, api.credentials.local)
    deployment = api.deploy(args.name, {"version": args.version, **spec})
    if args.wait:
        for update in api.watch_deployment(args.name, deployment["id"]):
            print(f"{update['id']} {update['status']}", flush=True)
            deployment = update
    _print(deployment)
    if deployment["status"] == "Succeeded":
        return 0
    return 0 if not args.wait and deployment["status"] == "InProgress" else 1


def _predict(api: Client, args: argparse.Namespace) -> int:
    if args.file:
        data = args.file.read_bytes()
        _print(api.predict(args.name, data=data, content_type="application/x-npy"))
        return 0
    body = json.loads(args.json)
    _print(api.predict(args.name, body["instances"] if isinstance(body, dict) else body))
    return 0
