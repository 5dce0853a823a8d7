"""`maas smoke`: its options, and the stage it checks (the flags, or the running local stack)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from maas import smoke
from maas.smoke import Plan, Smoke, Target, digits_payload


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "smoke",
        help="check a deployed stage end to end (token, predict, a tiny training job)",
        description=smoke.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # Else `--client-secret S` would pass as `--client-secret-file S`: a secret in argv.
        allow_abbrev=False,
    )
    add = parser.add_argument
    add("--api-url", help="the stage's ApiUrl output (default: the local stack)")
    add("--token-url", help="the stage's TokenUrl output")
    add("--client-id", help="an app client id (a ClientId... output)")
    add(
        "--client-secret-file",
        type=Path,
        help="file holding the app client's secret (or set MAAS_CLIENT_SECRET)",
    )
    add("--api-key-file", type=Path, help="file holding the API key (or set MAAS_API_KEY)")
    add("--model", required=True, help="a small model already deployed")
    add("--payload", type=Path, help="request body (default: one digits image as JSON)")
    add("--content-type", default="application/json", help="the payload's content type")
    add("--dataset", required=True, help="s3:// prefix of a train channel in the data bucket")
    add("--recipe", default="image-cnn", help="recipe of the tiny training job")
    add("--training-instance-type", help="default: the stage's training_instance_type")
    add(
        "--stop-timeout",
        type=float,
        default=smoke.STOP_TIMEOUT_S,
        help="seconds to wait for the job to stop",
    )


def _secret(env: str, file: Path | None) -> str | None:
    if file is not None:
        return file.read_text().strip()
    return os.environ.get(env) or None


def resolve_target(args: argparse.Namespace, home: Path | None) -> Target:
    """The stage's outputs from the flags, secrets from the environment or files; without
    --api-url, the outputs of the local stack running in `home` fill in what is not given."""
    secret = _secret("MAAS_CLIENT_SECRET", args.client_secret_file)
    api_key = _secret("MAAS_API_KEY", args.api_key_file)
    if args.api_url:
        missing = [flag for flag in ("token_url", "client_id") if not getattr(args, flag)]
        wanted = [f"--{flag.replace('_', '-')}" for flag in missing]
        wanted += [] if secret else ["MAAS_CLIENT_SECRET or --client-secret-file"]
        wanted += [] if api_key else ["MAAS_API_KEY or --api-key-file"]
        if wanted or secret is None or api_key is None:
            raise SystemExit(f"maas smoke: with --api-url, also give {', '.join(wanted)}")
        return Target(args.api_url.rstrip("/"), args.token_url, args.client_id, secret, api_key)
    return _local_target(args, home, secret, api_key)


def _local_target(
    args: argparse.Namespace, home: Path | None, secret: str | None, api_key: str | None
) -> Target:
    from maas_local.config import StackPaths, default_home
    from maas_local.lifecycle import running_state
    from maas_local.tokens import TOKEN_PATH, AppClient

    paths = StackPaths(home or default_home())
    state = running_state(paths)
    client = AppClient.load(paths.keys)
    if not state or client is None:
        raise SystemExit(
            f"maas smoke: no --api-url and no local stack running in {paths.home}; "
            "pass the stage's outputs, or run `maas local up`"
        )
    return Target(
        api_url=state["api_url"],
        token_url=args.token_url or state["api_url"] + TOKEN_PATH,
        client_id=args.client_id or client.client_id,
        client_secret=secret or client.client_secret,
        api_key=api_key or state["api_key"],
    )


def run(args: argparse.Namespace, home: Path | None) -> int:
    target = resolve_target(args, home)
    plan = Plan(
        model=args.model,
        payload=args.payload.read_bytes() if args.payload else digits_payload(),
        content_type=args.content_type,
        dataset=args.dataset,
        recipe=args.recipe,
        training_instance_type=args.training_instance_type,
        stop_timeout_s=args.stop_timeout,
    )

    def say(line: str) -> None:
        print(line, flush=True)

    return Smoke(target, plan, say).run()
