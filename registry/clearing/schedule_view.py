"""A licence's schedule as its parties see it: each due item and period with its status.

The schedule itself is recomputed from the licence's terms (registry.clearing.schedule); the
status comes from what happened since: statements issued and paid, reports filed.

* an item with a statement shows the statement's status (open, partially_paid, paid, overdue:
  registry.clearing.statements.statement_view) and its ``statement_id``;
* otherwise: ``upcoming`` (its period has not ended, or a fixed amount not yet owed),
  ``reported`` (a report that owes nothing: no statement), ``met`` (a licence year whose
  royalties reached the annual minimum: no true-up), ``due`` (owed, not yet billed) or
  ``overdue`` (its payment date has passed and it was never reported or billed);
* a period: ``free`` (use first, pay later), ``upcoming``, ``due`` (ended, report not yet
  late), ``late`` (its report is overdue) or ``reported``.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.clearing.models import RoyaltyReport, Statement, StatementKind, StatementStatus
from registry.clearing.reports import charged_in_year
from registry.clearing.schedule import DueItem, ItemKind, Period
from registry.clearing.statements import schedule_for, statement_view
from registry.core import clock
from registry.core.actor import Actor
from registry.licences.services import get_licence

KIND_OF_ITEM = {
    ItemKind.ENTRY_FEE: StatementKind.ENTRY_FEE,
    ItemKind.LUMP_SUM: StatementKind.LUMP_SUM,
    ItemKind.INSTALMENT: StatementKind.INSTALMENT,
    ItemKind.RUNNING_ROYALTY: StatementKind.ROYALTY,
    ItemKind.MINIMUM_TRUE_UP: StatementKind.MINIMUM_TRUE_UP,
}


def licence_schedule(session: Session, *, actor: Actor, licence_id: uuid.UUID) -> dict[str, Any]:
    """The schedule of a licence the actor may see (404 otherwise), each entry with its status."""
    licence = get_licence(session, actor=actor, licence_id=licence_id)
    schedule = schedule_for(session, licence)
    statements = [
        s
        for s in session.scalars(select(Statement).where(Statement.licence_id == licence.id))
        if s.status is not StatementStatus.VOID
    ]
    reported = {
        r.period_start
        for r in session.scalars(
            select(RoyaltyReport).where(RoyaltyReport.licence_id == licence.id)
        )
    }
    today = clock.today()
    met = {
        item.licence_year
        for item in schedule.items
        if item.kind is ItemKind.MINIMUM_TRUE_UP
        and item.licence_year is not None
        and charged_in_year(session, licence.id, item.licence_year) >= (item.minimum or 0)
    }
    return {
        "items": [_item(item, statements, reported, met, today) for item in schedule.items],
        "periods": [_period(period, reported, today) for period in schedule.periods],
        "free_until": schedule.free_until,
    }


def _match(item: DueItem, statements: list[Statement]) -> Statement | None:
    kind = KIND_OF_ITEM[item.kind]
    for statement in statements:
        if statement.kind is not kind:
            continue
        if kind is StatementKind.INSTALMENT and statement.instalment_number != item.number:
            continue
        if item.period_start is not None and statement.period_start not in (
            None,
            item.period_start,
        ):
            continue
        return statement
    return None


def _item(
    item: DueItem, statements: list[Statement], reported: set[date], met: set[int], today: date
) -> dict[str, Any]:
    statement = _match(item, statements)
    amount = statement.amount_due if statement is not None else item.amount
    if item.period_end is not None:
        not_yet = item.period_end >= today  # the period (or licence year) has not ended
    else:
        not_yet = (item.falls_due_date or item.due_date) > today
    if statement is not None:
        status = statement_view(statement, today)
    elif item.kind is ItemKind.RUNNING_ROYALTY and item.period_start in reported:
        status = "reported"  # a report that owes nothing issues no statement
    elif not_yet:
        status = "upcoming"
    elif item.kind is ItemKind.MINIMUM_TRUE_UP and item.licence_year in met:
        status = "met"
    else:
        status = "overdue" if item.due_date < today else "due"
    return {
        "kind": item.kind.value,
        "due_date": item.due_date,
        "period_start": item.period_start,
        "period_end": item.period_end,
        "licence_year": item.licence_year,
        "number": item.number,
        "amount": amount,
        "statement_id": statement.id if statement is not None else None,
        "status": status,
    }


def _period(period: Period, reported: set[date], today: date) -> dict[str, Any]:
    if period.free:
        status = "free"
    elif period.period_start in reported:
        status = "reported"
    elif period.period_end >= today:
        status = "upcoming"
    elif period.report_due_date is not None and period.report_due_date < today:
        status = "late"
    else:
        status = "due"
    return {
        "period_start": period.period_start,
        "period_end": period.period_end,
        "licence_year": period.licence_year,
        "report_due_date": period.report_due_date,
        "payment_due_date": period.payment_due_date,
        "status": status,
    }
