"""`maas local up|down|status|token|logs|reset`: the whole platform on this machine.

The local stack (`maas_local`) is imported only when one of these commands runs, so the client
and `maas --help` never load the emulator.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from maas_local.config import StackPaths
    from maas_local.stack import StackOptions


def add_parser(commands: argparse._SubParsersAction) -> None:
    local = commands.add_parser("local", help="run the whole platform on this machine")
    sub = local.add_subparsers(dest="local_command", required=True)
    up = sub.add_parser("up", help="start moto, the SageMaker emulator and the gateway")
    up.add_argument("--foreground", action="store_true", help="stay attached; Ctrl-C stops it")
    up.add_argument(
        "--openapi",
        type=Path,
        help="API description that routes requests (default: MAAS_OPENAPI, else maas's own)",
    )
    up.add_argument("--handlers-package", help="package holding the handler modules")
    up.add_argument(
        "--function-concurrency",
        type=int,
        help="execution environments per function, each serving one request at a time "
        "(as Lambda's reserved concurrency; default 4)",
    )
    up.add_argument(
        "--localstack-url",
        help="a running LocalStack to serve S3, KMS, SQS and EventBridge (MAAS_LOCALSTACK_URL)",
    )
    sub.add_parser("down", help="stop every part of the local stack")
    sub.add_parser("status", help="show each part and its health")
    token = sub.add_parser("token", help="print a bearer token from the local issuer")
    token.add_argument("--scopes", default="invoke", help="comma-separated, e.g. invoke,admin")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds")
    logs = sub.add_parser("logs", help="show the parts' logs")
    logs.add_argument(
        "part", nargs="?", help="one part (supervisor, or one `maas local status` lists)"
    )
    logs.add_argument("-n", "--lines", type=int, default=40, help="lines per log")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    reset = sub.add_parser(
        "reset",
        help="erase the stack's state (AWS resources and data, the emulator's jobs and "
        "endpoints, keys, logs); asks first, refuses while the stack runs",
    )
    reset.add_argument("--yes", action="store_true", help="erase without asking")


def run(args: argparse.Namespace, home: Path | None) -> int:
    from maas_local import lifecycle
    from maas_local.config import StackPaths, default_home

    paths = StackPaths(home or default_home())
    match args.local_command:
        case "up":
            return lifecycle.up(paths, foreground=args.foreground, options=_stack_options(args))
        case "down":
            return lifecycle.down(paths)
        case "status":
            return lifecycle.status(paths)
        case "token":
            return lifecycle.token(paths, args.scopes, args.ttl)
        case "logs":
            known = ("supervisor", *lifecycle.PARTS)
            if args.part is not None and args.part not in known:
                choices = ", ".join(known)
                print(f"maas local logs: no part {args.part!r}; one of {choices}", file=sys.stderr)
                return 2
            return lifecycle.logs(paths, args.part, args.lines, args.follow)
        case "reset":
            return _reset(paths, ask=not args.yes)
    return 2


def _reset(paths: StackPaths, *, ask: bool) -> int:
    """Erases what the stack keeps in its home, once the user says yes; never while it runs,
    so no part writes into a folder being erased. Other files in the home are left alone."""
    from maas_local import lifecycle

    if lifecycle.running_state(paths):
        print(
            f"maas local reset: the stack is running in {paths.home}; `maas local down` first",
            file=sys.stderr,
        )
        return 1
    present = [path for path in paths.saved_state if path.exists()]
    if not present:
        print(f"maas local reset: nothing to erase in {paths.home}")
        return 0
    names = ", ".join(path.name for path in present)
    if ask and not sys.stdin.isatty():
        print("maas local reset: no terminal to ask on; pass --yes to erase", file=sys.stderr)
        return 2
    if ask and not _confirmed(f"Erase {names} in {paths.home}? [y/N] "):
        print("maas local reset: nothing erased")
        return 1
    if paths.state_file.exists():  # a stack that died: stop what its state file still names
        lifecycle.down(paths, quiet=True)
    for path in present:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    print(f"maas local reset: erased {names} in {paths.home}; `maas local up` starts afresh")
    return 0


def _confirmed(question: str) -> bool:
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _stack_options(args: argparse.Namespace) -> StackOptions:
    """The stack's options: the flags given, the stack's defaults for the others."""
    from maas_local.stack import StackOptions

    given = {
        "openapi": args.openapi.resolve() if args.openapi else None,
        "handlers_package": args.handlers_package,
        "localstack_url": args.localstack_url,
        "function_concurrency": args.function_concurrency,
    }
    return StackOptions(**{name: value for name, value in given.items() if value is not None})
