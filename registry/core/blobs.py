"""A content-addressed blob store on the file system (signed contracts; DESIGN.md §6).

A blob is named by the SHA-256 of its bytes and written once: a new blob goes to a private
temporary file, is flushed to disk, then *linked* into place — ``link`` fails when the name
exists, so a blob is never overwritten, not even by two processes writing the same bytes at
once. Readers address blobs by digest only (64 lower-case hex characters, checked), so no
user-supplied name ever reaches the file system (reliability.md T31, ASVS 5.3.2).

Blobs are written *before* the database commit that refers to them; a commit that fails leaves
an orphan, which :meth:`BlobStore.orphans` finds for ``contracts sweep`` to remove.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

DIGEST: Final = re.compile(r"[0-9a-f]{64}")
STAGING: Final = ".staging"


class BlobError(RuntimeError):
    """The store is damaged: a blob's bytes no longer match its name, or it cannot be written."""


class BlobMissing(BlobError):
    """No blob has this digest (the record refers to a file that is gone)."""


@dataclass(frozen=True)
class StoredBlob:
    digest: str
    size: int
    modified: float  # seconds since the epoch


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        if not DIGEST.fullmatch(digest):
            raise ValueError(f"not a SHA-256 digest: {digest!r}")
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its SHA-256 (hex). Storing the same bytes again is a
        no-op; a different file already under that name is a :class:`BlobError`."""
        digest = hashlib.sha256(data).hexdigest()
        final = self.path(digest)
        if final.exists():
            self._check(final, digest)
            return digest
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = self.root / STAGING
        staging.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=staging)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o444)
            try:
                os.link(temporary, final)
            except FileExistsError:  # another writer stored the same bytes first
                self._check(final, digest)
            else:
                _fsync_directory(final.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        return digest

    def get(self, digest: str) -> bytes:
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError:
            raise BlobMissing(f"blob {digest} is missing from {self.root}") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise BlobError(f"blob {digest} in {self.root} no longer matches its hash")
        return data

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()

    def __iter__(self) -> Iterator[StoredBlob]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("??/??/*")):
            if DIGEST.fullmatch(path.name) and path.is_file():
                stat = path.stat()
                yield StoredBlob(path.name, stat.st_size, stat.st_mtime)

    def orphans(
        self, is_referenced: Callable[[str], bool], *, older_than_seconds: float
    ) -> list[StoredBlob]:
        """Blobs no record refers to, older than the grace period.

        The grace period protects a blob written by a request whose commit has not happened
        yet: sweeping it would leave that contract's record pointing at nothing."""
        cutoff = time.time() - older_than_seconds
        return [blob for blob in self if blob.modified < cutoff and not is_referenced(blob.digest)]

    def _check(self, path: Path, digest: str) -> None:
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise BlobError(f"{path} exists with other content; the store is damaged")


def _fsync_directory(directory: Path) -> None:
    # The link is durable only once its directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
