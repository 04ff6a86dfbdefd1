"""Payee statements: what one organisation, inventor or income beneficiary received in each
settlement run, line by line back to the licence, statement and payment (issue 5 §6).

A statement is the payee's lines of one run, each naming the payment it came from (its date,
reference and the amount settled), the statement that payment paid and that statement's
licence, with the payout of the run (paid now, carried forward). Admins and auditors see every
payee; TTO staff their own organisation and the inventors rewarded from its pool (an inventor's
lines are never shown to anybody else); licensees none (403); anything else answers 404.
Downloads: CSV (UTF-8, one row per line) and a bilingual PDF (contract_templates/
payee_statement/1.0, rendered like the contracts: sandboxed, deterministic).
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from registry.accounts.models import Organisation
from registry.clearing.models import PayeeType, Payment, SettlementLine, SettlementRun, Statement
from registry.clearing.settlement_views import (
    ROLE_ORDER,
    require_settlement_reader,
    run_event,
    visible_lines,
)
from registry.core.actor import Actor, Role
from registry.core.errors import NotFound
from registry.core.money import format_money, from_fen
from registry.licences.models import Licence

PAYEE_TYPES = frozenset({PayeeType.ORGANISATION, PayeeType.INVENTOR, PayeeType.BENEFICIARY})
ROLE_LABELS = {
    "fee": ("平台服务费", "Platform fee"),
    "owner_income": ("专利权人收益", "Co-owner's income"),
    "beneficiary_income": ("收益权人收益", "Income beneficiary's share"),
    "deduction": ("扣除费用", "Deduction"),
    "inventor_reward": ("发明人奖酬", "Inventor's reward"),
    "institution": ("单位留存", "Institution's part"),
}
PAYEE_LABELS = {
    "organisation": ("单位", "Organisation"),
    "inventor": ("发明人", "Inventor"),
    "beneficiary": ("收益权人", "Income beneficiary"),
}
CSV_COLUMNS = (
    "run_number",
    "period_start",
    "period_end",
    "payee_type",
    "payee_id",
    "payee_name",
    "role",
    "owner_organisation_id",
    "owner_organisation_name",
    "licence_reference",
    "statement_number",
    "payment_id",
    "payment_date",
    "payment_reference",
    "payment_settled",
    "amount",
)


def payee_condition(
    session: Session, *, actor: Actor, payee_type: str, payee_id: uuid.UUID
) -> ColumnElement[bool]:
    """The condition on SettlementLine for this payee's lines that ``actor`` may see.

    403 for a licensee; 404 for an unknown payee type, or a payee outside a TTO's view (its
    own organisation is always inside, even before its first settlement)."""
    require_settlement_reader(actor)
    if payee_type not in PAYEE_TYPES:
        raise NotFound("payee")
    condition = and_(
        SettlementLine.payee_type == PayeeType(payee_type),
        SettlementLine.payee_id == payee_id,
        visible_lines(actor),
    )
    own = (
        actor.role is Role.TTO
        and payee_type == PayeeType.ORGANISATION
        and payee_id == actor.organisation_id
    )
    if actor.reads_all or own:
        return condition
    if not session.scalar(select(exists().where(condition))):
        raise NotFound("payee")
    return condition


def payee_runs(
    session: Session, *, actor: Actor, payee_type: str, payee_id: uuid.UUID
) -> list[dict[str, Any]]:
    """Every run with lines for the payee, newest first: its total there and its payout."""
    condition = payee_condition(session, actor=actor, payee_type=payee_type, payee_id=payee_id)
    rows = session.execute(
        select(SettlementRun, func.sum(SettlementLine.amount), func.count())
        .join(SettlementLine, SettlementLine.run_id == SettlementRun.id)
        .where(condition)
        .group_by(SettlementRun.id)
        .order_by(SettlementRun.created_dt.desc(), SettlementRun.id)
    ).all()
    return [
        {
            "run_id": run.id,
            "number": run.number,
            "period_start": run.period_start,
            "period_end": run.period_end,
            "status": run.status,
            "reverses_id": run.reverses_id,
            "created_dt": run.created_dt,
            "amount": int(amount),
            "line_count": int(count),
            "payout": _payout(session, run.id, payee_type, payee_id),
        }
        for run, amount, count in rows
    ]


def _payout(
    session: Session, run_id: uuid.UUID, payee_type: str, payee_id: uuid.UUID
) -> dict[str, Any] | None:
    for payout in run_event(session, run_id).get("payouts", []):
        if payout["payee_type"] == payee_type and payout["payee_id"] == str(payee_id):
            found: dict[str, Any] = payout
            return found
    return None


def payee_statement(
    session: Session, *, actor: Actor, run_id: uuid.UUID, payee_type: str, payee_id: uuid.UUID
) -> dict[str, Any]:
    """The payee's lines in run ``run_id`` traced to payment, statement and licence; 404 when
    it has none there that ``actor`` may see."""
    condition = payee_condition(session, actor=actor, payee_type=payee_type, payee_id=payee_id)
    run = session.get(SettlementRun, run_id)
    owner = aliased(Organisation)
    rows = session.execute(
        select(
            SettlementLine,
            Payment.paid_date,
            Payment.reference,
            Payment.applied,
            Statement.number,
            Licence.reference,
            owner.name,
        )
        .join(Payment, Payment.id == SettlementLine.payment_id)
        .join(Statement, Statement.id == Payment.statement_id)
        .join(Licence, Licence.id == Payment.licence_id)
        .outerjoin(owner, owner.id == SettlementLine.owner_organisation_id)
        .where(SettlementLine.run_id == run_id, condition)
    ).all()
    if run is None or not rows:
        raise NotFound("payee statement")
    lines = [_trace(*row) for row in rows]
    lines.sort(key=lambda x: (x["payment_date"], str(x["payment_id"]), ROLE_ORDER[x["role"]]))
    return {
        "run_id": run.id,
        "run_number": run.number,
        "period_start": run.period_start,
        "period_end": run.period_end,
        "status": run.status,
        "reverses_id": run.reverses_id,
        "created_dt": run.created_dt,
        "payee_type": payee_type,
        "payee_id": payee_id,
        "payee_name": rows[0][0].payee_name,
        "total": sum(line["amount"] for line in lines),
        "lines": lines,
        "payout": _payout(session, run.id, payee_type, payee_id),
    }


def _trace(
    line: SettlementLine,
    paid_date: date,
    payment_reference: str | None,
    applied: int,
    statement_number: str,
    licence_reference: str,
    owner_name: str | None,
) -> dict[str, Any]:
    return {
        "role": line.role,
        "owner_organisation_id": line.owner_organisation_id,
        "owner_organisation_name": owner_name,
        "licence_reference": licence_reference,
        "statement_number": statement_number,
        "payment_id": line.payment_id,
        "payment_date": paid_date,
        "payment_reference": payment_reference,
        "payment_settled": applied,
        "amount": line.amount,
    }


def _money(fen: int) -> str:
    return format_money(from_fen(fen))


def statement_csv(statement: dict[str, Any]) -> str:
    """The statement as CSV: a header, then one row per line (amounts as decimal strings)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in statement["lines"]:
        writer.writerow(
            [
                statement["run_number"],
                statement["period_start"].isoformat(),
                statement["period_end"].isoformat(),
                statement["payee_type"],
                statement["payee_id"],
                statement["payee_name"],
                line["role"],
                line["owner_organisation_id"] or "",
                line["owner_organisation_name"] or "",
                line["licence_reference"],
                line["statement_number"],
                line["payment_id"],
                line["payment_date"].isoformat(),
                line["payment_reference"] or "",
                _money(line["payment_settled"]),
                _money(line["amount"]),
            ]
        )
    return out.getvalue()


