"""Signed checkpoints of the audit log: the key that signs them, issuing one, reading them.

A checkpoint commits the operator to the log's first *n* events (size and RFC 6962 root) in a
signed note anyone can keep (:mod:`registry.audit.note`). An auditor who kept one can later
demand a consistency proof: a log rewritten or truncated behind it no longer proves consistent
(reliability.md §3.1–3.2). Checkpoints are issued on demand (``POST /audit/checkpoints``,
``flask audit checkpoint``, which a scheduler runs hourly) and each one is itself an audit
event, appended right after the events it covers, so the next checkpoint covers it.

The key is Ed25519: ``REGISTRY_CHECKPOINT_KEY`` names a PEM file (PKCS#8, unencrypted) in
production; otherwise a key is generated on first use into ``<instance>/checkpoint.key``
(mode 0600). It does not live in ``<instance>/signing/``: the contract signing keys appear
there by renaming a complete staging directory into place, which an existing directory would
block.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.audit import merkle, note, services, tree
from registry.audit.models import AuditCheckpoint, AuditHead
from registry.core import clock
from registry.core.actor import Actor

EXTENSION = "registry.audit.checkpoints"
KEY_FILE = "checkpoint.key"
ACTION = "checkpoint.issued"


class CheckpointKeyError(RuntimeError):
    """The checkpoint key cannot be loaded: no checkpoint may be issued (fail loudly)."""


def load_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointKeyError(f"cannot load the checkpoint key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointKeyError(f"the checkpoint key {path} is not an Ed25519 key")
    return key


def development_key(instance_path: Path) -> Ed25519PrivateKey:
    """The instance's key, generated on first use (mode 0600) and reused after.

    Written to a private temporary file and hard-linked into place, so the file appears whole
    or not at all; when several processes start together the first link wins and the others
    load that key, so every process signs with the same one.
    """
    path = instance_path / KEY_FILE
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd, temporary = tempfile.mkstemp(dir=instance_path, prefix=f".{KEY_FILE}.")  # 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another process won: use its key
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return load_key(path)


@dataclass
class CheckpointSigner:
    """The log's name (its origin) and signing key, loaded on first use, per app."""

    origin: str
    instance_path: Path
    key_path: str | None
    _key: Ed25519PrivateKey | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def key(self) -> Ed25519PrivateKey:
        with self._lock:
            if self._key is None:
                self._key = (
                    load_key(Path(self.key_path))
                    if self.key_path
                    else development_key(self.instance_path)
                )
            return self._key

    @property
    def verifier(self) -> note.Verifier:
        return note.Verifier(self.origin, note.raw_public_key(self.key.public_key()))

    def public_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def sign(self, size: int, root: bytes) -> str:
        return note.sign(note.Checkpoint(self.origin, size, root).text(), self.origin, self.key)


def signer(app: Flask | None = None) -> CheckpointSigner:
    found: CheckpointSigner = (app or current_app).extensions[EXTENSION]
    return found


def latest(session: Session) -> AuditCheckpoint | None:
    return session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1)
    ).first()


def recent(session: Session, limit: int) -> list[AuditCheckpoint]:
    """The newest ``limit`` checkpoints, newest first (for the gazette feed)."""
    return list(
        session.scalars(
            select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(limit)
        )
    )


@dataclass(frozen=True)
class Issued:
    checkpoint: AuditCheckpoint
    created: bool


def issue(session: Session, *, actor: Actor | None, signer_: CheckpointSigner) -> Issued:
    """Sign a checkpoint of every event appended so far and record it as an event.

    Runs under the log head's lock, so no event can slip in between the size read and the
    checkpoint's own event: that event is always number ``tree_size + 1``. When nothing but the
    latest checkpoint's own event was appended since, the latest is returned instead of a new
    one (``created`` false), so a scheduler calling this on an idle log adds nothing.
    """
    with services.batch(session):
        head: AuditHead = session.info[services.HEAD_LOCK]
        size = head.size
        last = latest(session)
        if last is not None and size <= last.tree_size + 1:
            return Issued(last, created=False)
        root = merkle.tree_root(tree.read_leaves(session, size))
        checkpoint = AuditCheckpoint(
            id=uuid.uuid4(),
            tree_size=size,
            root_hash=root.hex(),
            note=signer_.sign(size, root),
            created_dt=clock.now(),
        )
        session.add(checkpoint)
        services.record(
            session,
            actor=actor,
            action=ACTION,
            subject_type="audit_checkpoint",
            subject_id=checkpoint.id,
            payload={"tree_size": size, "root_hash": checkpoint.root_hash},
        )
    return Issued(checkpoint, created=True)


def as_dict(checkpoint: AuditCheckpoint) -> dict[str, object]:
    """The JSON form: the note and its parts (root in hex, signature as in the note)."""
    text, lines = note.split(checkpoint.note)
    parsed = note.parse_checkpoint(text)
    return {
        "origin": parsed.origin,
        "size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash,
        "signature": lines[0].encoded,
        "note": checkpoint.note,
        "created_dt": checkpoint.created_dt,
    }
