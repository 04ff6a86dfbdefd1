"""Statements: what a licensee owes, by when, numbered ST-YYYY-NNNNNN.

A statement is issued for each fixed amount of the schedule at take-up (entry fee, lump sum,
instalments: registry.clearing.schedule), for each royalty report (registry.clearing.reports),
for each licence year's minimum true-up (``clearing true-ups``) and for late interest
(registry.clearing.payments). Issuing posts the ledger flow "statement issued" (Dr
receivable(L), Cr royalties:billed), records ``statement.issued`` and applies any credit the
licensee holds (registry.clearing.credits). A statement replaced by a corrected report is made
void: its issue is reversed in the ledger and what was paid on it becomes the licensee's credit
(ledger: Dr receivable(L) p, Cr credit(L) p; Dr royalties:received p, Cr royalties:billed p —
the money is no longer a royalty received but the licensee's, until it is applied to the
corrected statement by registry.clearing.credits, which books it as received again).

Users see a status derived from the stored one (:func:`statement_view`): ``open`` (nothing paid,
not yet due), ``partially_paid``, ``paid``, ``overdue`` (open or partly paid after its due date)
and ``void``. ``GET /statements?status=`` filters by these.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Final

from sqlalchemy import Select, and_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from registry.accounts.models import Organisation
from registry.audit.services import record
from registry.clearing import credits, ledger
from registry.clearing.models import RoyaltyReport, Statement, StatementKind, StatementStatus
from registry.clearing.schedule import ItemKind, Schedule, build_schedule
from registry.core import clock
from registry.core.actor import Actor, Role
from registry.core.clock import BEIJING
from registry.core.errors import NotFound
from registry.core.money import format_money, from_fen
from registry.core.sequences import next_number
from registry.licences.models import Licence
from registry.licences.services import audited_licence_ids, get_licence
from registry.patents.models import PatentOwner

UPFRONT: Final = {
    ItemKind.ENTRY_FEE: StatementKind.ENTRY_FEE,
    ItemKind.LUMP_SUM: StatementKind.LUMP_SUM,
    ItemKind.INSTALMENT: StatementKind.INSTALMENT,
}
VIEW_STATUSES: Final = ("open", "partially_paid", "paid", "overdue", "void")


def _money(fen: int) -> str:
    return format_money(from_fen(fen))


def issue_statement(
    session: Session,
    *,
    licence: Licence,
    kind: StatementKind,
    amount: int,
    due_date: date,
    period_start: date | None = None,
    period_end: date | None = None,
    instalment_number: int | None = None,
    report: RoyaltyReport | None = None,
    breakdown: dict[str, Any] | None = None,
    actor: Actor | None,
) -> Statement:
    """Issue one statement of ``amount`` fen (> 0) to the licence's licensee."""
    if amount <= 0:
        raise ValueError(f"a statement is for a positive amount, not {amount} fen")
    today = clock.today()
    stamp = clock.now()
    number = next_number(session, "statement", today.year)
    statement = Statement(
        id=uuid.uuid4(),
        number=f"ST-{today.year}-{number:06d}",
        licence_id=licence.id,
        licensee_organisation_id=licence.licensee_organisation_id,
        kind=kind,
        period_start=period_start,
        period_end=period_end,
        instalment_number=instalment_number,
        report_id=report.id if report is not None else None,
        amount_due=amount,
        amount_paid=0,
        due_date=due_date,
        status=StatementStatus.OPEN,
        breakdown=breakdown or {},
        reminders_sent=0,
        created_dt=stamp,
        updated_dt=stamp,
    )
    session.add(statement)
    session.flush()
    licensee = session.get_one(Organisation, licence.licensee_organisation_id)
    ledger.post(
        session,
        kind="statement",
        subject_type="statement",
        subject_id=statement.id,
        description=f"{statement.number} {kind.value} / 开具账单",
        effective_date=today,
        entries=[
            (ledger.receivable(licensee.id, licensee.name), amount),
            (ledger.fixed(ledger.BILLED), -amount),
        ],
    )
    record(
        session,
        actor=actor,
        action="statement.issued",
        subject_type="statement",
        subject_id=statement.id,
        payload={
            "number": statement.number,
            "licence_id": licence.id,
            "kind": kind.value,
            "amount_due": _money(amount),
            "due_date": due_date,
        },
    )
    credits.apply_available_credit(session, statement, actor)
    return statement


