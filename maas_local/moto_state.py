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

Large objects never sit whole in memory (`stream_large_objects`): a body past moto's key buffer
size (MOTO_S3_DEFAULT_KEY_BUFFER_SIZE, about 5 MB) is spooled to an unnamed file in
`<folder>/spool/` as it arrives (moto_server), and the S3 key takes that file over instead of
copying it; CompleteMultipartUpload joins the parts into such a file, one part at a time; an S3
key is saved by copying its file into its blob in 1 MiB chunks (once: the digest is kept until
its body changes), and loaded back, when past that size, as a read-only handle on its blob. moto
reads a body whole only to answer a GetObject (or a copy), and lets go of it with the answer.

KMS keys hold `cryptography` private keys, which do not pickle; they are saved as PKCS#8 PEM.
"""

from __future__ import annotations

import codecs
import contextlib
import copyreg
import hashlib
import io
import logging
import mmap
import os
import pickle  # noqa: S403 - our own files, in the owner-only state directory
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from cryptography.hazmat.primitives import serialization

from maas_local.config import fsync_folder, write_durably

log = logging.getLogger("maas_local.moto_state")

BLOB_MIN_BYTES = 64 * 1024
CHUNK_BYTES = 1024 * 1024  # what a large body is copied by: read into one buffer, reused
KEY_BLOB_PREFIX = "key:"  # persistent id of an S3 key's body, saved as blobs/<sha256>
_KEY_DIGEST = "_maas_blob"  # on a FakeKey: the blob that holds its body, until the body changes
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


class _SavedBody:
    """An S3 key's body as saved: the blob that holds it (pickled by its persistent id)."""

    def __init__(self, digest: str, path: Path | None = None) -> None:
        self.digest, self.path = digest, path


def _new_key(cls: Any) -> Any:
    return cls.__new__(cls)


def _set_key_state(key: Any, state: dict[str, Any]) -> None:
    """FakeKey.__setstate__, but a body past the key's buffer size stays in its blob: the key
    reads it through a read-only handle (blobs are written once and never changed)."""
    value = state.pop("value", b"")
    key.__dict__.update(state)
    key.lock = threading.Lock()
    key._value_buffer = tempfile.SpooledTemporaryFile(key._max_buffer_size)
    if not isinstance(value, _SavedBody):
        key.value = value
        return
    assert value.path is not None
    if value.path.stat().st_size > key._max_buffer_size:
        key._value_buffer.close()
        key._value_buffer = open(value.path, "rb")  # noqa: SIM115 - the key closes it
        key.contentsize = value.path.stat().st_size
    else:
        key.value = value.path.read_bytes()
    key.__dict__[_KEY_DIGEST] = value.digest


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BufferedIOBase, blobs: Path) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.blobs = blobs
        from moto.s3.models import FakeKey

        self.dispatch_table = copyreg.dispatch_table.copy()
        self.dispatch_table[FakeKey] = self._reduce_key

    def persistent_id(self, obj: Any) -> str | None:
        if type(obj) is _SavedBody:
            return KEY_BLOB_PREFIX + obj.digest
        if type(obj) is not bytes or len(obj) < BLOB_MIN_BYTES:
            return None
        digest = hashlib.sha256(obj).hexdigest()
        path = self.blobs / digest
        if not path.exists():
            write_durably(path, obj)
        return digest

    def _reduce_key(self, key: Any) -> tuple:
        """A FakeKey as moto's __getstate__ makes it, but a large body is streamed from the
        key's file into its blob, never read whole."""
        state = key.__dict__.copy()
        for name in ("_value_buffer", "lock", _KEY_DIGEST):
            state.pop(name, None)
        try:
            if key.contentsize < BLOB_MIN_BYTES:
                state["value"] = key.value
            else:
                state["value"] = _SavedBody(self._key_blob(key))
        except ValueError:  # its buffer is closed: a deleted key (as moto's __getstate__)
            state["value"] = b""
        return _new_key, (type(key),), state, None, None, _set_key_state

    def _key_blob(self, key: Any) -> str:
        digest = key.__dict__.get(_KEY_DIGEST)
        if digest and (self.blobs / digest).exists():
            return digest
        with key.lock:  # moto's own lock on the key's buffer (GetObject reads it under it)
            key._value_buffer.seek(0)
            digest = write_blob(self.blobs, key._value_buffer)
        key.__dict__[_KEY_DIGEST] = digest
        return digest


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, blobs: Path, seen: set[str]) -> None:
        super().__init__(file)
        self.blobs, self.seen = blobs, seen

    def persistent_load(self, pid: Any) -> bytes | _SavedBody:
        pid = str(pid)
        if pid.startswith(KEY_BLOB_PREFIX):
            digest = pid[len(KEY_BLOB_PREFIX) :]
            self.seen.add(digest)
            return _SavedBody(digest, self.blobs / digest)
        self.seen.add(pid)
        return (self.blobs / pid).read_bytes()


