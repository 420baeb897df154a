"""Content-addressed, write-once storage of raw evidence bytes through Django's default storage.

Bytes live at `evidence/<sha256[:2]>/<sha256>`. The filesystem is the default; an S3-compatible bucket is the
production option (`CUSTODY_EVIDENCE_STORAGE=storages.backends.s3.S3Storage`, see docs/ci-integration.md).
A name is never written twice: the same bytes are the same file, so "store" is "make sure it exists".
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from typing import IO

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.files.uploadhandler import FileUploadHandler

from common.errors import TooLarge

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class StoredBlob:
    """Where some bytes were stored, and what they are."""

    sha256: str
    size: int
    storage_name: str


def storage_name_for(sha256: str) -> str:
    return f"evidence/{sha256[:2]}/{sha256}"


def max_upload_bytes() -> int:
    return settings.CUSTODY_MAX_UPLOAD_BYTES


def too_large(size: int | None = None) -> TooLarge:
    limit = max_upload_bytes()
    said = f" ({size} bytes)" if size is not None else ""
    return TooLarge(
        f"the upload{said} is over the limit of {limit} bytes ({limit // (1024 * 1024)} MB); "
        "split the report or ask an administrator to raise CUSTODY_MAX_UPLOAD_MB",
        limit_bytes=limit,
    )


class LimitedUploadHandler(FileUploadHandler):
    """Stops a multipart upload as soon as its files pass the limit, before Django spools the rest."""

    def __init__(self, request=None, limit: int | None = None):
        super().__init__(request)
        self.limit = limit if limit is not None else max_upload_bytes()
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            raise too_large()
        return raw_data

    def file_complete(self, file_size):
        return None


def _hash_stream(stream: IO[bytes], limit: int) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        size += len(chunk)
        if size > limit:
            # The streamed size decides even when Content-Length lied or was absent.
            raise too_large()
        digest.update(chunk)
    return digest.hexdigest(), size


def store_stream(stream: IO[bytes], *, limit: int | None = None) -> StoredBlob:
    """Hash a stream (refusing it past the limit), then store it under its hash unless it is already there."""
    limit = max_upload_bytes() if limit is None else limit
    if hasattr(stream, "seek"):
        stream.seek(0)
    sha256, size = _hash_stream(stream, limit)
    stream.seek(0)
    name = storage_name_for(sha256)
    if not default_storage.exists(name):
        saved = default_storage.save(name, File(stream))
        if saved != name:
            # A concurrent upload of the same bytes won the race; ours is a duplicate copy, so drop it.
            default_storage.delete(saved)
    return StoredBlob(sha256=sha256, size=size, storage_name=name)


def store_bytes(data: bytes) -> StoredBlob:
    """Store bytes fetched by Custody itself (CI pulls, demo data)."""
    with tempfile.SpooledTemporaryFile(max_size=CHUNK * 8) as buffer:
        buffer.write(data)
        return store_stream(buffer, limit=max(max_upload_bytes(), len(data)))


def read_bytes(storage_name: str) -> bytes:
    with default_storage.open(storage_name, "rb") as handle:
        return handle.read()


def open_blob(storage_name: str):
    return default_storage.open(storage_name, "rb")
