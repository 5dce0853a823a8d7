"""`maas openapi [-o FILE]`: the API's OpenAPI document, on standard output or in FILE.

Without an API to ask, it is the copy this installation ships (openapi.json, generated from the
handlers: the document every stage built from this code serves). With --api-url or --profile
(or MAAS_API_URL or MAAS_PROFILE) it is what that API serves, `GET /v1/openapi.json`, which
needs the API key and a token like every route.

Exit status: 0 written; 1 the API refused (its error on standard error); 2 no document to read
or FILE cannot be written.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from maas.errors import UsageError


def add_parser(subcommands: Any, api: argparse.ArgumentParser) -> None:
    parser = subcommands.add_parser(
        "openapi",
        parents=[api],
        # The API options' -o/--output picks a format; here the document is always JSON, and
        # -o names the file it goes to.
        conflict_handler="resolve",
        help="the API's OpenAPI document",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write it here, not to standard output"
    )


def run(args: argparse.Namespace, home: Path | None) -> int:
    document = _remote(args, home) if _asks_an_api(args) else _shipped()
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text)
    except OSError as error:
        raise UsageError(f"cannot write {args.output}: {error.strerror}") from error
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _asks_an_api(args: argparse.Namespace) -> bool:
    given = (args.api_url, args.profile, os.environ.get("MAAS_API_URL"))
    return any(given) or bool(os.environ.get("MAAS_PROFILE"))


def _remote(args: argparse.Namespace, home: Path | None) -> dict[str, Any]:
    from maas.client import Client
    from maas.credentials import Credentials

    credentials = Credentials.resolve(
        home, args.api_url, args.api_key, args.token, profile=args.profile
    )
    return Client(credentials).openapi()


def _shipped() -> dict[str, Any]:
    # The checkout's file, or the wheel's copy in maas_local/_bundle/ (maas_local.config).
    from maas_local.config import REPO_ROOT

    path = REPO_ROOT / "openapi.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"no OpenAPI document at {path}: {error}") from error
