"""Settlement runs: every payment received in a period, split to the fen among the platform,
co-owners, income beneficiaries and inventors, booked and paid out (issue 5 §5; DESIGN.md §2).

A run takes every payment whose ``paid_date`` falls in the period and that no live run has
settled, and settles its ``applied`` part only (a ``credit`` part is the licensee's money until
it is applied to a statement, which is a payment of its own). Each payment is split by
registry.clearing.splitting with the records in force on its paid date
(registry.clearing.settlement_inputs); a payment those records cannot split is *held*: left
unsettled and reported with the reason, so one bad record never blocks everybody's money.

Booking (registry.clearing.settlement_books; ledger flows "settlement of a payment" and
"payout"), one transaction each per run, summed per account; the lines of ``settlement_lines``
say which payment each part came from:

* settlement: Dr royalties:received (money settled); Cr payable(payee) per payee; Cr income:fees;
* payout: Dr payable(payee) what is paid now; Cr cash. A balance under the minimum payout stays
  in its payable account and is carried forward (registry.clearing.payouts).

**Idempotent and race-safe.** ``settled_payments`` records which run settled each payment; its
partial unique index admits one live row per payment, so no payment is settled twice even by
two runs at once. Runs are also serialised (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE``
on SQLite) because payouts read every payee's carried balance: two runs paying out the same
balance concurrently would pay it twice. A run that finds nothing to settle is refused (409
``nothing_to_settle``): no empty run is numbered, and running a period again is harmless.

**Reversal** is a new run with the negated lines of the one it corrects, the ledger's reversing
transaction of its settlement (payouts already made are not undone: a payee paid more than it
now has earned carries a debt, offset against its later income), and the settled payments
released so that they can be settled again. A run is reversed once; a reversing run never.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.audit.services import record
from registry.clearing import ledger
from registry.clearing import settlement_books as books
from registry.clearing.models import (
    PayeeType,
    Payment,
    SettledPayment,
    SettlementLine,
    SettlementRun,
    SettlementStatus,
    Statement,
    StatementStatus,
)
from registry.clearing.payouts import Payout
from registry.clearing.settlement_inputs import PatentRecords, Unsplittable
from registry.clearing.splitting import PayeeLine, SplitError, split_payment
from registry.core import clock
from registry.core.actor import Actor, Role
from registry.core.errors import FieldError, Forbidden, NotFound, RuleViolation, validation_failed
from registry.core.sequences import next_number
from registry.licences.models import Licence

#: pg_advisory_xact_lock key that serialises settlement runs (any constant unique to them).
LOCK_KEY: Final = 0x5E771E


class NothingToSettle(RuleViolation):
    code = "nothing_to_settle"


class SettlementConflict(RuleViolation):
    code = "settlement_conflict"


class NotReversible(RuleViolation):
    code = "not_reversible"


@dataclass(frozen=True)
class Held:
    payment_id: uuid.UUID
    reason: str


def require_operator(actor: Actor | None) -> None:
    """Settlement is the clearing house's act: its admins, or its operator at the shell."""
    if actor is not None and actor.role is not Role.ADMIN:
        raise Forbidden("only the clearing house's admins run and reverse settlements")


