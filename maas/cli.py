"""`maas`: run the platform locally (`maas local ...`), put training data in S3 (`maas data`), call
its API (`maas train|models|...`), and check a deployed stage end to end (`maas smoke`).

The API commands take --api-url/--api-key/--token (or MAAS_API_URL, MAAS_API_KEY, MAAS_TOKEN)
and so work against the cloud too; without them they use the running local stack.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from maas import (
    commands,
    commands_data,
    commands_local,
    commands_logs,
    commands_openapi,
    commands_promote,
    commands_smoke,
)
from maas.errors import ApiError, UsageError

HOME_HELP = (
    "local stack state directory (default: MAAS_HOME, else .maas/ in the checkout or, outside "
    "one, in the current directory)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maas", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=None, help=HOME_HELP)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    subcommands = parser.add_subparsers(dest="command", required=True)
    commands_local.add_parser(subcommands)
    commands_data.add_parser(subcommands)
    commands.add_parsers(subcommands, commands.api_options())
    commands_smoke.add_parser(subcommands)
    commands_openapi.add_parser(subcommands, commands.api_options())
    commands_promote.add_parser(subcommands)
    _everywhere(subcommands)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("maas")
    except PackageNotFoundError:
        return "(not installed)"


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option's help; descriptions kept as written."""


def _everywhere(subcommands: argparse._SubParsersAction) -> None:
    """Every command takes --home after its name too (`maas models --home X`), and shows its
    defaults in --help."""
    for parser in subcommands.choices.values():
        parser.formatter_class = _Help
        nested = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for inner in nested:
            _everywhere(inner)
        if not nested and not any("--home" in a.option_strings for a in parser._actions):
            parser.add_argument("--home", type=Path, default=argparse.SUPPRESS, help=HOME_HELP)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    home = args.home.resolve() if args.home else None
    try:
        if args.command == "local":
            return commands_local.run(args, home)
        if args.command == "data":
            return commands_data.run(args, home)
        if args.command == "smoke":
            return commands_smoke.run(args, home)
        if args.command == "openapi":
            return commands_openapi.run(args, home)
        if args.command == "promote":
            return commands_promote.run(args, home)
        if args.command == "endpoints" or getattr(args, "action", None) == "logs":
            return commands_logs.run(args, home)
        return commands.run(args, home)
    except ApiError as error:
        print(f"maas: {error}", file=sys.stderr)
        if isinstance(error.body, dict):
            print(json.dumps(error.body, indent=2), file=sys.stderr)
        return 1
    except UsageError as error:
        print(f"maas: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`maas local token | head`): no traceback, and no second error
        # when Python flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a command ended by SIGPIPE


if __name__ == "__main__":
    raise SystemExit(main())
