"""Lays out the Lambda code asset at synth time, without Docker. The training code's
`sourcedir.tar.gz` is built by `maas_contract.packaging`, which the local stack shares."""

from __future__ import annotations

import shutil
from pathlib import Path

from maas_contract.packaging import is_shipped


def stage_lambda_code(packages: list[Path], openapi: Path, target: Path) -> Path:
    """Lays out the Lambda asset as the given packages side by side (`handlers/`, whose route
    groups are the functions' entry points, and `maas_contract/`, which they import) plus
    `openapi.json`, which the meta route serves."""
    if target.exists():
        shutil.rmtree(target)
    for package in packages:
        shutil.copytree(
            package,
            target / package.name,
            ignore=lambda folder, names: [name for name in names if not is_shipped(name)],
        )
    shutil.copy2(openapi, target / "openapi.json")
    return target
