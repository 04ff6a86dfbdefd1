"""Payments against statements: partial, over (credit held), late (interest), and the licence
status that follows.

Who records a payment: the licensee, on its own enterprise's statements (a statement of
another enterprise answers 404, as if it did not exist), or an admin — the clearing house
recording a receipt, by hand or from a bank statement (registry.clearing.bank). TTOs and
auditors never do (403).

Rules, in order (each refusal changes nothing):

* the statement must be open: a void one (replaced by a corrected report) is refused 409
  ``statement_void``; a fully paid one 409 ``already_paid`` — money sent against a settled
  invoice is a mistake to look at, not silently a credit (an admin can still put a bank line
  for it in suspense and match it to another statement of the licensee);
* the amount is positive (422 from the schema) and the payment date not after today, Beijing
  time (422 ``paid_date``).

The amount is split: ``applied`` = the part the statement still needs, ``credit`` = the rest,
held for the licensee in ``credit:<org>`` and applied to its next statements
(registry.clearing.credits). Ledger flow "payment" (registry.clearing.ledger):
Dr cash a+c, Cr receivable(L) a, Cr credit(L) c; Dr royalties:billed a, Cr royalties:received a.
A bank line resolved from suspense posts the same with Dr suspense instead of Dr cash (the cash
was booked when the line was held).

**Late interest** (CC Art. 584/585; the terms' ``late_interest_rate``, law.md A3 "a late fee if
agreed"): a payment made after the statement's due date owes simple interest on the amount it
applies, for the days from the day after the due date to the payment date, actual/365
(registry.clearing.royalties.late_interest). It is billed on a new ``interest`` statement,
due on the day the payment is recorded (due immediately: the debt arises from the late
payment itself), whose breakdown names the payment. No interest is charged on an interest
statement paid late (no compound interest), nor on the credit part of a payment.

The statement is changed under a row lock (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE
serialises writers), so concurrent payments on one statement apply one after the other:
``amount_paid`` never exceeds ``amount_due``, the excess becomes credit. Locks are taken in
one order everywhere — statement, then the audit log head, then the licence — so payments,
credit applied to new statements and the overdue run cannot deadlock one another.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation
from registry.audit.services import record
from registry.clearing import credits, ledger
from registry.clearing.models import (
    BankLine,
    Payment,
    PaymentSource,
    Statement,
    StatementKind,
    StatementStatus,
)
from registry.clearing.overdue import refresh_licence_status
from registry.clearing.royalties import days_late, late_interest, royalty_of
from registry.core import clock
from registry.core.actor import Actor, Role
from registry.core.errors import FieldError, Forbidden, NotFound, RuleViolation, ValidationFailed
from registry.core.money import format_money, from_fen
from registry.licences.models import Licence
from registry.licences.services import audited_licence_ids
from registry.patents.models import PatentOwner

RECORDERS = frozenset({Role.ADMIN, Role.LICENSEE})


class StatementVoid(RuleViolation):
    code = "statement_void"


class AlreadyPaid(RuleViolation):
    code = "already_paid"


def visible_statement(session: Session, actor: Actor, statement_id: uuid.UUID) -> Statement:
    """The statement if the actor may see it; 404 otherwise (scope never leaks)."""
    statement = session.get(Statement, statement_id)
    if statement is None or not _may_see(session, actor, statement):
        raise NotFound("statement")
    return statement


def _may_see(session: Session, actor: Actor, statement: Statement) -> bool:
    if actor.reads_all:
        return True
    if actor.role is Role.AUDITOR:
        in_scope = audited_licence_ids(actor).where(Licence.id == statement.licence_id)
        return session.scalar(in_scope) is not None
    if actor.role is Role.LICENSEE:
        return statement.licensee_organisation_id == actor.organisation_id
    if actor.role is Role.TTO:
        return bool(session.scalar(select(_licensor_clause(actor, statement.licence_id))))
    return False


def _licensor_clause(actor: Actor, licence_id: Any) -> Any:
    return exists().where(
        Licence.id == licence_id,
        PatentOwner.patent_id == Licence.patent_id,
        PatentOwner.organisation_id == actor.organisation_id,
        PatentOwner.superseded_dt.is_(None),
    )


def check_payable(statement: Statement) -> None:
    """409 unless the statement can still receive money (module docstring)."""
    if statement.status is StatementStatus.VOID:
        raise StatementVoid(
            f"statement {statement.number} is void; pay the statement that replaced it",
            [FieldError.of("statement_id", "void")],
        )
    if statement.status is StatementStatus.PAID or statement.amount_paid >= statement.amount_due:
        raise AlreadyPaid(
            f"statement {statement.number} is already paid in full",
            [FieldError.of("statement_id", "already paid")],
        )


def record_payment(
    session: Session,
    *,
    actor: Actor,
    statement_id: uuid.UUID,
    amount: int,
    paid_date: date,
    reference: str | None,
    source: PaymentSource = PaymentSource.API,
    bank_line: BankLine | None = None,
    from_suspense: bool = False,
) -> Payment:
    """Record money received against a statement (module docstring); 201's payment, with the
    transient attribute ``interest_statement_id`` set when late interest was billed."""
    if actor.role not in RECORDERS:
        raise Forbidden(f"the {actor.role} role may not record payments")
    statement = visible_statement(session, actor, statement_id)
    if amount <= 0:
        raise ValidationFailed("invalid input", [FieldError.of("amount", "must be positive")])
    today = clock.today()
    if paid_date > today:
        raise ValidationFailed(
            "invalid input", [FieldError.of("paid_date", f"is after today ({today})")]
        )
    organisation = session.get(Organisation, statement.licensee_organisation_id)
    assert organisation is not None
    locked = credits.lock_statement(session, statement.id)
    assert locked is not None  # statements are never deleted
    check_payable(locked)
    applied = min(amount, credits.outstanding(locked))
    payment = Payment(
        id=uuid.uuid4(),
        statement_id=locked.id,
        licence_id=locked.licence_id,
        payer_organisation_id=organisation.id,
        amount=amount,
        applied=applied,
        credit=amount - applied,
        paid_date=paid_date,
        reference=reference,
        source=source,
        bank_line_id=bank_line.id if bank_line is not None else None,
        recorded_by_user_id=actor.user_id,
        created_dt=clock.now(),
    )
    session.add(payment)
    credits.mark_applied(locked, applied)
    session.flush()
    _post(session, payment, locked, organisation, from_suspense=from_suspense)
    licence = session.get(Licence, locked.licence_id)
    assert licence is not None
    interest = _bill_interest(session, payment, locked, licence, actor)
    record(
        session,
        actor=actor,
        action="payment.recorded",
        subject_type="payment",
        subject_id=payment.id,
        payload={
            "statement_id": locked.id,
            "statement_number": locked.number,
            "source": source.value,
            "amount": _money(amount),
            "applied": _money(applied),
            "credit": _money(payment.credit),
            "paid_date": paid_date,
            "reference": reference,
            "interest_statement_id": interest.id if interest else None,
        },
    )
    refresh_licence_status(session, licence_id=licence.id, actor=actor, today=today)
    payment.interest_statement_id = interest.id if interest else None  # type: ignore[attr-defined]
    return payment


def _money(fen: int) -> str:
    return format_money(from_fen(fen))


def _post(
    session: Session,
    payment: Payment,
    statement: Statement,
    organisation: Organisation,
    *,
    from_suspense: bool,
) -> None:
    """The "payment" flow; from a bank line held in suspense, Dr suspense instead of cash."""
    source_account = ledger.fixed(ledger.SUSPENSE if from_suspense else ledger.CASH)
    ledger.post(
        session,
        kind="payment",
        subject_type="payment",
        subject_id=payment.id,
        description=f"Payment for {statement.number} / 收款",
        effective_date=payment.paid_date,
        entries=[
            (source_account, payment.amount),
            (ledger.receivable(organisation.id, organisation.name), -payment.applied),
            (ledger.licensee_credit(organisation.id, organisation.name), -payment.credit),
            (ledger.fixed(ledger.BILLED), payment.applied),
            (ledger.fixed(ledger.RECEIVED), -payment.applied),
        ],
    )


def _bill_interest(
    session: Session, payment: Payment, statement: Statement, licence: Licence, actor: Actor
) -> Statement | None:
    """Issue the late-interest statement for this payment, if any is owed."""
    if statement.kind is StatementKind.INTEREST or payment.applied == 0:
        return None
    days = days_late(statement.due_date, payment.paid_date)
    amount = late_interest(payment.applied, days, licence.terms) if days else 0
    if amount <= 0:
        return None
    # Imported here: statements imports credits, which this module imports too.
    from registry.clearing.statements import issue_statement

    return issue_statement(
        session,
        licence=licence,
        kind=StatementKind.INTEREST,
        amount=amount,
        due_date=clock.today(),
        breakdown={
            "payment_id": str(payment.id),
            "statement_number": statement.number,
            "amount_late": _money(payment.applied),
            "due_date": statement.due_date.isoformat(),
            "paid_date": payment.paid_date.isoformat(),
            "days_late": days,
            "late_interest_rate": str(royalty_of(licence.terms).get("late_interest_rate")),
            "interest": _money(amount),
        },
        actor=actor,
    )


def visible_payments(actor: Actor, query: dict[str, Any]) -> Select[Payment]:
    """Payments on statements the actor may see, newest first: a licensee its enterprise's, a
    TTO those on licences of its organisation's patents, admins all, auditors those in scope."""
    statement = select(Payment).order_by(Payment.created_dt.desc(), Payment.id)
    if actor.role is Role.LICENSEE:
        statement = statement.where(Payment.payer_organisation_id == actor.organisation_id)
    elif actor.role is Role.TTO:
        statement = statement.where(_licensor_clause(actor, Payment.licence_id))
    elif actor.role is Role.AUDITOR and not actor.audits_all:
        statement = statement.where(Payment.licence_id.in_(audited_licence_ids(actor)))
    elif not actor.reads_all:
        raise Forbidden("your role may not read payments")
    if query.get("statement_id") is not None:
        statement = statement.where(Payment.statement_id == query["statement_id"])
    if query.get("licence_id") is not None:
        statement = statement.where(Payment.licence_id == query["licence_id"])
    return statement


def interest_statements(session: Session, payments: Iterable[Payment]) -> dict[str, uuid.UUID]:
    """payment id (text) → the interest statement billed for it, for the payments listed."""
    listed = list(payments)
    licence_ids = {payment.licence_id for payment in listed}
    if not licence_ids:
        return {}
    rows = session.scalars(
        select(Statement).where(
            Statement.kind == StatementKind.INTEREST,
            Statement.licence_id.in_(licence_ids),
            Statement.status != StatementStatus.VOID,
        )
    )
    return {
        str(row.breakdown.get("payment_id")): row.id
        for row in rows
        if isinstance(row.breakdown, dict) and row.breakdown.get("payment_id")
    }
