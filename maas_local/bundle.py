"""What a wheel carries so that `maas local up` runs outside a checkout, without Node or the CDK.

A wheel build (setup.py's build_py) runs `python -m maas_local.bundle DEST` in the checkout.
It synthesises the local stage as `maas local up` does in a checkout, and DEST receives:

- `assembly/`: the stage's template, metadata and asset manifest. They hold every Lambda
  function's and the SageMaker role's IAM policy as synthesised, with their CloudFormation
  references still in: those resolve at `up` to the resources the local stack has just made
  (moto chooses some of their names, such as the KMS key's id).
- `assembly/sourcedir.json`: the training code asset's file name and its sha256.
- `training/`: the training code, exactly the files of that CDK asset.
- the other checkout files the local stack reads, at their checkout paths (`SOURCE_FILES`).

At `up`, `rebuild` turns DEST back into an assembly folder: the three files, and the
`sourcedir.tar.gz` packed from `training/` by the packer that made the CDK asset, checked
against the recorded sha256, so the local stack publishes the very bytes `cdk deploy` would.

Standard library only, as maas_local.synth: the build environment may have nothing else.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from maas_contract.packaging import pack_sourcedir, sourcedir_bytes
from maas_local.config import BUNDLE, CACHE_DIR, IN_CHECKOUT, REPO_ROOT
from maas_local.synth import STACK, SynthError, fingerprint, sourcedir_entry, synthesise

ASSEMBLY = "assembly"
ASSEMBLY_FILES = (f"{STACK}.template.json", f"{STACK}.metadata.json", f"{STACK}.assets.json")
SOURCEDIR_RECORD = "sourcedir.json"
TRAINING = "training"
# Read from the source tree by path: the API description the gateway routes by.
SOURCE_FILES = ("openapi.json",)
REBUILT_ROOT = CACHE_DIR / "bundle"


def write_bundle(assembly: Path, repo: Path, dest: Path) -> Path:
    """Lays out in `dest` what `rebuild` needs, from a synthesised assembly of `repo`."""
    if dest.exists():
        shutil.rmtree(dest)
    (dest / ASSEMBLY).mkdir(parents=True)
    for name in ASSEMBLY_FILES:
        shutil.copyfile(assembly / name, dest / ASSEMBLY / name)
    archive = assembly / sourcedir_entry(assembly)["source"]["path"]
    _unpack(archive, dest / TRAINING)
    if _sha256(sourcedir_bytes(dest / TRAINING)) != _sha256(archive.read_bytes()):
        raise SynthError(f"{dest / TRAINING} does not pack back into {archive.name}")
    for rel in SOURCE_FILES:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(repo / rel, dest / rel)
    record = {
        "fingerprint": fingerprint(repo),
        "path": archive.name,
        "sha256": _sha256(archive.read_bytes()),
    }
    (dest / ASSEMBLY / SOURCEDIR_RECORD).write_text(json.dumps(record, indent=1) + "\n")
    return dest


def rebuild(bundle: Path = BUNDLE, cache_root: Path = REBUILT_ROOT) -> Path:
    """The assembly folder of a bundle, made once per bundle under `cache_root`."""
    record = json.loads((bundle / ASSEMBLY / SOURCEDIR_RECORD).read_text())
    outdir = cache_root / f"{record['fingerprint']}-{record['sha256'][:12]}"
    cache_root.mkdir(parents=True, exist_ok=True)
    if (outdir / ASSEMBLY_FILES[0]).is_file():
        return outdir
    with tempfile.TemporaryDirectory(dir=cache_root, prefix=".partial-") as partial:
        staging = Path(partial, "assembly")
        staging.mkdir()
        for name in ASSEMBLY_FILES:
            shutil.copyfile(bundle / ASSEMBLY / name, staging / name)
        archive = pack_sourcedir(bundle / TRAINING, staging / record["path"])
        if _sha256(archive.read_bytes()) != record["sha256"]:
            raise SynthError(
                f"the training code in {bundle / TRAINING} packs into other bytes than the "
                "CDK asset the wheel was built with; reinstall the wheel"
            )
        try:
            staging.rename(outdir)  # whole or not at all; a racing `up` may have won
        except OSError:
            if not (outdir / ASSEMBLY_FILES[0]).is_file():
                raise
    return outdir


def _unpack(archive: Path, dest: Path) -> None:
    """The archive's regular files under `dest`; a member that would land outside is refused."""
    root = dest.resolve()
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            target = (root / member.name).resolve()
            if not target.is_relative_to(root):
                raise SynthError(f"{archive.name}: member {member.name!r} leaves its folder")
            source = tar.extractfile(member) if member.isfile() else None
            if source is None:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cdk_python(repo: Path) -> str:
    """An interpreter that can run `app.py`: this one if it has the CDK, else the checkout's
    `.venv` (`make venv`), since an isolated build environment holds only setuptools."""
    if importlib.util.find_spec("aws_cdk") is not None:
        return sys.executable
    venv = repo / ".venv" / "bin" / "python"
    return str(venv) if venv.is_file() else sys.executable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Writes what a wheel carries for `maas local up`.")
    parser.add_argument("dest", type=Path, help="folder that receives the bundle")
    args = parser.parse_args(argv)
    if not IN_CHECKOUT:
        raise SystemExit("maas_local.bundle builds from a checkout; this is an installed copy")
    assembly = synthesise(REPO_ROOT, python=cdk_python(REPO_ROOT))
    write_bundle(assembly, REPO_ROOT, args.dest)
    print(f"bundled the local stage's assembly {assembly.name} into {args.dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
