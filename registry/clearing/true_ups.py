"""Annual-minimum true-ups: after each licence year, the statement that tops the year's
running royalties up to the terms' minimum (registry.clearing.schedule "Annual minimum"; the
contract's minimum clause). Issued by ``flask --app wsgi clearing true-ups`` (daily).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.clearing.models import RoyaltyReport, Statement, StatementKind, StatementStatus
from registry.clearing.reports import charged_in_year
from registry.clearing.royalties import RUNNING_KINDS, royalty_of
from registry.clearing.schedule import DueItem, ItemKind
from registry.clearing.statements import issue_statement, schedule_for
from registry.core.money import format_money, from_fen
from registry.licences.models import Licence
from registry.offers.models import RoyaltyKind


def _money(fen: int) -> str:
    return format_money(from_fen(fen))


def issue_true_ups(session: Session, *, on: date) -> list[Statement]:
    """Issue the minimum true-up of each licence year that has ended before ``on``: the
    schedule's pro-rated minimum (registry.clearing.schedule, as
    royalties.annual_minimum_true_up computes it) less the royalties reported for the year.

    A year is trued up once every period of it is reported, or once the day its last report
    and payment were due has passed (then on what was reported: a licensee late with its
    reports is billed the minimum). Due on the schedule's day, or on ``on`` when issued after
    it. Once only: a year with a live true-up statement, or whose royalties reached the minimum,
    gets nothing, so running it again issues nothing. For ``clearing true-ups``, run daily by
    one scheduler job (two runs at the same moment are not serialised)."""
    issued: list[Statement] = []
    licences = session.scalars(select(Licence).order_by(Licence.created_dt, Licence.id))
    for licence in licences:
        royalty = royalty_of(licence.terms)
        if not royalty.get("annual_minimum") or RoyaltyKind(royalty["kind"]) not in RUNNING_KINDS:
            continue
        schedule = schedule_for(session, licence)
        reported = set(
            session.scalars(
                select(RoyaltyReport.period_start).where(RoyaltyReport.licence_id == licence.id)
            )
        )
        for item in schedule.items:
            if item.kind is not ItemKind.MINIMUM_TRUE_UP or item.licence_year is None:
                continue
            if item.period_end is None or item.period_end >= on:
                continue  # the year has not ended
            year = [p for p in schedule.periods if p.licence_year == item.licence_year]
            all_in = all(p.free or p.period_start in reported for p in year)
            if not all_in and item.due_date >= on:
                continue  # reports may still come in time
            statement = _true_up(session, licence, item, on)
            if statement is not None:
                issued.append(statement)
    return issued


def _true_up(session: Session, licence: Licence, item: DueItem, on: date) -> Statement | None:
    assert item.licence_year is not None
    billed = session.scalar(
        select(Statement.id).where(
            Statement.licence_id == licence.id,
            Statement.kind == StatementKind.MINIMUM_TRUE_UP,
            Statement.period_start == item.period_start,
            Statement.status != StatementStatus.VOID,
        )
    )
    if billed is not None:
        return None
    charged = charged_in_year(session, licence.id, item.licence_year)
    owed = max(0, (item.minimum or 0) - charged)
    if owed == 0:
        return None
    return issue_statement(
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
