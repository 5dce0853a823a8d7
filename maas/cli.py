"""`maas`: run the platform locally (`maas local ...`), put training data in S3 (`maas data`), call
its API (`maas train|models|...`), and check a deployed stage end to end (`maas smoke`).

The API commands take --api-url/--api-key/--token (or MAAS_API_URL, MAAS_API_KEY, MAAS_TOKEN)
and so work against the cloud too; without them they use the running local stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from maas import commands, commands_data, commands_local, commands_logs, commands_smoke
from maas.errors import ApiError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maas", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="local stack state directory (default: MAAS_HOME, else .maas/ in the checkout "
        "or, outside one, in the current directory)",
    )
    subcommands = parser.add_subparsers(dest="command", required=True)
    commands_local.add_parser(subcommands)
    commands_data.add_parser(subcommands)
    commands.add_parsers(subcommands, commands.api_options())
    commands_logs.add_parsers(subcommands, commands.api_options())
    commands_smoke.add_parser(subcommands)
    return parser


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
        if args.command in commands_logs.COMMANDS:
            return commands_logs.run(args, home)
        return commands.run(args, home)
    except ApiError as error:
        print(f"maas: {error}", file=sys.stderr)
        if isinstance(error.body, dict):
            print(json.dumps(error.body, indent=2), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
