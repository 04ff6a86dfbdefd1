"""Appending to and verifying the hash-chained audit log.

Every state-changing service calls :func:`record` in its own transaction, so an event exists
exactly when its change was committed (DESIGN.md §2, "Audit trail").
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.audit.models import AuditEvent, AuditHead
from registry.core.actor import Actor
from registry.core.canonical import canonical_json, format_instant, to_plain

GENESIS_CHAIN = "00" * 32
LEAF_PREFIX = b"\x00"  # RFC 6962 §2.1: leaf hashes are domain-separated from node hashes


def canonical_event(
    *,
    seq: int,
    event_dt: datetime,
    actor_id: uuid.UUID | None,
    actor_organisation_id: uuid.UUID | None,
    action: str,
    subject_type: str,
    subject_id: str,
    payload: Mapping[str, Any],
) -> bytes:
    return canonical_json(
        {
            "seq": seq,
            "time": format_instant(event_dt),
            "actor": str(actor_id) if actor_id else None,
            "actor_organisation": str(actor_organisation_id) if actor_organisation_id else None,
            "action": action,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "payload": payload,
        }
    ).encode("utf-8")


def leaf_hash(canonical: bytes) -> str:
    return hashlib.sha256(LEAF_PREFIX + canonical).hexdigest()


def chain_hash(previous: str, leaf: str) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + bytes.fromhex(leaf)).hexdigest()


HEAD_LOCK = "registry.audit_head_locked"


@contextmanager
def batch(session: Session) -> Iterator[None]:
    """Append many events under one lock of the head, written in one flush at the end.

    For bulk operations (imports): every :func:`record` inside the block reuses the head locked
    on entry and skips its own flush, so thousands of events go out as one batched INSERT and
    one UPDATE of the head. Nothing inside the block may expire the head.
    """
    session.info[HEAD_LOCK] = _locked_head(session)
    try:
        yield
        session.flush()
    finally:
        session.info.pop(HEAD_LOCK, None)


def _locked_head(session: Session) -> AuditHead:
    """The log head, locked until the end of the transaction."""
    # populate_existing: a head this session loaded earlier may be stale (another writer has
    # appended since); the row read under the lock must overwrite it, or the next seq repeats.
    head = session.execute(
        select(AuditHead)
        .where(AuditHead.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, size=0, chain_hash=GENESIS_CHAIN)
        session.add(head)
        session.flush()
    return head


def record(
    session: Session,
    *,
    actor: Actor | None,
    action: str,
    subject_type: str,
    subject_id: uuid.UUID | str,
    payload: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one event for a change made in this transaction; the caller commits both.

    ``payload`` holds the changed fields (for edits, ``{"field": [old, new]}``); it is stored as
    canonical JSON and must contain only exact values (no floats).
    """
    plain_payload = to_plain(dict(payload or {}))
    in_batch: AuditHead | None = session.info.get(HEAD_LOCK)
    head = in_batch or _locked_head(session)
    seq = head.size + 1
    event_dt = datetime.now(UTC)
    actor_id = actor.user_id if actor else None
    actor_org = actor.organisation_id if actor else None
    canonical = canonical_event(
        seq=seq,
        event_dt=event_dt,
        actor_id=actor_id,
        actor_organisation_id=actor_org,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        payload=plain_payload,
    )
    leaf = leaf_hash(canonical)
    chained = chain_hash(head.chain_hash, leaf)
    event = AuditEvent(
        seq=seq,
        event_dt=event_dt,
        actor_id=actor_id,
        actor_organisation_id=actor_org,
        action=action,
        subject_type=subject_type,
        subject_id=str(subject_id),
        payload=canonical_json(plain_payload),
        leaf_hash=leaf,
        chain_hash=chained,
    )
    session.add(event)
    head.size = seq
    head.chain_hash = chained
    if in_batch is None:
        # Written now, so nothing the caller does later (expiring, refreshing) can lose it.
        session.flush()
    return event


@dataclass(frozen=True)
class Verdict:
    ok: bool
    size: int
    chain_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "size": self.size,
            "chain_hash": self.chain_hash,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
        }


