"""Overdue statements, reminders, and the licence status that follows from payment.

Run daily by ``flask --app wsgi clearing overdue [--date D]`` (:func:`run_overdue`):

* **Overdue.** An open statement (not fully paid, not void) whose due date is before the day
  of the run is overdue. The first run that sees it stamps ``Statement.overdue_dt`` and
  records ``statement.overdue``; the shown status (registry.clearing.statements) says
  ``overdue`` from the day after the due date whether or not the command ran.
* **Reminders** (law.md A3, "payment enforcement: reminders"). Each overdue statement gets a
  bilingual e-mail to every active user of the licensee's organisation, queued in the outbox
  (registry.clearing.outbox) with the statement number, the amount outstanding and the due
  date. At most one reminder per statement per 7 days: none is queued while an earlier one
  for the statement was queued less than 7 × 24 hours ago (by the real clock, so re-running
  the command, with any ``--date``, never mails twice in a week).
* **Suspension** (CC Art. 873: a licensee that still does not pay must stop exploiting;
  law.md A3: "after a grace period, suspension of the right to use"). An ``active`` licence
  with a statement overdue by more than ``suspend_after_days`` days (setting, 30 by
  default) — due date + 30 days < the day of the run — becomes ``suspended``
  (``licence.suspended``). A ``pending_payment`` licence is left as it is: it was never
  obtained (PL Art. 51(1)), so there is no right of use to suspend.

:func:`refresh_licence_status`, called after every payment (registry.clearing.payments and
credits), moves a licence the other way:

* ``pending_payment`` → ``active`` (``licence.activated``) once it has upfront statements
  (entry fee, lump sum, instalments due at month 0) and every one that is not void is paid: the
  licence is obtained by paying as announced (PL Art. 51(1)).
* ``suspended`` → ``active`` (``licence.reinstated``) once no statement of the licence is
  overdue beyond the grace period any more — the same test that suspended it, so a licence is
  never reinstated only to be suspended again by the next run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Final

from flask import current_app, has_app_context
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Exists

from registry.accounts.models import User
from registry.audit.services import record
from registry.clearing import outbox
from registry.clearing.models import OutboxMessage, Statement, StatementKind, StatementStatus
from registry.clearing.royalties import royalty_of
from registry.core import clock
from registry.core.actor import Actor
from registry.core.money import format_money, from_fen
from registry.licences.models import Licence, LicenceStatus

REMINDER_INTERVAL: Final = timedelta(days=7)
DEFAULT_SUSPEND_AFTER_DAYS: Final = 30
UPFRONT_KINDS: Final = (StatementKind.ENTRY_FEE, StatementKind.LUMP_SUM)


def suspend_after_days() -> int:
    """The grace period in days (setting ``suspend_after_days``; 30 outside an app)."""
    if has_app_context():
        return int(current_app.config["REGISTRY_SETTINGS"].suspend_after_days)
    return DEFAULT_SUSPEND_AFTER_DAYS


def is_upfront(statement: Statement, terms: dict[str, Any]) -> bool:
    """An amount the licence is obtained by paying, as take-up decided ``pending_payment``
    (registry.offers.royalty.upfront_amount): the entry fee, the lump sum, or an instalment
    due at month 0."""
    if statement.kind in UPFRONT_KINDS:
        return True
    if statement.kind is not StatementKind.INSTALMENT or statement.instalment_number is None:
        return False
    instalments = royalty_of(terms).get("instalments") or []
    index = statement.instalment_number - 1
    return 0 <= index < len(instalments) and int(instalments[index]["due_months"]) == 0


def _open_past(licence_id: Any, before: date) -> Exists:
    """SQL condition: the licence (an id or the correlated ``Licence.id``) has an open
    statement due before ``before``."""
    return exists().where(
        Statement.licence_id == licence_id,
        Statement.status == StatementStatus.OPEN,
        Statement.amount_paid < Statement.amount_due,
        Statement.due_date < before,
    )


def refresh_licence_status(
    session: Session, *, licence_id: uuid.UUID, actor: Actor | None, today: date
) -> Licence | None:
    """Activate or reinstate the licence when its payments now allow it (module docstring);
    the new status, or ``None`` when it did not change."""
    licence = session.scalars(
        select(Licence).where(Licence.id == licence_id).with_for_update()
    ).one()
    if licence.status is LicenceStatus.PENDING_PAYMENT:
        statements = session.scalars(
            select(Statement).where(
                Statement.licence_id == licence.id, Statement.status != StatementStatus.VOID
            )
        ).all()
        upfront = [s for s in statements if is_upfront(s, licence.terms)]
        if not upfront or any(s.status is not StatementStatus.PAID for s in upfront):
            return None
        return _set_status(session, licence, LicenceStatus.ACTIVE, "licence.activated", actor)
    if licence.status is LicenceStatus.SUSPENDED:
        limit = today - timedelta(days=suspend_after_days())
        if session.scalar(select(_open_past(licence.id, limit))):
            return None
        return _set_status(session, licence, LicenceStatus.ACTIVE, "licence.reinstated", actor)
    return None


def _set_status(
    session: Session,
    licence: Licence,
    status: LicenceStatus,
    action: str,
    actor: Actor | None,
    **payload: object,
) -> Licence:
    previous = licence.status
    licence.status = status
    licence.updated_dt = clock.now()
    session.flush()
    record(
        session,
        actor=actor,
        action=action,
        subject_type="licence",
        subject_id=licence.id,
        payload={"status": [previous, status], **payload},
    )
    return licence


@dataclass
class OverdueRun:
    """What one run did: statements newly marked, reminders queued, licences suspended."""

    as_of: date
    marked: list[str] = field(default_factory=list)
    reminded: list[str] = field(default_factory=list)
    messages: int = 0
    suspended: list[str] = field(default_factory=list)


def run_overdue(session: Session, *, as_of: date, actor: Actor | None = None) -> OverdueRun:
    """Mark overdue statements, queue reminders, suspend licences (module docstring)."""
    run = OverdueRun(as_of=as_of)
    now = clock.now()
    overdue = session.scalars(
        select(Statement)
        .where(
            Statement.status == StatementStatus.OPEN,
            Statement.amount_paid < Statement.amount_due,
            Statement.due_date < as_of,
        )
        .order_by(Statement.due_date, Statement.number)
        .with_for_update()
    ).all()
    for statement in overdue:
        if statement.overdue_dt is None:
            statement.overdue_dt = now
            statement.updated_dt = now
            session.flush()
            record(
                session,
                actor=actor,
                action="statement.overdue",
                subject_type="statement",
                subject_id=statement.id,
                payload={"number": statement.number, "due_date": statement.due_date},
            )
            run.marked.append(statement.number)
        queued = _remind(session, statement, as_of=as_of)
        if queued:
            run.reminded.append(statement.number)
            run.messages += queued
    limit = as_of - timedelta(days=suspend_after_days())
    licences = session.scalars(
        select(Licence)
        .where(Licence.status == LicenceStatus.ACTIVE, _open_past(Licence.id, limit))
        .order_by(Licence.reference)
        .with_for_update()
    ).all()
    for licence in licences:
        late = [s.number for s in overdue if s.licence_id == licence.id and s.due_date < limit]
        _set_status(
            session,
            licence,
            LicenceStatus.SUSPENDED,
            "licence.suspended",
            actor,
            overdue_statements=late,
            as_of=as_of,
            grace_days=suspend_after_days(),
        )
        run.suspended.append(licence.reference)
    return run


def _remind(session: Session, statement: Statement, *, as_of: date) -> int:
    """Queue the statement's reminder to the licensee's users; the number of messages (0 when
    one went out less than 7 days ago or nobody can receive it)."""
    last = session.scalar(
        select(func.max(OutboxMessage.created_dt)).where(
            OutboxMessage.subject_type == "statement", OutboxMessage.subject_id == statement.id
        )
    )
    if last is not None and last > clock.now() - REMINDER_INTERVAL:
        return 0
    recipients = session.scalars(
        select(User.email)
        .where(
            User.organisation_id == statement.licensee_organisation_id,
            User.is_active.is_(True),
        )
        .order_by(User.email)
    ).all()
    if not recipients:
        return 0
    licence = session.get(Licence, statement.licence_id)
    reference = licence.reference if licence else ""
    owed = format_money(from_fen(statement.amount_due - statement.amount_paid))
    days = (as_of - statement.due_date).days
    grace = suspend_after_days()
    subject = f"付款提醒 Payment reminder: {statement.number} 逾期未付 overdue"
    body = (
        f"您好，\n\n许可 {reference} 的结算单 {statement.number} 已于 {statement.due_date} 到期，"
        f"尚欠 CNY {owed}，已逾期 {days} 天。请尽快付款，付款附言请注明结算单号。"
        f"到期后超过 {grace} 天仍未付款的，许可将被暂停（《民法典》第873条）。\n\n"
        f"Dear licensee,\n\nStatement {statement.number} for licence {reference} was due on "
        f"{statement.due_date}; CNY {owed} is outstanding, {days} days overdue. Please pay, "
        f"quoting the statement number in the payment reference. A licence with an amount "
        f"overdue by more than {grace} days is suspended (Civil Code Art. 873).\n\n"
        f"开放许可登记平台 清算中心 / Open Licence Registry clearing house\n"
    )
    for recipient in recipients:
        outbox.queue(
            session,
            recipient=recipient,
            subject=subject,
            body=body,
            subject_type="statement",
            subject_id=statement.id,
        )
    statement.reminders_sent += 1
    statement.updated_dt = clock.now()
    session.flush()
    return len(recipients)
