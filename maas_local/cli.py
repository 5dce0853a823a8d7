"""`maas`: run the platform locally (`maas local ...`), call its API (`maas train|models|...`), and
check a deployed stage end to end (`maas smoke`).

The client commands take --api-url/--api-key/--token (or MAAS_API_URL, MAAS_API_KEY,
MAAS_TOKEN) and so work against the cloud too; without them they use the running local stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from maas_local import client_commands, lifecycle, smoke
from maas_local.client import ApiError
from maas_local.config import StackPaths, default_home
from maas_local.stack import StackOptions


def _local_parser(commands: argparse._SubParsersAction) -> None:
    local = commands.add_parser("local", help="run the whole platform on this machine")
    sub = local.add_subparsers(dest="local_command", required=True)
    up = sub.add_parser("up", help="start moto, the SageMaker emulator and the gateway")
    up.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops it")
    up.add_argument(
        "--openapi",
        type=Path,
        default=StackOptions.openapi,
        help="API description that routes requests (default: the repo's)",
    )
    up.add_argument(
        "--handlers-package",
        default=StackOptions.handlers_package,
        help="package holding the handler modules",
    )
    up.add_argument(
        "--localstack-url",
        default=StackOptions.localstack_url,
        help="a running LocalStack to serve S3, KMS, SQS and EventBridge (MAAS_LOCALSTACK_URL)",
    )
    sub.add_parser("down", help="stop every part of the local stack")
    sub.add_parser("status", help="show each part and its health")
    token = sub.add_parser("token", help="print a bearer token from the local issuer")
    token.add_argument("--scopes", default="invoke", help="comma-separated, e.g. invoke,admin")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    logs = sub.add_parser("logs", help="show the parts' logs")
    logs.add_argument("part", nargs="?", choices=["supervisor", *lifecycle.PARTS])
    logs.add_argument("-n", "--lines", type=int, default=40, help="lines per log")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")


def _api_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--api-url", help="the API's base URL, stage included")
    parent.add_argument("--api-key", help="value for the x-api-key header")
    parent.add_argument("--token", help="bearer token (OAuth2 client-credentials access token)")
    return parent


def _smoke_parser(commands: argparse._SubParsersAction) -> None:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maas", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="local stack state directory (default: MAAS_HOME or ./.maas)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _local_parser(commands)
    client_commands.add_parsers(commands, _api_options())
    _smoke_parser(commands)
    return parser


def _run_local(args: argparse.Namespace, paths: StackPaths) -> int:
    match args.local_command:
        case "up":
            options = StackOptions(
                openapi=args.openapi.resolve(),
                handlers_package=args.handlers_package,
                localstack_url=args.localstack_url,
            )
            return lifecycle.up(paths, foreground=args.foreground, options=options)
        case "down":
            return lifecycle.down(paths)
        case "status":
            return lifecycle.status(paths)
        case "token":
            return lifecycle.token(paths, args.scopes, args.ttl)
        case "logs":
            return lifecycle.logs(paths, args.part, args.lines, args.follow)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    paths = StackPaths(args.home.resolve() if args.home else default_home())
    try:
        if args.command == "local":
            return _run_local(args, paths)
        if args.command == "smoke":
            return smoke.run(args, paths)
        return client_commands.run(args, paths)
    except ApiError as error:
        print(f"maas: {error}", file=sys.stderr)
        if isinstance(error.body, dict):
            print(json.dumps(error.body, indent=2), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
