"""The audit log: one row per state change, each committing to everything before it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, String, Text, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from registry.core.db import Base, created_dt, uuid_pk

HASH_HEX = 64


class AuditEvent(Base):
    """One appended event. Hashes are lowercase hex SHA-256.

    ``leaf_hash`` is the RFC 6962 leaf hash, SHA-256(0x00 ‖ canonical event), so the same
    leaves can later form a Merkle tree; ``chain_hash`` is SHA-256(previous chain ‖ leaf).
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint("seq > 0", name="seq_positive"),
        Index("ix_audit_events_subject", "subject_type", "subject_id"),
    )

    seq: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=False, comment="1, 2, 3 … without gaps"
    )
    event_dt: Mapped[datetime] = mapped_column(comment="when the change was committed to")
    actor_id: Mapped[uuid.UUID | None] = mapped_column(comment="user who acted; null for system")
    actor_organisation_id: Mapped[uuid.UUID | None] = mapped_column(
        comment="the acting user's organisation at the time"
    )
    action: Mapped[str] = mapped_column(String(100), comment="e.g. patent.created")
    subject_type: Mapped[str] = mapped_column(String(50))
    subject_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text, comment="canonical JSON of the changed fields")
    leaf_hash: Mapped[str] = mapped_column(String(HASH_HEX), unique=True)
    chain_hash: Mapped[str] = mapped_column(String(HASH_HEX))

    def __repr__(self) -> str:
        return f"<AuditEvent #{self.seq} {self.action} {self.subject_type}:{self.subject_id}>"


class AuditHead(Base):
    """The single row holding the log's size and last chain hash.

    Appending locks this row (``FOR UPDATE`` on PostgreSQL; the ``BEGIN IMMEDIATE`` write lock
    on SQLite), so concurrent writers queue here and the sequence never forks or skips.
    """

    __tablename__ = "audit_heads"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger, comment="number of events appended")
    chain_hash: Mapped[str] = mapped_column(String(HASH_HEX))

    def __repr__(self) -> str:
        return f"<AuditHead size={self.size}>"


class AuditCheckpoint(Base):
    """A signed tree head of the log, as issued: the checkpoint note outsiders keep.

    ``tree_size`` counts the events it covers (seq 1 … tree_size); the checkpoint's own audit
    event comes right after them, so it is covered by the next checkpoint. Append-only, like
    the events: a kept checkpoint that no longer matches this table is evidence, not an error.
    """

    __tablename__ = "audit_checkpoints"
    __table_args__ = (CheckConstraint("tree_size >= 0", name="tree_size_not_negative"),)

    id: Mapped[uuid_pk]
    tree_size: Mapped[int] = mapped_column(
        BigInteger, unique=True, comment="events covered: seq 1 … tree_size"
    )
    root_hash: Mapped[str] = mapped_column(String(HASH_HEX), comment="RFC 6962 root, hex")
    note: Mapped[str] = mapped_column(Text, comment="the signed checkpoint note (c2sp.org)")
    created_dt: Mapped[created_dt]

    def __repr__(self) -> str:
        return f"<AuditCheckpoint size={self.tree_size} root={self.root_hash[:12]}>"


@event.listens_for(Session, "before_flush")
def _refuse_rewrites(session: Session, _context: Any, _instances: Any) -> None:
    for obj in (*session.dirty, *session.deleted):
        guarded = isinstance(obj, AuditEvent | AuditCheckpoint)
        if guarded and (obj in session.deleted or session.is_modified(obj)):
            what = obj.__tablename__.replace("_", " ")  # "audit events", "audit checkpoints"
            raise RuntimeError(f"{what} are append-only")
