"""Writes the docstrings of this Python's standard library as train/ and validation/ channels.

    python -m maas_training.prepare_stdlib_text --out data/stdlib

The text-generation recipe's default corpus: English prose about code, already on every
machine that runs Python, so nothing is downloaded. Docstrings come from the modules' source,
parsed with ast (nothing is imported), so one Python always gives the same corpus. Whole
modules go to validation/, chosen by a hash of their path, so held-out text comes from modules
the model never saw. Test packages are left out. Each channel gets one `stdlib.txt`, its
docstrings separated by blank lines.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import sysconfig
import warnings
from pathlib import Path

SKIPPED_FOLDERS = {"site-packages", "test", "tests", "idle_test"}
DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", required=True, help="folder that receives train/ and validation/")
    p.add_argument(
        "--validation-fraction", type=float, default=0.05, help="share of modules for validation/"
    )
    p.add_argument(
        "--max-chars", type=int, default=0, help="about this many characters in all (0: all)"
    )
    return p.parse_args(argv)


def stdlib_modules() -> tuple[Path, list[Path]]:
    """The standard library's folder and its `.py` files outside tests, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(
        p for p in root.rglob("*.py") if not SKIPPED_FOLDERS & set(p.relative_to(root).parts)
    )
    return root, files


def docstrings(source: bytes) -> list[str]:
    """The module's docstring, then its classes' and functions' (breadth first)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # old escape sequences in a few modules' strings
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):  # a template or Python 2 file among the sources
            return []
    found = [ast.get_docstring(n, clean=True) for n in ast.walk(tree) if isinstance(n, DOCUMENTED)]
    return [d for d in found if d and d.strip()]


def in_validation(relative: str, fraction: float) -> bool:
    digest = hashlib.sha256(relative.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def write_stdlib_text(
    out: str | Path, val_fraction: float = 0.05, max_chars: int = 0
) -> dict[str, int]:
    """Writes out/train/stdlib.txt and out/validation/stdlib.txt; returns their sizes. With
    `max_chars`, each split stops once it holds its share of that many characters."""
    root, files = stdlib_modules()
    parts: dict[str, list[str]] = {"train": [], "validation": []}
    chars = dict.fromkeys(parts, 0)
    share = {"train": (1 - val_fraction) * max_chars, "validation": val_fraction * max_chars}
    for path in files:
        relative = path.relative_to(root).as_posix()
        split = "validation" if in_validation(relative, val_fraction) else "train"
        if max_chars and chars[split] >= share[split]:
            if all(chars[k] >= share[k] for k in parts):
                break
            continue
        found = docstrings(path.read_bytes())
        parts[split] += found
        chars[split] += sum(len(d) for d in found)
    sizes = {}
    for name, docs in parts.items():
        folder = Path(out) / name
        folder.mkdir(parents=True, exist_ok=True)
        text = "\n\n".join(docs) + "\n"
        (folder / "stdlib.txt").write_text(text, encoding="utf-8")
        sizes[f"{name}_docstrings"], sizes[f"{name}_chars"] = len(docs), len(text)
    return sizes


if __name__ == "__main__":
    a = parse_args()
    sizes = write_stdlib_text(a.out, a.validation_fraction, a.max_chars)
    print(" ".join(f"{k}={v}" for k, v in sizes.items()))
