"""Where a registered model's artifact lives: a content-addressed key that nothing rewrites.

Registration copies the caller's `model.tar.gz` to `pinned/sha256/<digest>/model.tar.gz`, and
deployments read only that key. SageMaker re-reads the model data on every new instance (each
scale-out), so the key itself must never change: its name is its SHA-256, only the registry
writes under `pinned/`, and the bucket policy refuses everyone else (infra/artifact_store.py).
"""

from __future__ import annotations

import re

PINNED_PREFIX = "pinned/sha256/"
# The first copy lands here while S3 computes its digest; it is deleted right after.
STAGING_PREFIX = "pinned/staging/"
PROTECTED_PREFIX = "pinned/"
PINNED_KEY = re.compile(r"^pinned/sha256/([0-9a-f]{64})/model\.tar\.gz$")
# Training code is not a model: script mode's archive and the prefix it is kept under.
CODE_PREFIX = "code/"
CODE_ARCHIVE = "sourcedir.tar.gz"
# CopyObject copies at most 5 GB in one request:
# https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html
COPY_MAX_BYTES = 5 * 2**30


# Callers upload artifacts here through presigned URLs (POST /v1/models/{model}/uploads):
# uploads/<model>/<random>/model.tar.gz and signature.json beside it. Registration pins what
# it registers, so an upload left behind expires (infra/artifact_store.py).
UPLOADS_PREFIX = "uploads/"
UPLOAD_URL_TTL_S = 900
UPLOADS_KEPT_DAYS = 7


def upload_folder(model: str, token: str) -> str:
    return f"{UPLOADS_PREFIX}{model}/{token}"


# Every model artifact is a gzipped tar (VersionCreate.artifact_uri's pattern).
ARCHIVE_SUFFIX = ".tar.gz"
# A model's signature (inputs, outputs, label names) travels as a small JSON file beside its
# model.tar.gz, so that registration can read it without opening the archive.
SIGNATURE_FILE = "signature.json"
SIGNATURE_MAX_BYTES = 64 * 1024


def pinned_key(sha256_hex: str) -> str:
    return f"{PINNED_PREFIX}{sha256_hex}/model.tar.gz"


def signature_key(artifact_key: str) -> str:
    """Where the signature of the artifact at `artifact_key` is: beside it."""
    folder = artifact_key.rpartition("/")[0]
    return f"{folder}/{SIGNATURE_FILE}" if folder else SIGNATURE_FILE


def refusal(key: str) -> str | None:
    """Why `key` cannot be a model's artifact, or None."""
    if key.startswith(CODE_PREFIX) or key.rsplit("/", 1)[-1] == CODE_ARCHIVE:
        return "is training code (script mode's sourcedir), not a model"
    if key.startswith(PROTECTED_PREFIX) and not PINNED_KEY.match(key):
        return "is in the registry's own pinned/ prefix"
    return None