def void_statement(session: Session, statement: Statement, *, reason: str, actor: Actor) -> int:
    """Void ``statement`` (replaced by a corrected report): reverse its issue in the ledger;
    what was paid on it becomes the licensee's credit. Returns that amount in fen."""
    today = clock.today()
    licensee = session.get_one(Organisation, statement.licensee_organisation_id)
    issued = next(
        t
        for t in ledger.transactions_for(session, "statement", statement.id)
        if t.kind == "statement"
    )
    ledger.reverse(
        session, issued, description=f"{statement.number} void / 作废", effective_date=today
    )
    paid = statement.amount_paid
    if paid:
        # The money received on it stays the licensee's: back out of the receipt, into credit.
        ledger.post(
            session,
            kind="statement_void_credit",
            subject_type="statement",
            subject_id=statement.id,
            description=f"{statement.number} paid amount held as credit / 转为预收余额",
            effective_date=today,
            entries=[
                (ledger.receivable(licensee.id, licensee.name), paid),
                (ledger.licensee_credit(licensee.id, licensee.name), -paid),
                (ledger.fixed(ledger.RECEIVED), paid),
                (ledger.fixed(ledger.BILLED), -paid),
            ],
        )
    statement.status = StatementStatus.VOID
    statement.void_reason = reason
    statement.updated_dt = clock.now()
    session.flush()
    record(
        session,
        actor=actor,
        action="statement.voided",
        subject_type="statement",
        subject_id=statement.id,
        payload={"number": statement.number, "reason": reason, "credited": _money(paid)},
    )
    return paid


def statement_view(statement: Statement, today: date) -> str:
    """The status users see: open, partially_paid, paid, overdue or void."""
    if statement.status is StatementStatus.VOID:
        return "void"
    if statement.status is StatementStatus.PAID or statement.amount_paid >= statement.amount_due:
        return "paid"
    if statement.due_date < today:
        return "overdue"
    return "partially_paid" if statement.amount_paid else "open"


def schedule_for(session: Session, licence: Licence) -> Schedule:
    """The licence's schedule from its terms snapshot, the licensee's SME status and its term —
    cut at the day it was terminated (Beijing time): a licensee that stopped owes no periods or
    annual minimum after that day, and the year it stopped is pro-rated like a last year."""
    licensee = session.get_one(Organisation, licence.licensee_organisation_id)
    end = licence.end_date
    if licence.terminated_dt is not None:
        stopped = licence.terminated_dt.astimezone(BEIJING).date()
        end = max(min(end, stopped), licence.effective_date)
    return build_schedule(
        licence.terms, effective_date=licence.effective_date, end_date=end, is_sme=licensee.is_sme
    )


def on_licence_taken_up(licence: Licence, *, session: Session, actor: Actor) -> None:
    """Issue the fixed amounts of the new licence's schedule (entry fee, lump sum,
    instalments), each with its due date; running royalties follow reports."""
    schedule = schedule_for(session, licence)
    for item in schedule.items:
        kind = UPFRONT.get(item.kind)
        if kind is None or not item.amount:
            continue
        issue_statement(
            session,
            licence=licence,
            kind=kind,
            amount=item.amount,
            due_date=item.due_date,
            instalment_number=item.number,
            breakdown={"discount": _money(item.discount or 0)},
            actor=actor,
        )


def visible_statements(
    actor: Actor, query: dict[str, Any], today: date | None = None
) -> Select[Statement]:
    """Statements the actor may list: a licensee its enterprise's, a TTO those on its
    organisation's patents, admins all, auditors those in scope; filtered by licence, kind
    and the status shown (one of :data:`VIEW_STATUSES`)."""
    statement = select(Statement).order_by(Statement.created_dt.desc(), Statement.id)
    if actor.role is Role.LICENSEE:
        statement = statement.where(Statement.licensee_organisation_id == actor.organisation_id)
    elif actor.role is Role.TTO:
        owned = (
            select(Licence.id)
            .join(PatentOwner, PatentOwner.patent_id == Licence.patent_id)
            .where(
                PatentOwner.organisation_id == actor.organisation_id,
                PatentOwner.superseded_dt.is_(None),
            )
        )
        statement = statement.where(Statement.licence_id.in_(owned))
    elif actor.role is Role.AUDITOR and not actor.audits_all:
        statement = statement.where(Statement.licence_id.in_(audited_licence_ids(actor)))
    if query.get("licence_id"):
        statement = statement.where(Statement.licence_id == query["licence_id"])
    if query.get("kind"):
        statement = statement.where(Statement.kind == query["kind"])
    if query.get("status"):
        statement = statement.where(_shown_as(query["status"], today or clock.today()))
    return statement


def _shown_as(view: str, today: date) -> ColumnElement[bool]:
    """The SQL condition for statements :func:`statement_view` shows as ``view``."""
    live = and_(Statement.status == StatementStatus.OPEN, Statement.due_date >= today)
    return {
        "void": Statement.status == StatementStatus.VOID,
        "paid": Statement.status == StatementStatus.PAID,
        "overdue": and_(Statement.status == StatementStatus.OPEN, Statement.due_date < today),
        "partially_paid": and_(live, Statement.amount_paid > 0),
        "open": and_(live, Statement.amount_paid == 0),
    }[view]


def get_statement(session: Session, *, actor: Actor, statement_id: uuid.UUID) -> Statement:
    """The statement if the actor may see its licence; 404 otherwise."""
    statement = session.get(Statement, statement_id)
    if statement is None:
        raise NotFound("statement")
    get_licence(session, actor=actor, licence_id=statement.licence_id)  # 404 outside scope
    return statement
