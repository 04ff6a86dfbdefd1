"""Encumbrances: exclusive and sole licences, pledges, dispute suspensions and preservation
orders, which decide whether a patent may be openly licensed (reference/law.md A1 E3–E6).
Released, never deleted."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from registry.audit.services import record
from registry.core.actor import Actor
from registry.core.errors import FieldError, NotFound, RuleViolation, validation_failed
from registry.patents.models import Encumbrance, EncumbranceKind
from registry.patents.services import editable_patent, now, touch
from registry.patents.signals import encumbrance_requested

EXCLUSIVE_KINDS = frozenset({EncumbranceKind.EXCLUSIVE_LICENCE, EncumbranceKind.SOLE_LICENCE})


def add_encumbrance(
    session: Session, *, actor: Actor, patent_id: uuid.UUID, data: dict[str, Any]
) -> Encumbrance:
    """Record an encumbrance. Only a pledge carries ``pledgee_consent`` (and must state it);
    an exclusive or sole licence may not overlap another one in force, and features above
    (published open licences, Patent Law Art. 51(3)) may refuse it through the signal."""
    patent = editable_patent(session, actor=actor, patent_id=patent_id)
    kind: EncumbranceKind = data["kind"]
    errors = []
    if kind is EncumbranceKind.PLEDGE and data.get("pledgee_consent") is None:
        errors.append(FieldError.of("pledgee_consent", "state whether the pledgee consents"))
    if kind is not EncumbranceKind.PLEDGE and data.get("pledgee_consent") is not None:
        errors.append(FieldError.of("pledgee_consent", "only pledges carry a pledgee consent"))
    end = data.get("end_date")
    if end is not None and end < data["start_date"]:
        errors.append(FieldError.of("end_date", "ends before it starts"))
    validation_failed(errors)
    if kind in EXCLUSIVE_KINDS:
        for other in patent.encumbrances:
            if (
                other.kind in EXCLUSIVE_KINDS
                and other.released_dt is None
                and _overlaps(other.start_date, other.end_date, data["start_date"], end)
            ):
                raise RuleViolation(
                    f"an {other.kind} ({other.reference}) is recorded for that period"
                )
        for reason in encumbrance_requested.send(patent, session=session, kind=kind):
            if reason[1]:
                raise RuleViolation(str(reason[1]))
    encumbrance = Encumbrance(patent_id=patent.id, created_dt=now(), **data)
    session.add(encumbrance)
    touch(patent)
    session.flush()
    record(
        session,
        actor=actor,
        action="patent.encumbrance_added",
        subject_type="patent",
        subject_id=patent.id,
        payload={"encumbrance_id": encumbrance.id, **data, "version": patent.version},
    )
    return encumbrance


def _overlaps(a_start: date, a_end: date | None, b_start: date, b_end: date | None) -> bool:
    return (a_end is None or b_start <= a_end) and (b_end is None or a_start <= b_end)


def release_encumbrance(
    session: Session,
    *,
    actor: Actor,
    patent_id: uuid.UUID,
    encumbrance_id: uuid.UUID,
    reason: str | None,
) -> Encumbrance:
    """Mark an encumbrance released (legal records are never deleted). 409 if already so."""
    patent = editable_patent(session, actor=actor, patent_id=patent_id)
    encumbrance = session.get(Encumbrance, encumbrance_id)
    if encumbrance is None or encumbrance.patent_id != patent.id:
        raise NotFound("encumbrance")
    if encumbrance.released_dt is not None:
        raise RuleViolation("this encumbrance was already released")
    encumbrance.released_dt = now()
    encumbrance.release_reason = reason
    touch(patent)
    session.flush()
    record(
        session,
        actor=actor,
        action="patent.encumbrance_released",
        subject_type="patent",
        subject_id=patent.id,
        payload={"encumbrance_id": encumbrance.id, "reason": reason, "version": patent.version},
    )
    return encumbrance
