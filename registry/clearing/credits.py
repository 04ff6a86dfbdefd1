"""A licensee's credit: overpayments held for it and applied to its next statements.

An overpayment (registry.clearing.payments) credits the ledger account ``credit:<org>``
(registry.clearing.ledger, flow "payment"). When a statement is issued for the organisation,
registry.clearing.statements calls :func:`apply_available_credit`, which applies as much of
that credit as the statement still needs, as a :class:`Payment` with ``source = credit`` and
the ledger flow "credit applied" (Dr credit(L) x, Cr receivable(L) x; Dr royalties:billed x,
Cr royalties:received x). The money was received when it was overpaid, so the applied part is
a receipt of royalties like any other and is settled to payees (the credit part never is).

The ledger account is the truth for the balance. Spending it takes the organisation's row lock
(FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers) and reads the balance
again under it, so two statements issued at the same time cannot both spend the same credit;
a payment adding credit meanwhile only leaves more for the next statement.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation
from registry.audit.services import record
from registry.clearing import ledger
from registry.clearing.models import Payment, PaymentSource, Statement, StatementStatus
from registry.clearing.overdue import refresh_licence_status
from registry.core import clock
from registry.core.actor import Actor
from registry.core.money import format_money, from_fen


def lock_organisation(session: Session, organisation_id: uuid.UUID) -> Organisation:
    """The licensee's organisation, locked: the one lock every credit movement takes."""
    return session.scalars(
        select(Organisation).where(Organisation.id == organisation_id).with_for_update()
    ).one()


def lock_statement(session: Session, statement_id: uuid.UUID) -> Statement | None:
    """The statement re-read under a row lock, so amounts paid are current."""
    return session.scalars(
        select(Statement)
        .where(Statement.id == statement_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def outstanding(statement: Statement) -> int:
    """What the statement still needs, in fen (0 for a void or paid one)."""
    if statement.status is not StatementStatus.OPEN:
        return 0
    return max(statement.amount_due - statement.amount_paid, 0)


def mark_applied(statement: Statement, applied: int) -> None:
    """Add ``applied`` fen to what the statement has received; paid when nothing is left."""
    statement.amount_paid += applied
    if statement.amount_paid >= statement.amount_due:
        statement.status = StatementStatus.PAID
    statement.updated_dt = clock.now()


def credit_balance(session: Session, organisation_id: uuid.UUID) -> int:
    """The credit held for the organisation in fen (the liability's balance, as a positive
    amount); 0 when it never overpaid."""
    return -ledger.balance(session, f"credit:{organisation_id}")


def apply_available_credit(
    session: Session, statement: Statement, actor: Actor | None
) -> Payment | None:
    """Apply the licensee's credit to ``statement`` (up to what it still owes): one payment
    with ``source = credit``, the "credit applied" ledger flow, a ``payment.recorded`` event,
    and the licence's status brought up to date. ``None`` when there is no credit or the
    statement needs nothing."""
    if credit_balance(session, statement.licensee_organisation_id) <= 0:
        return None  # the usual case, decided without taking the organisation's lock
    organisation = lock_organisation(session, statement.licensee_organisation_id)
    locked = lock_statement(session, statement.id)
    if locked is None:
        return None
    available = credit_balance(session, organisation.id)
    amount = min(available, outstanding(locked))
    if amount <= 0:
        return None
    today = clock.today()
    payment = Payment(
        id=uuid.uuid4(),
        statement_id=locked.id,
        licence_id=locked.licence_id,
        payer_organisation_id=organisation.id,
        amount=amount,
        applied=amount,
        credit=0,
        paid_date=today,
        reference=f"credit applied to {locked.number}",
        source=PaymentSource.CREDIT,
        recorded_by_user_id=actor.user_id if actor else None,
        created_dt=clock.now(),
    )
    session.add(payment)
    mark_applied(locked, amount)
    session.flush()
    ledger.post(
        session,
        kind="credit_applied",
        subject_type="payment",
        subject_id=payment.id,
        description=f"Credit applied to {locked.number} / 预收余额抵扣",
        effective_date=today,
        entries=[
            (ledger.licensee_credit(organisation.id, organisation.name), amount),
            (ledger.receivable(organisation.id, organisation.name), -amount),
            (ledger.fixed(ledger.BILLED), amount),
            (ledger.fixed(ledger.RECEIVED), -amount),
        ],
    )
    record(
        session,
        actor=actor,
        action="payment.recorded",
        subject_type="payment",
        subject_id=payment.id,
        payload={
            "statement_id": locked.id,
            "statement_number": locked.number,
            "source": PaymentSource.CREDIT.value,
            "amount": format_money(from_fen(amount)),
            "applied": format_money(from_fen(amount)),
            "credit": format_money(from_fen(0)),
            "paid_date": today,
        },
    )
    refresh_licence_status(session, licence_id=locked.licence_id, actor=actor, today=today)
    return payment
