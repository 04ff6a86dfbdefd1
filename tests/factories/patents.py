"""Helpers for patent tests: valid numbers, and proof that a refused write changed nothing."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.audit.models import AuditEvent
from registry.core.identifiers import application_check_character
from registry.patents.models import (
    Encumbrance,
    IncomeBeneficiary,
    Inventor,
    Patent,
    PatentOwner,
)

TYPE_DIGIT = {"invention": "1", "utility_model": "2", "design": "3"}
_serials = itertools.count(4_100_001)


def app_no(year: int = 2021, digit: str = "1", serial: int | None = None) -> str:
    """A canonical application number with a correct check character."""
    digits = f"{year:04d}{digit}{serial if serial is not None else next(_serials):07d}"
    return f"{digits}.{application_check_character(digits)}"


def wrong_check(number: str) -> str:
    """The same number with a check character that is off by one."""
    digits, check = number.split(".")
    right = "0123456789X".index(check)
    return f"{digits}.{'0123456789X'[(right + 1) % 11]}"


def _count(session: Session, model: Any, *where: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def snapshot(session: Session) -> dict[str, int]:
    """Row counts of every patent table and the audit log, and the sum of patent versions."""
    session.expire_all()
    return {
        "patents": _count(session, Patent),
        "versions": int(session.scalar(select(func.coalesce(func.sum(Patent.version), 0))) or 0),
        "owners": _count(session, PatentOwner),
        "owners_current": _count(session, PatentOwner, PatentOwner.superseded_dt.is_(None)),
        "beneficiaries": _count(session, IncomeBeneficiary),
        "beneficiaries_current": _count(
            session, IncomeBeneficiary, IncomeBeneficiary.superseded_dt.is_(None)
        ),
        "inventors": _count(session, Inventor),
        "inventors_current": _count(session, Inventor, Inventor.superseded_dt.is_(None)),
        "encumbrances": _count(session, Encumbrance),
        "released": _count(session, Encumbrance, Encumbrance.released_dt.is_not(None)),
        "audit_events": _count(session, AuditEvent),
    }


@contextmanager
def unchanged(session: Session) -> Iterator[None]:
    """Asserts the block (a refused write) left every patent table and the audit log as is."""
    before = snapshot(session)
    yield
    assert snapshot(session) == before


def events(session: Session, action: str, subject_id: str | None = None) -> list[AuditEvent]:
    session.expire_all()
    statement = select(AuditEvent).where(AuditEvent.action == action)
    if subject_id is not None:
        statement = statement.where(AuditEvent.subject_id == subject_id)
    return list(session.scalars(statement.order_by(AuditEvent.seq)))


def error_fields(response: Any) -> set[str]:
    return {error["field"] for error in response.json["errors"]}


def refused(response: Any, status: int, *field_prefixes: str) -> None:
    """The envelope answer with ``status``, naming a field starting with each prefix."""
    assert response.status_code == status, response.json
    assert response.json["status"] == status
    named = error_fields(response)
    for prefix in field_prefixes:
        assert any(name == prefix or name.startswith(prefix + ".") for name in named), (
            prefix,
            response.json,
        )
