"""Reading the books: the trial balance, one account's entries, and a licensee's statement of
account (issue 5 §4, §6).

The ledger (registry.clearing.ledger) is the book of record; these are its read-only views.
The trial balance and account entries are for the clearing house's admins and for auditors
(403 for everyone else). A licensee's statement of account — its statements, its payments and
the credit held for it — is seen by that licensee's users, admins and auditors; a TTO has no
business with it (403) and another licensee gets 404, as if it did not exist.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, joinedload

from registry.accounts.models import Organisation
from registry.clearing import ledger
from registry.clearing.models import (
    JournalEntry,
    JournalTransaction,
    LedgerAccount,
    Payment,
    Statement,
)
from registry.clearing.statements import statement_view
from registry.core import clock
from registry.core.actor import Actor, Role
from registry.core.errors import Forbidden, NotFound
from registry.licences.models import Licence

LEDGER_READERS = frozenset({Role.ADMIN, Role.AUDITOR})


def require_ledger_reader(actor: Actor) -> None:
    if actor.role not in LEDGER_READERS:
        raise Forbidden("the ledger is open to the clearing house's admins and to auditors")


def trial_balance(session: Session, *, actor: Actor) -> dict[str, Any]:
    """Every account's debits, credits and balance; ``balanced`` when debits equal credits.
    The whole ledger spans every organisation: admins and all-organisation auditors only."""
    require_ledger_reader(actor)
    if not actor.reads_all:
        raise Forbidden("the trial balance is for auditors of every organisation")
    return ledger.trial_balance(session)


def account_entries(
    session: Session, *, actor: Actor, code: str
) -> tuple[LedgerAccount, Select[JournalEntry]]:
    """The account named ``code`` (404 if never used) and its entries, oldest first."""
    require_ledger_reader(actor)
    account = session.scalar(select(LedgerAccount).where(LedgerAccount.code == code))
    # An auditor with a narrower scope reads the accounts of its organisations only.
    in_scope = actor.reads_all or (
        account is not None
        and account.owner_type == "organisation"
        and actor.audits([account.owner_id])
    )
    if account is None or not in_scope:
        raise NotFound("ledger account")
    statement = (
        select(JournalEntry)
        .join(JournalTransaction, JournalTransaction.id == JournalEntry.transaction_id)
        .where(JournalEntry.account_id == account.id)
        .options(joinedload(JournalEntry.transaction))
        .order_by(JournalTransaction.created_dt, JournalTransaction.id, JournalEntry.id)
    )
    return account, statement


def entry_view(entry: JournalEntry) -> dict[str, Any]:
    transaction = entry.transaction
    return {
        "transaction_id": transaction.id,
        "kind": transaction.kind,
        "subject_type": transaction.subject_type,
        "subject_id": transaction.subject_id,
        "description": transaction.description,
        "effective_date": transaction.effective_date,
        "created_dt": transaction.created_dt,
        "reverses_id": transaction.reverses_id,
        "side": "debit" if entry.amount > 0 else "credit",
        "amount": entry.amount,
    }


def licensee_account(session: Session, *, actor: Actor, organisation_id: UUID) -> dict[str, Any]:
    """The licensee's statement of account: its statements and payments, what it owes on open
    statements (its receivable) and the credit held for it. 403 for TTO staff; 404 for an
    unknown organisation or another licensee's."""
    if actor.role is Role.TTO:
        raise Forbidden("a licensee's account is seen by the licensee, admins and auditors")
    if actor.role is Role.LICENSEE and actor.organisation_id != organisation_id:
        raise NotFound("licensee account")
    if actor.role is Role.AUDITOR and not actor.audits([organisation_id]):
        raise NotFound("licensee account")
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        raise NotFound("licensee account")
    statements = session.execute(
        select(Statement, Licence.reference)
        .join(Licence, Licence.id == Statement.licence_id)
        .where(Statement.licensee_organisation_id == organisation_id)
        .order_by(Statement.due_date, Statement.number)
    ).all()
    payments = session.execute(
        select(Payment, Statement.number)
        .join(Statement, Statement.id == Payment.statement_id)
        .where(Payment.payer_organisation_id == organisation_id)
        .order_by(Payment.paid_date, Payment.created_dt, Payment.id)
    ).all()
    today = clock.today()
    return {
        "organisation_id": organisation.id,
        "name": organisation.name,
        "balance_due": ledger.balance(session, f"receivable:{organisation_id}"),
        "credit_balance": -ledger.balance(session, f"credit:{organisation_id}"),
        "statements": [
            {
                "id": s.id,
                "number": s.number,
                "licence_id": s.licence_id,
                "licence_reference": reference,
                "kind": s.kind,
                "amount_due": s.amount_due,
                "amount_paid": s.amount_paid,
                "due_date": s.due_date,
                "status": statement_view(s, today),
            }
            for s, reference in statements
        ],
        "payments": [
            {
                "id": p.id,
                "statement_id": p.statement_id,
                "statement_number": number,
                "amount": p.amount,
                "applied": p.applied,
                "credit": p.credit,
                "paid_date": p.paid_date,
                "reference": p.reference,
                "source": p.source,
            }
            for p, number in payments
        ],
    }