def lock_settlements(session: Session) -> None:
    """Wait for any other run or reversal to commit (SQLite writers are serialised already)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))


def check_period(period_start: date, period_end: date, today: date) -> None:
    errors = []
    if period_end < period_start:
        errors.append(FieldError.of("period_end", "the period ends before it starts"))
    if period_end > today:
        errors.append(
            FieldError.of(
                "period_end",
                f"the period has not ended: it can be settled from {period_end} (Beijing time)",
            )
        )
    validation_failed(errors, "the period cannot be settled")


def run_settlement(
    session: Session,
    *,
    actor: Actor | None,
    period_start: date,
    period_end: date,
    fee_rate: int,
    minimum_payout: int,
) -> SettlementRun:
    """Settle every unsettled payment paid in ``period_start``..``period_end`` (module doc).

    403 for anyone but an admin; 422 when the period ends before it starts or after today;
    409 ``nothing_to_settle`` when no payment is left to settle (or every one is held, each
    named in the errors); 409 ``settlement_conflict`` if a concurrent run settled one first.
    Records ``settlement.run`` with the totals, payouts and held payments."""
    require_operator(actor)
    today = clock.today()
    check_period(period_start, period_end, today)
    lock_settlements(session)
    payments = _unsettled(session, period_start, period_end)
    records = PatentRecords(session, {row.patent_id for row in payments})
    settled: list[tuple[Any, list[PayeeLine]]] = []
    held: list[Held] = []
    for row in payments:
        try:
            holders = records.holders(row.patent_id, row.paid_date)
            result = split_payment(
                row.applied,
                owners=holders.owners,
                beneficiaries=holders.beneficiaries,
                fee_rate=fee_rate,
            )
        except (Unsplittable, SplitError) as error:
            held.append(Held(row.id, str(error)))
            continue
        settled.append((row, _merged(result.lines)))
    if not settled:
        raise NothingToSettle(
            f"nothing to settle from {period_start} to {period_end}",
            [FieldError.of(f"payments.{h.payment_id}", h.reason) for h in held],
        )
    received = sum(row.applied for row, _ in settled)
    fees = sum(line.amount_fen for _, lines in settled for line in lines if line.role == "fee")
    run = _new_run(
        session,
        actor=actor,
        today=today,
        period=(period_start, period_end),
        fee_rate=fee_rate,
        minimum_payout=minimum_payout,
        totals=(received, fees),
    )
    _claim(session, run, [row.id for row, _ in settled])
    rows = [_line_row(run.id, row.id, line) for row, lines in settled for line in lines]
    session.execute(insert(SettlementLine), rows)
    carried = books.payable_balances(session)
    books.post_settlement(session, run, rows, received, today)
    payouts = books.pay_out(session, run, rows, carried, minimum_payout, today)
    record(
        session,
        actor=actor,
        action="settlement.run",
        subject_type="settlement_run",
        subject_id=run.id,
        payload=_payload(run, payouts, held, payments=len(settled)),
    )
    return run


def reverse_settlement(
    session: Session, *, actor: Actor | None, run_id: uuid.UUID, minimum_payout: int
) -> SettlementRun:
    """Reverse run ``run_id`` by a new run (module docstring) and return the new run.

    403 for anyone but an admin; 404 for an unknown run; 409 ``not_reversible`` for a run
    already reversed or one that is itself a reversal. Records ``settlement.reversed``."""
    require_operator(actor)
    lock_settlements(session)
    original = session.get(SettlementRun, run_id, populate_existing=True, with_for_update=True)
    if original is None:
        raise NotFound("settlement run")
    if original.reverses_id is not None:
        raise NotReversible("a reversing run cannot itself be reversed")
    if original.status is SettlementStatus.REVERSED:
        raise NotReversible(f"settlement run {original.number} has been reversed already")
    today = clock.today()
    run = _new_run(
        session,
        actor=actor,
        today=today,
        period=(original.period_start, original.period_end),
        fee_rate=original.fee_rate,
        minimum_payout=minimum_payout,
        totals=(-original.total_received, -original.total_fees),
        reverses=original,
    )
    lines = session.scalars(select(SettlementLine).where(SettlementLine.run_id == original.id))
    rows = [
        {
            "id": uuid.uuid4(),
            "run_id": run.id,
            "payment_id": line.payment_id,
            "payee_type": line.payee_type,
            "payee_id": line.payee_id,
            "payee_name": line.payee_name,
            "owner_organisation_id": line.owner_organisation_id,
            "role": line.role,
            "amount": -line.amount,
        }
        for line in lines
    ]
    session.execute(insert(SettlementLine), rows)
    carried = books.payable_balances(session)
    for transaction in ledger.transactions_for(session, "settlement_run", original.id):
        if transaction.kind == books.SETTLEMENT_KIND:
            ledger.reverse(
                session,
                transaction,
                description=f"Reversal of settlement {original.number} by {run.number} / 冲销结算",
                effective_date=today,
            )
    session.execute(
        update(SettledPayment)
        .where(SettledPayment.run_id == original.id, SettledPayment.reversed_dt.is_(None))
        .values(reversed_dt=clock.now())
    )
    original.status = SettlementStatus.REVERSED
    payouts = books.pay_out(session, run, rows, carried, minimum_payout, today)
    session.flush()
    payload = _payload(run, payouts, [], payments=len({row["payment_id"] for row in rows}))
    payload |= {"reverses_id": original.id, "reverses_number": original.number}
    record(
        session,
        actor=actor,
        action="settlement.reversed",
        subject_type="settlement_run",
        subject_id=run.id,
        payload=payload,
    )
    return run


# Steps --------------------------------------------------------------------------------------


def _unsettled(session: Session, start: date, end: date) -> Sequence[Any]:
    live = exists().where(
        SettledPayment.payment_id == Payment.id, SettledPayment.reversed_dt.is_(None)
    )
    # A payment on a void statement (a corrected report) became the licensee's credit: it is
    # settled as the credit payment that applied it to the new statement, never twice.
    return session.execute(
        select(Payment.id, Payment.applied, Payment.paid_date, Licence.patent_id)
        .join(Licence, Licence.id == Payment.licence_id)
        .join(Statement, Statement.id == Payment.statement_id)
        .where(
            Payment.paid_date.between(start, end),
            Payment.applied > 0,
            Statement.status != StatementStatus.VOID,
            ~live,
        )
        .order_by(Payment.paid_date, Payment.id)
    ).all()


def _merged(lines: Iterable[PayeeLine]) -> list[PayeeLine]:
    """One line per payee and role within a payment: an institution's remainder split and
    deduction kinds are internal to it (the line table has no column for them)."""
    merged: dict[tuple[str, str, str, str | None], PayeeLine] = {}
    for line in lines:
        key = (line.payee_type, line.payee_id, line.role, line.owner_organisation_id)
        if key in merged:
            previous = merged[key]
            line = PayeeLine(
                line.payee_type,
                line.payee_id,
                line.payee_name,
                previous.amount_fen + line.amount_fen,
                line.role,
                line.owner_organisation_id,
            )
        merged[key] = line
    return list(merged.values())


def _new_run(
    session: Session,
    *,
    actor: Actor | None,
    today: date,
    period: tuple[date, date],
    fee_rate: int,
    minimum_payout: int,
    totals: tuple[int, int],
    reverses: SettlementRun | None = None,
) -> SettlementRun:
    received, fees = totals
    number = next_number(session, "settlement", today.year)
    run = SettlementRun(
        id=uuid.uuid4(),
        number=f"SR-{today.year}-{number:06d}",
        period_start=period[0],
        period_end=period[1],
        status=SettlementStatus.COMPLETED,
        reverses_id=reverses.id if reverses is not None else None,
        fee_rate=fee_rate,
        minimum_payout=minimum_payout,
        total_received=received,
        total_fees=fees,
        total_distributed=received - fees,
        created_by_user_id=actor.user_id if actor is not None else None,
        created_dt=clock.now(),
    )
    session.add(run)
    session.flush()
    return run


def _claim(session: Session, run: SettlementRun, payment_ids: list[uuid.UUID]) -> None:
    """Mark the payments settled by ``run``; the partial unique index refuses a payment that a
    live run holds already (a concurrent run that got there first)."""
    stamp = clock.now()
    rows = [
        {"id": uuid.uuid4(), "payment_id": pid, "run_id": run.id, "created_dt": stamp}
        for pid in payment_ids
    ]
    try:
        with session.begin_nested():
            session.execute(insert(SettledPayment), rows)
    except IntegrityError:
        raise SettlementConflict(
            "another settlement run settled some of these payments at the same time; "
            "run the settlement again to settle what is left"
        ) from None


def _line_row(run_id: uuid.UUID, payment_id: uuid.UUID, line: PayeeLine) -> dict[str, Any]:
    platform = line.payee_type == "platform"
    return {
        "id": uuid.uuid4(),
        "run_id": run_id,
        "payment_id": payment_id,
        "payee_type": PayeeType(line.payee_type),
        "payee_id": None if platform else uuid.UUID(line.payee_id),
        "payee_name": line.payee_name[:300],
        "owner_organisation_id": (
            uuid.UUID(line.owner_organisation_id) if line.owner_organisation_id else None
        ),
        "role": line.role,
        "amount": line.amount_fen,
    }


def _payload(
    run: SettlementRun, payouts: list[tuple[Payout, str]], held: list[Held], *, payments: int
) -> dict[str, Any]:
    return {
        "number": run.number,
        "period_start": run.period_start,
        "period_end": run.period_end,
        "fee_rate": run.fee_rate,
        "minimum_payout": run.minimum_payout,
        "payments": payments,
        "total_received": run.total_received,
        "total_fees": run.total_fees,
        "total_distributed": run.total_distributed,
        "payouts": [
            {
                "payee_type": p.payee_type,
                "payee_id": p.payee_id,
                "payee_name": name,
                "carried_in": p.carried_in_fen,
                "new": p.new_fen,
                "paid": p.paid_fen,
                "carried_out": p.carried_out_fen,
            }
            for p, name in payouts
        ],
        "held": [{"payment_id": h.payment_id, "reason": h.reason} for h in held],
    }
