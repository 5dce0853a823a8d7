"""moto's state on disk: every acknowledged write survives `down`, `up` and a `kill -9`.

moto's server keeps its backends in memory. Here each service's backend (all accounts and
regions) is pickled to `<folder>/<service>.pkl` after every request that may have changed it,
before the answer leaves the server, so a client that got its answer has its write on disk. The
file is written whole to a temporary name, flushed to the disk and renamed over the old one: a
crash leaves the previous state or the new one, never half of either. At start the files are
loaded back before the server answers anything.

Object bodies (any bytes value over BLOB_MIN_BYTES, in practice S3 objects) are kept apart, in
`<folder>/blobs/<sha256>`, written once each, so saving S3 after a small write does not rewrite
every large object; a blob no saved state refers to is removed at the next start.

KMS keys hold `cryptography` private keys, which do not pickle; they are saved as PKCS#8 PEM.
"""

from __future__ import annotations

import copyreg
import hashlib
import io
import logging
import os
import pickle  # noqa: S403 - our own files, in the owner-only state directory
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

log = logging.getLogger("maas_local.moto_state")

BLOB_MIN_BYTES = 64 * 1024
# SigV4 signing names (the credential scope of a request) -> moto's backend names.
SERVICES = {
    "s3": "s3",
    "dynamodb": "dynamodb",
    "kms": "kms",
    "iam": "iam",
    "sts": "sts",
    "sns": "sns",
    "sqs": "sqs",
    "events": "events",
    "logs": "logs",
    "monitoring": "cloudwatch",
    "application-autoscaling": "applicationautoscaling",
}
# Operations that only read, by name: a request for one of these changes nothing to save.
READ_PREFIXES = ("Get", "List", "Describe", "Query", "Scan", "BatchGet", "TransactGet", "Head")


def _load_private_key(pem: bytes) -> Any:
    return serialization.load_pem_private_key(pem, password=None)


def _reduce_private_key(key: Any) -> tuple[Any, tuple[bytes]]:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return _load_private_key, (pem,)


def _register_key_types() -> None:
    from cryptography.hazmat.bindings._rust import openssl  # the concrete key classes

    for kind in (
        openssl.rsa.RSAPrivateKey,
        openssl.ec.ECPrivateKey,
        openssl.ed25519.Ed25519PrivateKey,
    ):
        copyreg.pickle(kind, _reduce_private_key)


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BufferedIOBase, blobs: Path) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.blobs = blobs

    def persistent_id(self, obj: Any) -> str | None:
        if type(obj) is not bytes or len(obj) < BLOB_MIN_BYTES:
            return None
        digest = hashlib.sha256(obj).hexdigest()
        path = self.blobs / digest
        if not path.exists():
            write_atomically(path, obj)
        return digest


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, blobs: Path, seen: set[str]) -> None:
        super().__init__(file)
        self.blobs, self.seen = blobs, seen

    def persistent_load(self, pid: Any) -> bytes:
        self.seen.add(str(pid))
        return (self.blobs / str(pid)).read_bytes()


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _backend(name: str) -> Any:
    from moto.backends import get_backend

    return get_backend(name)  # type: ignore[call-overload]


class MotoState:
    """The state folder of one moto server (see the module's text)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.blobs = folder / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.lock = threading.Lock()
        _register_key_types()

    def load(self) -> list[str]:
        """Installs every saved backend into this process's moto; returns their names."""
        loaded: list[str] = []
        seen: set[str] = set()
        for name in SERVICES.values():
            path = self.folder / f"{name}.pkl"
            if not path.is_file():
                continue
            with open(path, "rb") as saved:
                accounts = _Unpickler(saved, self.blobs, seen).load()  # noqa: S301 - ours
            backends = _backend(name)
            for account, regions in accounts.items():
                backends[account] = regions
            loaded.append(name)
        for blob in self.blobs.iterdir():
            if blob.name not in seen:
                blob.unlink(missing_ok=True)  # left by a state since replaced
        return loaded

    def save(self, names: list[str]) -> None:
        """Writes these backends to disk, each whole or not at all."""
        for name in names:
            buffer = io.BytesIO()
            _Pickler(buffer, self.blobs).dump(dict(_backend(name)))
            write_atomically(self.folder / f"{name}.pkl", buffer.getvalue())


def changed_services(method: str, headers: dict[str, str], query: str) -> list[str]:
    """The backends a request may have changed: none for a read, its own service for a write
    (from its SigV4 credential scope), every one when that cannot be told."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return []
    target = headers.get("x-amz-target", "")
    operation = target.rsplit(".", 1)[-1] if target else ""
    if not operation and "action=" in query.lower():
        operation = query.lower().split("action=", 1)[1].split("&", 1)[0]
    if operation and operation.lower().startswith(tuple(p.lower() for p in READ_PREFIXES)):
        return []
    scope = headers.get("authorization", "").split("Credential=", 1)[-1].split("/")
    service = SERVICES.get(scope[3]) if len(scope) > 3 else None
    return [service] if service else sorted(set(SERVICES.values()))
