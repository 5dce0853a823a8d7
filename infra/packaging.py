"""Builds the deployable files at synth time, without Docker: the training `sourcedir.tar.gz`
and the Lambda code folder. Both are deterministic, so an unchanged tree keeps its asset hash."""

from __future__ import annotations

import gzip
import io
import shutil
import tarfile
from pathlib import Path

SKIPPED_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", "tests", "runs"}
SKIPPED_SUFFIXES = (".pyc", ".pyo", ".tar.gz")
_FIXED_MTIME = 946684800  # 2000-01-01: any constant works; it keeps the archive hash stable.


def _wanted(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return not any(
        p in SKIPPED_NAMES or p.startswith(".") for p in parts
    ) and not path.name.endswith(SKIPPED_SUFFIXES)


def build_sourcedir(source: Path, archive: Path) -> Path:
    """Packs `source` (training/) as SageMaker's script-mode `sourcedir.tar.gz`."""
    files = sorted(p for p in source.rglob("*") if p.is_file() and _wanted(p, source))
    if not any(p.name == "train.py" for p in files):
        raise FileNotFoundError(
            f"{source} has no train.py; the training image needs an entry point"
        )
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files:
            info = tarfile.TarInfo(path.relative_to(source).as_posix())
            info.size = path.stat().st_size
            info.mtime, info.mode, info.uid, info.gid = _FIXED_MTIME, 0o644, 0, 0
            info.uname = info.gname = ""
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with archive.open("wb") as out, gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return archive


def stage_lambda_code(packages: list[Path], openapi: Path, target: Path) -> Path:
    """Lays out the Lambda asset as the given packages side by side (`handlers/`, so that
    `handlers.predict.handler` resolves, and `maas_contract/`, which it imports) plus
    `openapi.json`, which the meta route serves."""
    if target.exists():
        shutil.rmtree(target)
    for package in packages:
        shutil.copytree(
            package,
            target / package.name,
            ignore=lambda folder, names: [
                n
                for n in names
                if n in SKIPPED_NAMES or n.startswith(".") or n.endswith(SKIPPED_SUFFIXES)
            ],
        )
    shutil.copy2(openapi, target / "openapi.json")
    return target
