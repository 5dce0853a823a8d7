"""How a command prints its answer: `--output json` (the API's JSON, as it came) or
`--output table` (aligned columns for people). Lists default to a table, single things to JSON."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from typing import Any

FORMATS = ("json", "table")


def add_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        default=None,
        help="json: the API's answer as it came; table: columns (default: a table for lists, "
        "JSON for one thing)",
    )


def emit(args: argparse.Namespace, payload: Any, as_table: Callable[[], str] | None = None) -> None:
    """Prints `payload` as JSON, or `as_table()` where a table is asked for (or is the
    default, for lists). Without a table form, `--output table` prints key: value lines."""
    wanted = getattr(args, "output", None) or ("table" if as_table is not None else "json")
    if wanted == "json":
        print(json.dumps(payload, indent=2, sort_keys=True))
    elif as_table is not None:
        text = as_table()
        if text:  # an empty list prints nothing, as `ls` of an empty folder
            print(text)
    else:
        print(pairs(payload))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Aligned columns under their headers; "" when there are no rows."""
    if not rows:
        return ""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def pairs(payload: Any) -> str:
    if not isinstance(payload, dict):
        return json.dumps(payload, indent=2, sort_keys=True)
    width = max((len(k) for k in payload), default=0)
    return "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in sorted(payload.items()))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)