def _dates(day: date) -> dict[str, str]:
    return {"zh": f"{day.year}年{day.month}月{day.day}日", "en": day.isoformat()}


def statement_pdf(statement: dict[str, Any]) -> bytes:
    """The statement as a bilingual PDF/A (Chinese governs), the same bytes on every render."""
    from registry.core.pdf import TemplateInfo, render_pdf

    payout = statement["payout"]
    type_zh, type_en = PAYEE_LABELS[statement["payee_type"]]
    context = {
        "payee": {
            "name": statement["payee_name"],
            "id": str(statement["payee_id"]),
            "type_zh": type_zh,
            "type_en": type_en,
        },
        "run": {
            "number": statement["run_number"],
            "period_start": _dates(statement["period_start"]),
            "period_end": _dates(statement["period_end"]),
            "created": _dates(statement["created_dt"].date()),
            "is_reversal": statement["reverses_id"] is not None,
        },
        "lines": [
            {
                "role_zh": ROLE_LABELS[line["role"]][0],
                "role_en": ROLE_LABELS[line["role"]][1],
                "owner": line["owner_organisation_name"] or "",
                "licence": line["licence_reference"],
                "statement": line["statement_number"],
                "payment_date": line["payment_date"].isoformat(),
                "payment_reference": line["payment_reference"] or "",
                "settled": _money(line["payment_settled"]),
                "amount": _money(line["amount"]),
            }
            for line in statement["lines"]
        ],
        "total": _money(statement["total"]),
        "payout": None
        if payout is None
        else {name: _money(payout[name]) for name in ("carried_in", "new", "paid", "carried_out")},
    }
    info = TemplateInfo.load("payee_statement", "1.0")
    return render_pdf(info, context, document_dt=statement["created_dt"])
