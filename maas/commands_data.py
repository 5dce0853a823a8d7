"""`maas data`: the training data a job reads, made and put in S3.

    maas data digits DIR                      # scikit-learn's 8x8 digits, as recipes read them
    maas data upload DIR s3://BUCKET/PREFIX/  # every file under DIR, relative paths kept

`digits` writes DIR/train/digits.npz, DIR/validation/digits.npz and DIR/test/digits.npz (x, y),
plus DIR/test/x.npy: five test images, a body for `maas predict --file`.

`upload` prints a line per file and a total. Against the local stack (the default) it signs
with the credentials the stack issued at `up` and sends to the stack's S3; with --cloud it uses
your own AWS credentials (boto3's usual chain: environment, profile, SSO), as the AWS CLI would.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

PREDICT_ROWS = 5


def add_parser(subcommands: Any) -> None:
    data = subcommands.add_parser(
        "data",
        help="make example data, or upload a folder of training data to S3",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = data.add_subparsers(dest="action", required=True)
    digits = actions.add_parser("digits", help="write scikit-learn's 8x8 digits to DIR")
    digits.add_argument("dir", type=Path)
    upload = actions.add_parser("upload", help="upload every file under DIR to an S3 prefix")
    upload.add_argument("dir", type=Path)
    upload.add_argument("destination", help="s3://BUCKET/PREFIX/")
    upload.add_argument(
        "--cloud", action="store_true", help="upload with your own AWS credentials, to AWS"
    )


def run(args: argparse.Namespace, home: Path | None) -> int:
    if args.action == "digits":
        return _digits(args.dir)
    return _upload(args.dir, args.destination, home, cloud=args.cloud)


def _digits(folder: Path) -> int:
    from maas_local.config import REPO_ROOT  # the training code, in the checkout or the wheel

    folder = folder.resolve()
    subprocess.run(  # noqa: S603 - this interpreter, the project's own module
        [sys.executable, "-m", "maas_training.prepare_digits", "--out", str(folder)],
        cwd=REPO_ROOT / "training",
        check=True,
    )
    import numpy as np

    with np.load(folder / "test" / "digits.npz") as test:
        np.save(folder / "test" / "x.npy", test["x"][:PREDICT_ROWS].astype(np.float32))
    for split in ("train", "validation", "test"):
        print(f"wrote {folder / split}/")
    print(f"wrote {folder / 'test' / 'x.npy'} ({PREDICT_ROWS} images for `maas predict --file`)")
    return 0


def _split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or len(uri) < 6:
        raise SystemExit(f"maas: the destination must be s3://BUCKET/PREFIX/, not {uri!r}")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.rstrip("/") + "/" if prefix else ""


def _client(home: Path | None, cloud: bool) -> Any:
    if cloud:
        import boto3

        return boto3.client("s3")
    s3 = local_s3(home)
    if s3 is None:
        raise SystemExit("maas: the local stack is not running: `maas local up` (or use --cloud)")
    return s3


def local_s3(home: Path | None) -> Any:
    """An S3 client of the local stack running in `home`, with the credentials it issued; None
    when no stack runs there."""
    from maas_local.aws_resources import local_client, stack_credentials
    from maas_local.config import StackPaths, default_home
    from maas_local.lifecycle import running_state

    paths = StackPaths(home or default_home())
    state = running_state(paths)
    if not state:
        return None
    return local_client("s3", state["parts"]["moto"]["url"], stack_credentials(paths.keys))


def _upload(folder: Path, destination: str, home: Path | None, *, cloud: bool) -> int:
    bucket, prefix = _split(destination)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if not files:
        print(f"maas: no files under {folder}", file=sys.stderr)
        return 1
    s3 = _client(home, cloud)
    total = sum(p.stat().st_size for p in files)
    sent = 0
    for number, path in enumerate(files, 1):
        key = prefix + path.relative_to(folder).as_posix()
        s3.upload_file(str(path), bucket, key)  # multipart, and retried, past 8 MB
        sent += path.stat().st_size
        print(
            f"[{number}/{len(files)}] s3://{bucket}/{key} ({path.stat().st_size:,} bytes; "
            f"{100 * sent / max(1, total):.0f}% of {total:,})",
            flush=True,
        )
    print(f"uploaded {len(files)} file(s) to s3://{bucket}/{prefix}")
    return 0
