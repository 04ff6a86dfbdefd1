"""Royalty reports: the licensee's figures for one period, the royalty they cost, its statement.

A report is for one period of the licence's schedule that has ended (registry.clearing.schedule),
gives the base the terms name (net sales or profit in fen, or units), and is priced by
registry.clearing.royalties (stepped rate of its licence year, SME discount, the year's cap).
A period is reported once; a correction is a new version with a reason, which voids the earlier
version's statement (its paid part becomes credit, applied to the new one) and issues a new
statement. Refusals change nothing: a period that is not one of the schedule's or has not ended
(422 ``period_start``), a free or lump-sum licence (409 ``not_reportable``), a second report of
a period without ``correction_reason`` (409 ``already_reported``), a negative base (422).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation
from registry.audit.services import record
from registry.clearing.models import ReportBase, RoyaltyReport, Statement, StatementKind
from registry.clearing.royalties import (
    RUNNING_KINDS,
    ClearingInputError,
    NotReportable,
    royalty_for_report,
    royalty_of,
)
from registry.clearing.schedule import Period, build_schedule
from registry.clearing.statements import issue_statement, void_statement
from registry.core import clock
from registry.core.actor import Actor, Role
from registry.core.errors import FieldError, Forbidden, RuleViolation
from registry.core.money import format_money, from_fen
from registry.licences.models import Licence, LicenceStatus
from registry.licences.services import get_licence
from registry.offers.models import RoyaltyKind

BASE_FIELDS: Final = ("net_sales", "profit", "units")
REPORTABLE_STATUSES: Final = (
    LicenceStatus.ACTIVE,
    LicenceStatus.SUSPENDED,
    LicenceStatus.PENDING_PAYMENT,
    LicenceStatus.EXPIRED,
    LicenceStatus.TERMINATED,
)


class AlreadyReported(RuleViolation):
    code = "already_reported"


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


def _charged_in_year(session: Session, licence_id: uuid.UUID, year: int, start: date) -> int:
    """Royalties due in the licence year from the latest version of each other period."""
    latest = (
        select(RoyaltyReport.period_start, func.max(RoyaltyReport.version).label("version"))
        .where(RoyaltyReport.licence_id == licence_id, RoyaltyReport.licence_year == year)
        .group_by(RoyaltyReport.period_start)
        .subquery()
    )
    total = session.scalar(
        select(func.coalesce(func.sum(RoyaltyReport.royalty_due), 0))
        .join(
            latest,
            (latest.c.period_start == RoyaltyReport.period_start)
            & (latest.c.version == RoyaltyReport.version),
        )
        .where(RoyaltyReport.licence_id == licence_id, RoyaltyReport.period_start != start)
    )
    return int(total or 0)


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
    if licence.status not in REPORTABLE_STATUSES:
        raise RuleViolation(f"a {licence.status.value} licence takes no reports")
    licensee = session.get_one(Organisation, licence.licensee_organisation_id)
    today = clock.today()
    schedule = build_schedule(
        licence.terms,
        effective_date=licence.effective_date,
        end_date=licence.end_date,
        is_sme=licensee.is_sme,
    )
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
    computed = royalty_for_report(
        licence.terms,
        period_start=period.period_start,
        period_end=period.period_end,
        base_amount=amount,
        licence_year=period.licence_year,
        is_sme=licensee.is_sme,
        charged_in_year=_charged_in_year(
            session, licence.id, period.licence_year, period.period_start
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
    session.add(report)
    session.flush()
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
        },
    )
    if previous is not None:
        old = session.scalar(select(Statement).where(Statement.report_id == previous.id))
        if old is not None:
            void_statement(
                session, old, reason=f"corrected by report v{report.version}: {reason}", actor=actor
            )
    statement = None
    if computed.due > 0:
        assert period.payment_due_date is not None  # a reporting period always has one
        due_days = timedelta(days=int(royalty.get("payment_due_days") or 30))
        statement = issue_statement(
            session,
            licence=licence,
            kind=StatementKind.ROYALTY,
            amount=computed.due,
            due_date=max(period.payment_due_date, today + due_days)
            if previous is not None
            else period.payment_due_date,
            period_start=period.period_start,
            period_end=period.period_end,
            report=report,
            breakdown=breakdown,
            actor=actor,
        )
    return report, statement


def reports_of(session: Session, *, actor: Actor, licence_id: uuid.UUID) -> list[RoyaltyReport]:
    licence = get_licence(session, actor=actor, licence_id=licence_id)
    return list(
        session.scalars(
            select(RoyaltyReport)
            .where(RoyaltyReport.licence_id == licence.id)
            .order_by(RoyaltyReport.period_start, RoyaltyReport.version)
        )
    )


def issue_true_ups(session: Session, *, on: date) -> list[Statement]:
    """Issue each ended licence year's minimum true-up (royalties.annual_minimum_true_up)
    once: a licence year already trued up, or one whose royalties reached the minimum, gets
    nothing. For ``clearing true-ups``, run daily by a scheduler."""
    issued: list[Statement] = []
    licences = session.scalars(select(Licence).order_by(Licence.created_dt, Licence.id))
    for licence in licences:
        royalty = royalty_of(licence.terms)
        if not royalty.get("annual_minimum") or RoyaltyKind(royalty["kind"]) not in RUNNING_KINDS:
            continue
        licensee = session.get_one(Organisation, licence.licensee_organisation_id)
        schedule = build_schedule(
            licence.terms,
            effective_date=licence.effective_date,
            end_date=licence.end_date,
            is_sme=licensee.is_sme,
        )
        for item in schedule.items:
            if item.kind.value != "minimum_true_up" or item.period_end is None:
                continue
            if item.period_end >= on or item.licence_year is None:
                continue
            exists = session.scalar(
                select(Statement.id).where(
                    Statement.licence_id == licence.id,
                    Statement.kind == StatementKind.MINIMUM_TRUE_UP,
                    Statement.period_start == item.period_start,
                    Statement.status != "void",
                )
            )
            if exists is not None:
                continue
            charged = _charged_in_year(session, licence.id, item.licence_year, date.min)
            owed = max(0, (item.minimum or 0) - charged)
            if owed == 0:
                continue
            issued.append(
                issue_statement(
                    session,
                    licence=licence,
                    kind=StatementKind.MINIMUM_TRUE_UP,
                    amount=owed,
                    due_date=max(item.due_date, on),
                    period_start=item.period_start,
                    period_end=item.period_end,
                    breakdown={
                        "minimum": _money(item.minimum or 0),
                        "charged_in_year": _money(charged),
                        "due": _money(owed),
                        "licence_year": item.licence_year,
                    },
                    actor=None,
                )
            )
    return issued
