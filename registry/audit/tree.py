"""The audit log as a Merkle tree: tree heads and proofs over the stored leaf hashes.

Leaf *i* (counting from 0, as RFC 6962 does) is the event with ``seq`` *i* + 1, and its leaf
hash is the one stored when the event was appended — SHA-256(0x00 ‖ canonical event), which
``GET /audit/verify`` recomputes. A request reads the leaf hashes it needs from the database
(about half a second per 100,000 events on SQLite) and hashes them; nothing is cached between
requests yet, so the cost grows with the log. Tiles (c2sp.org/tlog-tiles) or stored subtree
heads would make it logarithmic when logs reach millions of events.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.audit import merkle
from registry.audit.models import AuditEvent, AuditHead
from registry.core.errors import FieldError, NotFound, RuleViolation, ValidationFailed

HEX_HASH_LENGTH = 64
MAX_INDEX_DIGITS = 19  # a 64-bit index; longer digit strings are refused, not parsed


def log_size(session: Session) -> int:
    """Events in the log as its head records them (committed appends only)."""
    return session.scalar(select(AuditHead.size).where(AuditHead.id == 1)) or 0


def read_leaves(session: Session, size: int) -> list[bytes]:
    """The leaf hashes of events 1 … ``size``, in order.

    Raises :class:`RuleViolation` when events are missing: a tree over a log with a hole would
    prove nothing (``GET /audit/verify`` names the event).
    """
    # Core, not the ORM: one plain column, and the ORM's row handling would double the time.
    rows = (
        session.connection()
        .execute(
            select(AuditEvent.leaf_hash).where(AuditEvent.seq <= size).order_by(AuditEvent.seq)
        )
        .scalars()
        .all()
    )
    if len(rows) != size:
        raise RuleViolation(
            f"the audit log holds {len(rows)} of events 1 … {size}: it is broken; "
            "GET /api/v1/audit/verify names the first bad event"
        )
    return [bytes.fromhex(leaf) for leaf in rows]


def _size_within(
    name: str, value: int | None, maximum: int, *, minimum: int = 0, bound: str = "the log's size"
) -> int:
    """``value`` (``maximum`` when absent), or 422 naming parameter ``name``."""
    if value is None:
        return maximum
    if not minimum <= value <= maximum:
        message = f"must be between {minimum} and {bound}, {maximum}"
        raise ValidationFailed(f"{name} {message}", [FieldError.of(name, message)])
    return value


@dataclass(frozen=True)
class TreeHead:
    tree_size: int
    root_hash: bytes

    def as_dict(self) -> dict[str, object]:
        return {"tree_size": self.tree_size, "root_hash": self.root_hash.hex()}


def tree_head(session: Session, *, size: int | None = None) -> TreeHead:
    """The root of the first ``size`` events (all by default); 422 on ``size`` past the log."""
    size = _size_within("size", size, log_size(session))
    return TreeHead(size, merkle.tree_root(read_leaves(session, size)))


def _leaf_index(session: Session, leaf: str) -> int:
    """``leaf`` is a 0-based index or an event's leaf hash in hex (64 characters)."""
    text = leaf.strip().lower()
    if len(text) == HEX_HASH_LENGTH and all(c in "0123456789abcdef" for c in text):
        seq = session.scalar(select(AuditEvent.seq).where(AuditEvent.leaf_hash == text))
        if seq is None:
            raise NotFound("audit event with this leaf hash")
        return seq - 1
    if text.isascii() and text.isdigit() and len(text) <= MAX_INDEX_DIGITS:
        return int(text)
    raise ValidationFailed(
        "leaf must be a leaf index (0 for the first event) or a leaf hash in hex",
        [FieldError.of("leaf", "not a leaf index or a 64-character hex leaf hash")],
    )


def inclusion(session: Session, *, leaf: str, size: int | None = None) -> dict[str, object]:
    """The audit path of one event in the tree of the first ``size`` events (RFC 6962 §2.1.1).

    Raises :class:`ValidationFailed` naming ``size`` (past the log, or 0) or ``leaf`` (not in
    that tree), and :class:`NotFound` for a leaf hash no event has.
    """
    current = log_size(session)
    index = _leaf_index(session, leaf)
    size = _size_within("size", size, current, minimum=1)
    if index >= size:
        raise ValidationFailed(
            f"leaf {index} is not in a tree of {size} events (leaf indices start at 0)",
            [FieldError.of("leaf", f"must be below the tree size {size}")],
        )
    leaves = read_leaves(session, size)
    return {
        "leaf_index": index,
        "tree_size": size,
        "leaf_hash": leaves[index].hex(),
        "proof": [node.hex() for node in merkle.inclusion_proof(leaves, index, size)],
        "root_hash": merkle.tree_root(leaves).hex(),
    }


def consistency(session: Session, *, first: int, second: int | None = None) -> dict[str, object]:
    """Proof that the tree of the first ``first`` events is a prefix of that of ``second``
    (RFC 6962 §2.1.2). Raises :class:`ValidationFailed` naming the size that is out of range."""
    second = _size_within("second", second, log_size(session))
    first = _size_within("first", first, second, bound="the second size")
    leaves = read_leaves(session, second)
    return {
        "first": first,
        "second": second,
        "proof": [node.hex() for node in merkle.consistency_proof(leaves, first, second)],
        "first_root": merkle.tree_root(leaves, first).hex(),
        "second_root": merkle.tree_root(leaves).hex(),
    }