def verify(session: Session, *, batch: int = 5000) -> Verdict:
    """Recompute every leaf and chain hash in order; name the first event that does not match.

    Checks, per event: the sequence continues without a gap, the stored leaf hash equals the
    hash of the event's own fields, and the chain hash commits to the previous one. Finally the
    head must agree with the last event (a truncated log is caught there). On failure
    ``first_bad_seq`` names the first event that is wrong or missing, and the first ``size``
    events verify.

    Safe while writers append: under PostgreSQL's READ COMMITTED each statement sees what was
    committed when it started, so events appended between reading the events and reading the
    head would look like a truncated log. Heads only grow and commit with their events, so the
    events are read first, then the head, then any events up to the head that came meanwhile.
    """
    chain = _Chain()
    bad = chain.extend(session, upto=None, batch=batch)
    if bad:
        return bad
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    head_size, head_chain = (head.size, head.chain_hash) if head else (0, GENESIS_CHAIN)
    if chain.size < head_size:
        bad = chain.extend(session, upto=head_size, batch=batch)
        if bad:
            return bad
    if chain.size == head_size and chain.previous == head_chain:
        return Verdict(True, chain.size, chain.previous)
    said = (
        f"the log head says {head_size} events ending {head_chain[:12]}…"
        if head
        else "the log head is missing"
    )
    found = f"the events give {chain.size} ending {chain.previous[:12]}…"
    if chain.size < head_size:
        missing = chain.size + 1
        return Verdict(
            False,
            chain.size,
            chain.previous,
            missing,
            f"event {missing} is missing: {said}, {found}",
        )
    if chain.size > head_size:
        extra = head_size + 1
        covered = session.scalar(select(AuditEvent.chain_hash).where(AuditEvent.seq == head_size))
        return Verdict(
            False,
            head_size,
            covered or GENESIS_CHAIN,
            extra,
            f"event {extra} is not covered by the log head: {said}, {found}",
        )
    if chain.size == 0:
        return Verdict(False, 0, GENESIS_CHAIN, None, f"{said}, {found}")
    return Verdict(
        False,
        chain.size - 1,
        chain.before_last,
        chain.size,
        f"event {chain.size} does not match the log head: {said}, {found}",
    )


class _Chain:
    """The running state of a verification: how many events verified, and the chain so far."""

    def __init__(self) -> None:
        self.size = 0
        self.previous = GENESIS_CHAIN
        self.before_last = GENESIS_CHAIN

    def extend(self, session: Session, *, upto: int | None, batch: int) -> Verdict | None:
        """Verify the events after those already checked (up to seq ``upto``)."""
        statement = select(AuditEvent)
        if self.size:  # the first pass reads every row: a forged seq 0 is named, not skipped
            statement = statement.where(AuditEvent.seq > self.size)
        if upto is not None:
            statement = statement.where(AuditEvent.seq <= upto)
        rows = session.execute(
            statement.order_by(AuditEvent.seq).execution_options(yield_per=batch)
        ).scalars()
        for event in rows:
            problem = _check_event(event, self.size + 1, self.previous)
            if problem:
                rows.close()
                bad_seq = min(event.seq, self.size + 1)
                return Verdict(False, self.size, self.previous, bad_seq, problem)
            self.before_last, self.previous = self.previous, event.chain_hash
            self.size += 1
        return None


def _check_event(event: AuditEvent, expected_seq: int, previous: str) -> str | None:
    if event.seq < expected_seq:
        return f"event {event.seq} is out of sequence: expected event {expected_seq}"
    if event.seq > expected_seq:
        return (
            f"event {expected_seq} is missing: the sequence jumps from {expected_seq - 1} "
            f"to {event.seq}"
        )
    try:
        payload = json.loads(event.payload)
        canonical = canonical_event(
            seq=event.seq,
            event_dt=event.event_dt,
            actor_id=event.actor_id,
            actor_organisation_id=event.actor_organisation_id,
            action=event.action,
            subject_type=event.subject_type,
            subject_id=event.subject_id,
            payload=payload,
        )
    except (ValueError, TypeError) as exc:
        return f"event {event.seq} cannot be read: {exc}"
    if canonical_json(payload) != event.payload:
        return f"event {event.seq}: payload is not in canonical form (edited by hand?)"
    if leaf_hash(canonical) != event.leaf_hash:
        return f"event {event.seq}: contents do not match its leaf hash"
    if chain_hash(previous, event.leaf_hash) != event.chain_hash:
        return f"event {event.seq}: chain hash does not follow from event {event.seq - 1}"
    return None


def count_events(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0
