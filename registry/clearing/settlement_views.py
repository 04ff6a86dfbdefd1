"""Who sees which settlement runs and lines, and a run as the API shows it (issue 5 §5–6).

Admins (the clearing house) and all-organisation auditors see every run and every line; an
auditor with a narrower scope sees what TTO staff of its organisations would. TTO staff see the runs
that pay their organisation or its inventors, and in them only those lines: the organisation's
own (as co-owner, institution or income beneficiary) and the rewards of the inventors paid from
its pool (``owner_organisation_id``). The run's totals cover other organisations' income, so a
TTO gets them as null. Licensees have no part in settlements (403); a run or payee outside a
TTO's view answers 404, as if it did not exist.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select, true
from sqlalchemy.orm import Session

from registry.audit.models import AuditEvent
from registry.clearing.models import PayeeType, Payment, SettlementLine, SettlementRun
from registry.core.actor import Actor, Role
from registry.core.errors import Forbidden, NotFound

READERS = frozenset({Role.ADMIN, Role.AUDITOR, Role.TTO})
ROLE_ORDER = {
    "fee": 0,
    "owner_income": 1,
    "deduction": 2,
    "inventor_reward": 3,
    "institution": 4,
    "beneficiary_income": 5,
}


def require_settlement_reader(actor: Actor) -> None:
    if actor.role not in READERS:
        raise Forbidden("settlements are seen by admins, auditors and the payees' TTO staff")


def visible_lines(actor: Actor) -> ColumnElement[bool]:
    """The condition on SettlementLine for the lines ``actor`` may see."""
    require_settlement_reader(actor)
    if actor.reads_all:
        return true()
    orgs = [actor.organisation_id] if actor.role is Role.TTO else list(actor.audit_scope or ())
    return or_(
        and_(
            SettlementLine.payee_type == PayeeType.ORGANISATION,
            SettlementLine.payee_id.in_(orgs),
        ),
        and_(
            SettlementLine.payee_type == PayeeType.INVENTOR,
            SettlementLine.owner_organisation_id.in_(orgs),
        ),
    )


def visible_runs(actor: Actor) -> Select[SettlementRun]:
    """Runs ``actor`` may see, newest first."""
    condition = visible_lines(actor)
    statement = select(SettlementRun)
    if not actor.reads_all:
        statement = statement.where(
            exists().where(SettlementLine.run_id == SettlementRun.id, condition)
        )
    return statement.order_by(SettlementRun.created_dt.desc(), SettlementRun.id)


def get_run(session: Session, *, actor: Actor, run_id: uuid.UUID) -> SettlementRun:
    """The run, 404 when unknown or outside ``actor``'s view (403 for a licensee)."""
    run = session.scalar(visible_runs(actor).where(SettlementRun.id == run_id))
    if run is None:
        raise NotFound("settlement run")
    return run


def run_event(session: Session, run_id: uuid.UUID) -> dict[str, Any]:
    """The payload of the event that made the run (its payouts and held payments)."""
    payload = session.scalar(
        select(AuditEvent.payload)
        .where(
            AuditEvent.subject_type == "settlement_run",
            AuditEvent.subject_id == str(run_id),
            AuditEvent.action.in_(["settlement.run", "settlement.reversed"]),
        )
        .order_by(AuditEvent.seq)
        .limit(1)
    )
    data: dict[str, Any] = json.loads(payload) if payload else {}
    return data


def describe_run(session: Session, run: SettlementRun, *, actor: Actor | None) -> dict[str, Any]:
    """The run with the lines and payouts ``actor`` may see (``None``: the operator, all)."""
    everything = actor is None or actor.reads_all
    condition = true() if actor is None else visible_lines(actor)
    lines = session.execute(
        select(SettlementLine, Payment.paid_date)
        .join(Payment, Payment.id == SettlementLine.payment_id)
        .where(SettlementLine.run_id == run.id, condition)
    ).all()
    ordered = sorted(
        lines,
        key=lambda row: (
            row.paid_date,
            str(row.SettlementLine.payment_id),
            ROLE_ORDER.get(row.SettlementLine.role, 9),
            str(row.SettlementLine.owner_organisation_id or ""),
            str(row.SettlementLine.payee_id or ""),
        ),
    )
    event = run_event(session, run.id)
    visible_payees = {
        (str(row.SettlementLine.payee_type), str(row.SettlementLine.payee_id)) for row in lines
    }
    payouts = [
        p
        for p in event.get("payouts", [])
        if everything or (p["payee_type"], p["payee_id"]) in visible_payees
    ]
    reversed_by = session.scalar(
        select(SettlementRun.id).where(SettlementRun.reverses_id == run.id)
    )
    payments = session.scalar(
        select(func.count(func.distinct(SettlementLine.payment_id))).where(
            SettlementLine.run_id == run.id
        )
    )
    return {
        "id": run.id,
        "number": run.number,
        "period_start": run.period_start,
        "period_end": run.period_end,
        "status": run.status,
        "reverses_id": run.reverses_id,
        "reversed_by_id": reversed_by,
        "fee_rate": run.fee_rate,
        "minimum_payout": run.minimum_payout,
        "total_received": run.total_received if everything else None,
        "total_fees": run.total_fees if everything else None,
        "total_distributed": run.total_distributed if everything else None,
        "payment_count": payments if everything else None,
        "created_dt": run.created_dt,
        "lines": [row.SettlementLine for row in ordered],
        "payouts": payouts,
        "held": event.get("held", []) if everything else [],
    }
