"""Which files ship, and the training code's `sourcedir.tar.gz`, built one way for the cloud
(the CDK asset) and for the laptop (the local stack and the installed `maas` command).

The archive is deterministic: sorted members, fixed times, owners and modes, and a gzip header
without a timestamp, so an unchanged tree keeps its bytes, its hash and its CDK asset.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

# Caches, tests and local run output never ship; neither do dotfiles nor earlier archives.
SKIPPED_NAMES = frozenset(
    {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "tests", "runs"}
)
SKIPPED_SUFFIXES = (".pyc", ".pyo", ".tar.gz")
ENTRY_POINT = "train.py"
_FIXED_MTIME = 946684800  # 2000-01-01: any constant works; it keeps the archive hash stable.


def is_shipped(name: str) -> bool:
    """Whether a file or folder of this name ships (checked for every part of a path)."""
    return not (name in SKIPPED_NAMES or name.startswith(".") or name.endswith(SKIPPED_SUFFIXES))


def shipped_files(root: Path) -> list[Path]:
    """The files under `root` that ship, in a stable order."""
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file() and all(is_shipped(part) for part in path.relative_to(root).parts)
    )


def sourcedir_bytes(source: Path) -> bytes:
    """`source` (the training code folder) as SageMaker script mode's `sourcedir.tar.gz`."""
    files = shipped_files(source)
    if not any(path.relative_to(source).as_posix() == ENTRY_POINT for path in files):
        raise FileNotFoundError(f"{source} has no {ENTRY_POINT}; the training image needs one")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            info = tarfile.TarInfo(path.relative_to(source).as_posix())
            info.size = path.stat().st_size
            info.mtime, info.mode, info.uid, info.gid = _FIXED_MTIME, 0o644, 0, 0
            info.uname = info.gname = ""
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return packed.getvalue()


def pack_sourcedir(source: Path, archive: Path) -> Path:
    """Writes `sourcedir_bytes(source)` to `archive`, whole or not at all."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    partial.write_bytes(sourcedir_bytes(source))
    partial.replace(archive)
    return archive