def copy_chunks(source: IO[bytes], sinks: Iterable[Any], length: int | None = None) -> int:
    """Copies `length` bytes (or all) from `source` to each sink (a file's write, a hash's
    update), through one reused buffer; returns how many bytes came."""
    buffer = bytearray(CHUNK_BYTES if length is None else max(1, min(CHUNK_BYTES, length)))
    view = memoryview(buffer)
    writers = [getattr(sink, "write", None) or sink.update for sink in sinks]
    readinto = getattr(source, "readinto", None)
    done = 0
    while length is None or done < length:
        want = len(buffer) if length is None else min(len(buffer), length - done)
        if readinto is not None:
            n = readinto(view[:want])
        else:
            chunk = source.read(want)
            n = len(chunk)
            view[:n] = chunk
        if not n:
            break
        for write in writers:
            write(view[:n])
        done += n
    return done


def write_blob(blobs: Path, source: IO[bytes]) -> str:
    """Streams `source` (from where it stands) into blobs/<its sha256>; returns the digest."""
    digest = hashlib.sha256()
    tmp = blobs / f".blob.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "wb") as out:
        copy_chunks(source, [out, digest])
        out.flush()
        os.fsync(out.fileno())
    path = blobs / digest.hexdigest()
    if path.exists():  # the same bytes, already saved
        tmp.unlink()
    else:
        os.replace(tmp, path)
        fsync_folder(blobs)
    return digest.hexdigest()


# --- large objects: spooled to disk, never held whole -------------------------------------------

_spool: dict[str, Path | None] = {"folder": None}  # None: the system's temporary folder


def set_spool_folder(folder: Path | None) -> None:
    """Where large bodies are spooled (unnamed files: nothing is left there after a crash)."""
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    _spool["folder"] = folder


def spool_file() -> IO[bytes]:
    return tempfile.TemporaryFile(dir=_spool["folder"])  # noqa: SIM115 - handed on


class _Spilled(mmap.mmap):
    """A body on disk, mapped read-only: moto sees bytes (a memoryview of this), and the S3 key
    made from it takes the file over instead of copying it."""

    file: IO[bytes] | None
    md5: str | None


class IncompleteBody(Exception):
    """The client sent fewer bytes than its Content-Length."""


def spilled(file: IO[bytes], md5: str | None = None) -> memoryview | bytes:
    """A memoryview of the whole of `file` (an empty file: b""), for `adopt` to take over."""
    file.flush()
    size = file.seek(0, os.SEEK_END)
    file.seek(0)
    if not size:
        file.close()
        return b""
    body = _Spilled(file.fileno(), size, access=mmap.ACCESS_READ)
    body.file, body.md5 = file, md5
    return memoryview(body)


def spill(stream: IO[bytes], length: int) -> memoryview | bytes:
    """Reads exactly `length` bytes of a request body to a spool file, never all at once."""
    file = spool_file()
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        got = copy_chunks(stream, [file, md5], length)
    except BaseException:
        file.close()
        raise
    if got != length:
        file.close()
        raise IncompleteBody(f"{got} of {length} bytes came")
    return spilled(file, md5.hexdigest())


def adopt(value: Any) -> tuple[IO[bytes], int, str | None] | None:
    """The file behind a whole spilled body, taken over (once), with its size and MD5."""
    if not isinstance(value, memoryview):
        return None
    try:
        body = value.obj
    except ValueError:  # released: nothing left to take
        return None
    if not isinstance(body, _Spilled) or value.nbytes != len(body) or body.file is None:
        return None
    file, body.file = body.file, None
    return file, len(body), body.md5


def release(value: Any) -> None:
    """Unmaps a spilled body once its request is answered; its file goes with it, unless a key
    took it over. A view still held somewhere keeps the mapping until it goes."""
    if not isinstance(value, memoryview):
        return
    try:
        body = value.obj
    except ValueError:  # released already
        return
    if not isinstance(body, _Spilled):
        return
    file, body.file = body.file, None
    try:
        value.release()
        body.close()
    except BufferError:
        pass
    if file is not None:
        file.close()


