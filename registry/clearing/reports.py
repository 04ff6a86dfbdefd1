"""Royalty reports: the licensee's figures for one period, the royalty they cost, its statement.

A report is for one period of the licence's schedule that has ended (registry.clearing.schedule),
gives the base the terms name (net sales or profit in fen, or units), and is priced by
registry.clearing.royalties (stepped rate of its licence year, SME discount, the year's cap).
A terminated licence's periods end the day it stopped (statements.schedule_for). A report's
statement is due on the period's payment date, ``payment_due_days`` after the period ends,
as the contract says (registry.contracts.wording; CC Art. 509): a report filed late does not
move the day the royalty was owed, so its statement may be overdue at once and bear late
interest from that day (registry.clearing.payments). A correction's statement is due on that
day too, or ``payment_due_days`` after the correction when that is later: the corrected amount
was not known before.

A period is reported once; a correction is a new version with a reason, which voids the earlier
version's statement (what was paid on it becomes the licensee's credit and is applied to the new
statement: registry.clearing.statements.void_statement) and issues a new statement. Refusals
change nothing:

* a period that is not one of the schedule's, or has not ended: 422 ``period_start`` /
  ``period_end``; a negative, sub-fen or missing figure, or the wrong base: 422;
* a free or lump-sum licence: 409 ``not_reportable``;
* a second report of a period without ``correction_reason``: 409 ``already_reported``;
* a correction of a period whose payments were already settled to the payees: 409
  ``already_settled`` — the money has reached co-owners and inventors as that period's
  royalty; the clearing house reverses that settlement run first (registry.clearing.settlement),
  then the correction goes through and the run is done again;
* another enterprise's licence: 404; TTOs, auditors and admins: 403 (only the licensee reports).

Locks: the statement being voided is locked before anything else is written (then the audit log
head, then the licence), the order payments take, so a payment racing a correction either lands
first (and is carried over as credit) or is refused as made on a void statement. Two reports of
one period at once: the unique (licence, period, version) index lets one in; the other is
answered 409 ``already_reported``.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any, Final

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation
from registry.audit.services import record
from registry.clearing.credits import lock_statement
from registry.clearing.models import (
    Payment,
    ReportBase,
    RoyaltyReport,
    SettledPayment,
    Statement,
    StatementKind,
    StatementStatus,
)
from registry.clearing.overdue import refresh_licence_status
from registry.clearing.royalties import (
    RUNNING_KINDS,
    ClearingInputError,
    NotReportable,
    royalty_for_report,
    royalty_of,
)
from registry.clearing.schedule import Period
from registry.clearing.schedule import build_schedule as build_schedule  # for older callers
from registry.clearing.statements import issue_statement, schedule_for, void_statement
from registry.core import clock
from registry.core.actor import Actor, Role
from registry.core.errors import FieldError, Forbidden, RuleViolation
from registry.core.money import format_money, from_fen
from registry.licences.services import get_licence
from registry.offers.models import RoyaltyKind
from registry.offers.royalty import DEFAULT_PAYMENT_DUE_DAYS

BASE_FIELDS: Final = ("net_sales", "profit", "units")


class AlreadyReported(RuleViolation):
    code = "already_reported"


class AlreadySettled(RuleViolation):
    code = "already_settled"


def _money(fen: int) -> str:
    return format_money(from_fen(fen))


def _period(periods: tuple[Period, ...], start: date, end: date, today: date) -> Period:
    found = next(
        (p for p in periods if p.period_start == start and p.period_end == end and not p.free),
        None,
    )
    if found is None:
        choices = ", ".join(f"{p.period_start}–{p.period_end}" for p in periods if not p.free)
        raise ClearingInputError(
            "period_start", f"not a reporting period of this licence (periods: {choices})"
        )
    if found.period_end >= today:
        raise ClearingInputError(
            "period_end", f"the period ends on {found.period_end}: report it after it has ended"
        )
    return found


def _base_amount(royalty: dict[str, Any], data: dict[str, Any]) -> tuple[ReportBase, int]:
    base = ReportBase(royalty.get("base", "net_sales"))
    given = [name for name in BASE_FIELDS if data.get(name) is not None]
    if given != [base.value]:
        raise ClearingInputError(
            base.value, f"this licence's royalty is on {base.value}: report that figure alone"
        )
    return base, int(data[base.value])


def _current(session: Session, licence_id: uuid.UUID, start: date) -> RoyaltyReport | None:
    return session.scalar(
        select(RoyaltyReport)
        .where(RoyaltyReport.licence_id == licence_id, RoyaltyReport.period_start == start)
        .order_by(RoyaltyReport.version.desc())
        .limit(1)
    )


def charged_in_year(
    session: Session, licence_id: uuid.UUID, year: int, *, except_period: date | None = None
) -> int:
    """Royalties due in licence year ``year`` (fen), from the latest version of each period's
    report (a corrected version replaces the one before), leaving out ``except_period``."""
    latest = (
        select(RoyaltyReport.period_start, func.max(RoyaltyReport.version).label("version"))
        .where(RoyaltyReport.licence_id == licence_id, RoyaltyReport.licence_year == year)
        .group_by(RoyaltyReport.period_start)
        .subquery()
    )
    query = (
        select(func.coalesce(func.sum(RoyaltyReport.royalty_due), 0))
        .join(
            latest,
            (latest.c.period_start == RoyaltyReport.period_start)
            & (latest.c.version == RoyaltyReport.version),
        )
        .where(RoyaltyReport.licence_id == licence_id)
    )
    if except_period is not None:
        query = query.where(RoyaltyReport.period_start != except_period)
    return int(session.scalar(query) or 0)


def file_report(
    session: Session, *, actor: Actor, licence_id: uuid.UUID, data: dict[str, Any]
) -> tuple[RoyaltyReport, Statement | None]:
    """File (or correct) the report of one period; its statement when it owes anything."""
    licence = get_licence(session, actor=actor, licence_id=licence_id)
    if actor.role is not Role.LICENSEE:
        raise Forbidden("only the licensee reports its royalties")
    royalty = royalty_of(licence.terms)
    if RoyaltyKind(royalty["kind"]) not in RUNNING_KINDS:
        raise NotReportable(f"a {royalty['kind']} licence owes no running royalty to report")
    licensee = session.get_one(Organisation, licence.licensee_organisation_id)
    today = clock.today()
    schedule = schedule_for(session, licence)
    period = _period(schedule.periods, data["period_start"], data["period_end"], today)
    base, amount = _base_amount(royalty, data)
    previous = _current(session, licence.id, period.period_start)
    reason = data.get("correction_reason")
    if previous is not None and not reason:
        raise AlreadyReported(
            f"{period.period_start}–{period.period_end} is reported already; to correct it "
            "send correction_reason",
            [FieldError.of("correction_reason", "required to correct a reported period")],
        )
    if previous is None and reason:
        raise ClearingInputError("correction_reason", "nothing reported yet to correct")
    old = _statement_to_void(session, previous)
    computed = royalty_for_report(
        licence.terms,
        period_start=period.period_start,
        period_end=period.period_end,
        base_amount=amount,
        licence_year=period.licence_year,
        is_sme=licensee.is_sme,
        charged_in_year=charged_in_year(
            session, licence.id, period.licence_year, except_period=period.period_start
        ),
    )
    breakdown = {
        "gross": _money(computed.gross),
        "discount": _money(computed.discount),
        "cap_reduction": _money(computed.cap_reduction),
        "due": _money(computed.due),
        "rate": str(computed.rate) if computed.rate is not None else None,
        "unit_amount": _money(computed.unit_amount) if computed.unit_amount else None,
        "licence_year": period.licence_year,
    }
    report = RoyaltyReport(
        id=uuid.uuid4(),
        licence_id=licence.id,
        period_start=period.period_start,
        period_end=period.period_end,
        version=previous.version + 1 if previous else 1,
        supersedes_id=previous.id if previous else None,
        correction_reason=reason,
        base=base,
        base_amount=amount,
        licence_year=period.licence_year,
        royalty_due=computed.due,
        breakdown=breakdown,
        reported_by_user_id=actor.user_id,
        created_dt=clock.now(),
    )
    try:
        with session.begin_nested():
            session.add(report)
    except IntegrityError:
        # Another report of this period (same version) was committed meanwhile.
        raise AlreadyReported(
            f"{period.period_start}–{period.period_end} was reported meanwhile",
            [FieldError.of("period_start", "reported meanwhile: fetch the reports and retry")],
        ) from None
    record(
        session,
        actor=actor,
        action="report.filed",
        subject_type="licence",
        subject_id=licence.id,
        payload={
            "report_id": report.id,
            "period_start": report.period_start,
            "period_end": report.period_end,
            "version": report.version,
            "base": base.value,
            "base_amount": amount,
            "royalty_due": _money(computed.due),
            "correction_reason": reason,
        },
    )
    if old is not None:
        void_statement(
            session, old, reason=f"corrected by report v{report.version}: {reason}", actor=actor
        )
    statement = None
    if computed.due > 0:
        assert period.payment_due_date is not None  # a reporting period always has one
        due_date = period.payment_due_date
        if previous is not None:
            days = royalty.get("payment_due_days") or DEFAULT_PAYMENT_DUE_DAYS
            due_date = max(due_date, today + timedelta(days=int(days)))
        statement = issue_statement(
            session,
            licence=licence,
            kind=StatementKind.ROYALTY,
            amount=computed.due,
            due_date=due_date,
            period_start=period.period_start,
            period_end=period.period_end,
            report=report,
            breakdown=breakdown,
            actor=actor,
        )
    if old is not None:
        # The void statement may have been what kept the licence suspended.
        refresh_licence_status(session, licence_id=licence.id, actor=actor, today=today)
    return report, statement


def _statement_to_void(session: Session, previous: RoyaltyReport | None) -> Statement | None:
    """The live statement of the report being corrected, locked; 409 when money paid on it
    has been settled to payees (module docstring)."""
    if previous is None:
        return None
    found = session.scalar(
        select(Statement.id).where(
            Statement.report_id == previous.id, Statement.status != StatementStatus.VOID
        )
    )
    if found is None:
        return None  # the report owed nothing
    statement = lock_statement(session, found)
    assert statement is not None
    settled = session.scalar(
        select(
            exists().where(
                Payment.statement_id == statement.id,
                SettledPayment.payment_id == Payment.id,
                SettledPayment.reversed_dt.is_(None),
            )
        )
    )
    if settled:
        raise AlreadySettled(
            f"payments on {statement.number} were settled to the payees; the clearing house "
            "reverses that settlement before the period can be corrected"
        )
    return statement


def reports_of(session: Session, *, actor: Actor, licence_id: uuid.UUID) -> list[RoyaltyReport]:
    licence = get_licence(session, actor=actor, licence_id=licence_id)
    return list(
        session.scalars(
            select(RoyaltyReport)
            .where(RoyaltyReport.licence_id == licence.id)
            .order_by(RoyaltyReport.period_start, RoyaltyReport.version)
        )
    )
