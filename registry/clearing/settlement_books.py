"""How a settlement run is booked and paid out (registry.clearing.ledger flows "settlement of
a payment" and "payout"; registry.clearing.payouts for the minimum payout).

One transaction of each kind per run, summed per account (``settlement_lines`` keep the
per-payment detail): Dr royalties:received what is settled, Cr each payee's payable account and
income:fees; then Dr payable / Cr cash for what is paid now. A payee's balance under the
minimum payout, or a debt left by a reversal, stays in its payable account: that balance is
what the next run carries in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date
from typing import Any, Final, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.clearing import ledger
from registry.clearing.models import JournalEntry, LedgerAccount, PayeeType, SettlementRun
from registry.clearing.payouts import PayeeKey, Payout, plan_payouts
from registry.clearing.splitting import PayeeLine

SETTLEMENT_KIND: Final = "settlement"
PAYOUT_KIND: Final = "payout"


def by_payee(rows: Iterable[dict[str, Any]]) -> dict[PayeeKey, tuple[str, int]]:
    """Each payee's name and the sum of its lines (the platform's fee excluded)."""
    totals: dict[PayeeKey, tuple[str, int]] = {}
    for row in rows:
        if row["payee_type"] == PayeeType.PLATFORM:
            continue
        key = PayeeKey(str(row["payee_type"]), str(row["payee_id"]))
        _, amount = totals.get(key, ("", 0))
        totals[key] = (row["payee_name"], amount + row["amount"])
    return totals


def post_settlement(
    session: Session, run: SettlementRun, rows: list[dict[str, Any]], received: int, today: date
) -> None:
    fees = sum(row["amount"] for row in rows if row["payee_type"] == PayeeType.PLATFORM)
    entries: list[tuple[ledger.AccountRef, int]] = [
        (ledger.fixed(ledger.RECEIVED), received),
        (ledger.fixed(ledger.FEES), -fees),
    ]
    for key, (name, amount) in sorted(by_payee(rows).items()):
        entries.append((ledger.payable(key.payee_type, uuid.UUID(key.payee_id), name), -amount))
    ledger.post(
        session,
        kind=SETTLEMENT_KIND,
        subject_type="settlement_run",
        subject_id=run.id,
        description=f"Settlement {run.number} / 结算",
        effective_date=today,
        entries=entries,
    )


def payable_balances(session: Session) -> dict[PayeeKey, int]:
    """What the clearing house holds for each payee (the payable accounts' credit balances)."""
    total = func.sum(JournalEntry.amount)
    rows = session.execute(
        select(LedgerAccount.owner_type, LedgerAccount.owner_id, total)
        .join(JournalEntry, JournalEntry.account_id == LedgerAccount.id)
        .where(LedgerAccount.code.like("payable:%"))
        .group_by(LedgerAccount.id, LedgerAccount.owner_type, LedgerAccount.owner_id)
        .having(total != 0)
    ).all()
    return {PayeeKey(str(kind), str(owner)): -int(amount) for kind, owner, amount in rows}


def pay_out(
    session: Session,
    run: SettlementRun,
    rows: list[dict[str, Any]],
    carried: dict[PayeeKey, int],
    minimum_payout: int,
    today: date,
) -> list[tuple[Payout, str]]:
    """Plan the payouts and book what is paid now (Dr payable, Cr cash); with payee names."""
    totals = by_payee(rows)
    lines = [
        PayeeLine(cast(Any, key.payee_type), key.payee_id, name, amount, "owner_income")
        for key, (name, amount) in totals.items()
    ]
    payouts = plan_payouts(lines, carried, minimum_fen=minimum_payout)
    names = {key: name for key, (name, _) in totals.items()}
    missing = [p.key for p in payouts if p.key not in names]
    names |= payee_names(session, missing)
    paid = [(p, names.get(p.key, p.payee_id)) for p in payouts]
    total = sum(p.paid_fen for p, _ in paid)
    if total > 0:
        entries: list[tuple[ledger.AccountRef, int]] = [
            (ledger.payable(p.payee_type, uuid.UUID(p.payee_id), name), p.paid_fen)
            for p, name in paid
            if p.paid_fen > 0
        ]
        entries.append((ledger.fixed(ledger.CASH), -total))
        ledger.post(
            session,
            kind=PAYOUT_KIND,
            subject_type="settlement_run",
            subject_id=run.id,
            description=f"Payouts of settlement {run.number} / 结算付款",
            effective_date=today,
            entries=entries,
        )
    return paid


def payee_names(session: Session, keys: Iterable[PayeeKey]) -> dict[PayeeKey, str]:
    """Names of payees known only by their payable accounts (a balance carried from before)."""
    from registry.accounts.models import Organisation
    from registry.patents.models import IncomeBeneficiary, Inventor

    models: dict[str, Any] = {
        "organisation": Organisation,
        "inventor": Inventor,
        "beneficiary": IncomeBeneficiary,
    }
    names: dict[PayeeKey, str] = {}
    for key in keys:
        model = models.get(key.payee_type)
        row = session.get(model, uuid.UUID(key.payee_id)) if model is not None else None
        if row is not None:
            names[key] = row.name
    return names