def _set_value(key: Any, new_value: Any) -> None:
    """FakeKey.value's setter: a spilled body is taken over, a large one written straight to a
    spool file (moto's spooled file would copy it through memory first), a small one kept in
    memory as moto keeps it."""
    from moto.s3.models import DEFAULT_TEXT_ENCODING

    if isinstance(new_value, str):
        new_value = new_value.encode(DEFAULT_TEXT_ENCODING)
    taken = adopt(new_value)
    if taken is not None:
        buffer, size, md5 = taken
        if md5 and key.__dict__.get("_etag") is None:
            key._etag = md5  # what moto's etag would compute from the same bytes
    else:
        size = len(new_value)
        if size > key._max_buffer_size:
            buffer = spool_file()
        else:
            buffer = tempfile.SpooledTemporaryFile(key._max_buffer_size)
        buffer.write(new_value)
        buffer.flush()
    old = key.__dict__.get("_value_buffer")
    key._value_buffer = buffer
    key.contentsize = size
    key.__dict__.pop(_KEY_DIGEST, None)
    if old is not None and old is not buffer:
        old.close()


@contextlib.contextmanager
def _mapped(key: Any) -> Iterator[Any]:
    """A key's body to read whole (a checksum): a read-only map of its file, or its bytes when
    it is small enough to live in memory. Called under the key's lock."""
    buffer = key._value_buffer
    if isinstance(buffer, tempfile.SpooledTemporaryFile) or not key.contentsize:
        buffer.seek(0)
        yield buffer.read()  # in memory already (its fileno() would move it to disk)
        return
    buffer.flush()
    with mmap.mmap(buffer.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        try:
            yield view
        finally:
            view.release()


def _complete(multipart: Any, body: Any) -> tuple[Any, str, tuple[str, str, int] | None]:
    """FakeMultipart.complete, the same checks and answers, but the parts are joined in a spool
    file one at a time (moto joins them, and a whole-object checksum's copy, in memory)."""
    from moto.s3 import models

    checksum_builder = models.MultipartChecksumBuilder(
        multipart.metadata.get("x-amz-checksum-algorithm"),
        multipart.metadata.get("x-amz-checksum-type"),
    )
    whole_object = checksum_builder.checksum_type != "COMPOSITE"
    decode_hex: Any = codecs.getdecoder("hex_codec")
    md5s = bytearray()
    out = spool_file()
    try:
        last, count = None, 0
        for pn, etag in body:
            part = multipart.parts.get(pn)
            part_etag = None
            if part is not None:
                part_etag = part.etag.replace('"', "")
                etag = etag.replace('"', "")
            if part is None or part_etag != etag:
                raise models.InvalidPart()
            if last is not None and last.contentsize < models.S3_UPLOAD_PART_MIN_SIZE:
                raise models.EntityTooSmall()
            md5s.extend(decode_hex(part_etag)[0])
            with part.lock:
                part._value_buffer.seek(0)
                copy_chunks(part._value_buffer, [out])
                if whole_object:  # computed over the whole file below
                    checksum_builder.part_count += 1
                else:
                    with _mapped(part) as whole_part:
                        checksum_builder.addPart(whole_part)
            last = part
            count += 1
        if count == 0:
            raise models.MalformedXML
    except BaseException:
        out.close()
        raise
    value: Any = spilled(out)
    checksum: tuple[str, str, int] | None
    if whole_object:
        whole = models.compute_checksum(value, checksum_builder.checksum_algorithm).decode()
        checksum = (checksum_builder.checksum_type, whole, 1)
    else:
        checksum = checksum_builder.build()
    full_etag = models.md5_hash()
    full_etag.update(bytes(md5s))
    return value, f"{full_etag.hexdigest()}-{count}", checksum


MOTO_ORIGINALS: dict[str, Any] = {}  # what stream_large_objects replaced, as moto has it


def stream_large_objects() -> None:
    """Installs the above into moto's S3 (idempotent): see the module's text."""
    from moto.s3.models import FakeKey, FakeMultipart

    if not FakeKey.__dict__.get("maas_streamed"):
        value: Any = FakeKey.__dict__["value"]
        MOTO_ORIGINALS.update(value=value, complete=FakeMultipart.complete)
        setattr(FakeKey, "value", property(value.fget, _set_value))  # noqa: B010 - moto types these otherwise
        setattr(FakeKey, "maas_streamed", True)  # noqa: B010
        setattr(FakeMultipart, "complete", _complete)  # noqa: B010


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
            write_durably(self.folder / f"{name}.pkl", buffer.getvalue())


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
