"""The double-entry ledger: accounts, balanced transactions, reversals, the trial balance.

Every money event posts one :class:`JournalTransaction` whose entries sum to zero, in integer
fen (reliability.md §0 rule 2): a debit is a positive amount, a credit a negative one. Nothing
is updated or deleted — the tables refuse it — so a correction is a new transaction that
reverses an earlier one entry for entry. Balances are sums of entries, never stored.

The accounts and the flows between them (the clearing house holds licensees' money as agent of
the licensors until it is settled to them):

========================================  ========  ========================================
account code                              kind      holds
========================================  ========  ========================================
``cash``                                  asset     money in the clearing bank account
``receivable:<licensee org>``             asset     what a licensee owes on open statements
``royalties:billed``                      liability billed to licensees, not yet received
``royalties:received``                    liability received, not yet settled to payees
``credit:<licensee org>``                 liability a licensee's overpayments, held for it
``suspense``                              liability bank receipts no statement matched
``payable:<payee type>:<payee id>``       liability settled to a payee, not yet paid out
``income:fees``                           income    the platform's settlement fees
========================================  ========  ========================================

* statement issued (A):     Dr receivable(L) A            Cr royalties:billed A
* payment (applied a, credit c):  Dr cash a+c;  Cr receivable(L) a;  Cr credit(L) c;
  and Dr royalties:billed a,  Cr royalties:received a
* credit applied (x):       Dr credit(L) x;  Cr receivable(L) x;  Dr billed x;  Cr received x
* bank line held (P):       Dr cash P                     Cr suspense P
* statement void (paid p):  the "statement issued" transaction reversed; then
  Dr receivable(L) p;  Cr credit(L) p;  Dr royalties:received p;  Cr royalties:billed p
* settlement of a payment:  Dr royalties:received a       Cr payable(each payee), income:fees
* payout (x):               Dr payable(payee) x           Cr cash x

Every transaction posted or reversed is also an audit event (``journal.posted``) carrying its
entries, so each one is a leaf of the audit log's Merkle tree (issue 6 §1): an auditor holding
a checkpoint can tell that no money movement was changed or removed afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.audit.services import record
from registry.clearing.models import AccountKind, JournalEntry, JournalTransaction, LedgerAccount
from registry.core import clock

CASH: Final = "cash"
BILLED: Final = "royalties:billed"
RECEIVED: Final = "royalties:received"
SUSPENSE: Final = "suspense"
FEES: Final = "income:fees"
FIXED_ACCOUNTS: Final = {
    CASH: (AccountKind.ASSET, "Clearing bank account / 清算银行账户"),
    BILLED: (AccountKind.LIABILITY, "Royalties billed, not received / 已开票未收许可费"),
    RECEIVED: (AccountKind.LIABILITY, "Royalties received, not settled / 已收未结算许可费"),
    SUSPENSE: (AccountKind.LIABILITY, "Unmatched receipts / 待查明收款"),
    FEES: (AccountKind.INCOME, "Platform fees / 平台服务费"),
}


class Unbalanced(ValueError):
    """A transaction whose entries do not sum to zero: a bug, never posted."""


@dataclass(frozen=True)
class AccountRef:
    """An account to post to, created on first use: its code, kind, name and owner."""

    code: str
    kind: AccountKind
    name: str
    owner_type: str | None = None
    owner_id: uuid.UUID | None = None


def fixed(code: str) -> AccountRef:
    kind, name = FIXED_ACCOUNTS[code]
    return AccountRef(code, kind, name)


def receivable(organisation_id: uuid.UUID, name: str) -> AccountRef:
    return AccountRef(
        f"receivable:{organisation_id}",
        AccountKind.ASSET,
        f"Receivable from {name} / 应收",
        "organisation",
        organisation_id,
    )


def licensee_credit(organisation_id: uuid.UUID, name: str) -> AccountRef:
    return AccountRef(
        f"credit:{organisation_id}",
        AccountKind.LIABILITY,
        f"Credit held for {name} / 预收余额",
        "organisation",
        organisation_id,
    )


def payable(payee_type: str, payee_id: uuid.UUID | None, name: str) -> AccountRef:
    """A payee's account; a payee without an id (a named beneficiary) is keyed by its name."""
    key = str(payee_id) if payee_id is not None else f"name:{name}"
    return AccountRef(
        f"payable:{payee_type}:{key}"[:120],
        AccountKind.LIABILITY,
        f"Payable to {name} / 应付",
        payee_type,
        payee_id,
    )


def account(session: Session, ref: AccountRef) -> LedgerAccount:
    """The account named by ``ref``, created when first used (race-safe: a concurrent creator
    wins and this call reads its row)."""
    found = session.scalar(select(LedgerAccount).where(LedgerAccount.code == ref.code))
    if found is not None:
        return found
    created = LedgerAccount(
        id=uuid.uuid4(),
        code=ref.code,
        kind=ref.kind,
        name=ref.name[:300],
        owner_type=ref.owner_type,
        owner_id=ref.owner_id,
        created_dt=clock.now(),
    )
    try:
        with session.begin_nested():
            session.add(created)
            session.flush()
    except IntegrityError:
        return session.scalars(select(LedgerAccount).where(LedgerAccount.code == ref.code)).one()
    return created


def post(
    session: Session,
    *,
    kind: str,
    subject_type: str,
    subject_id: uuid.UUID,
    description: str,
    effective_date: date,
    entries: Iterable[tuple[AccountRef, int]],
    reverses: JournalTransaction | None = None,
) -> JournalTransaction:
    """Post one balanced transaction; zero amounts are dropped. :class:`Unbalanced` when the
    entries do not sum to zero or nothing is left to post."""
    lines = [(ref, amount) for ref, amount in entries if amount != 0]
    if not lines:
        raise Unbalanced(f"{kind}: nothing to post")
    if any(not isinstance(amount, int) or isinstance(amount, bool) for _, amount in lines):
        raise Unbalanced(f"{kind}: amounts are integer fen")
    total = sum(amount for _, amount in lines)
    if total != 0:
        raise Unbalanced(f"{kind}: entries sum to {total} fen, not 0")
    transaction = JournalTransaction(
        id=uuid.uuid4(),
        kind=kind,
        subject_type=subject_type,
        subject_id=subject_id,
        description=description,
        effective_date=effective_date,
        reverses_id=reverses.id if reverses is not None else None,
        created_dt=clock.now(),
    )
    session.add(transaction)
    for ref, amount in lines:
        session.add(
            JournalEntry(
                id=uuid.uuid4(),
                transaction_id=transaction.id,
                account_id=account(session, ref).id,
                amount=amount,
            )
        )
    session.flush()
    _record(session, transaction, [(ref.code, amount) for ref, amount in lines])
    return transaction


def reverse(
    session: Session, transaction: JournalTransaction, *, description: str, effective_date: date
) -> JournalTransaction:
    """A transaction undoing ``transaction`` entry for entry (its correcting entry)."""
    originals = session.execute(
        select(JournalEntry, LedgerAccount.code)
        .join(LedgerAccount, LedgerAccount.id == JournalEntry.account_id)
        .where(JournalEntry.transaction_id == transaction.id)
    ).all()
    reversal = JournalTransaction(
        id=uuid.uuid4(),
        kind=f"{transaction.kind}_reversal"[:40],
        subject_type=transaction.subject_type,
        subject_id=transaction.subject_id,
        description=description,
        effective_date=effective_date,
        reverses_id=transaction.id,
        created_dt=clock.now(),
    )
    session.add(reversal)
    for entry, _ in originals:
        session.add(
            JournalEntry(
                id=uuid.uuid4(),
                transaction_id=reversal.id,
                account_id=entry.account_id,
                amount=-entry.amount,
            )
        )
    session.flush()
    _record(session, reversal, [(code, -entry.amount) for entry, code in originals])
    return reversal


def _record(
    session: Session, transaction: JournalTransaction, entries: list[tuple[str, int]]
) -> None:
    """The transaction as an audit event: a leaf of the log (issue 6 §1). The entries are
    ``[account code, fen]`` sorted by code then amount, so equal transactions hash equally."""
    record(
        session,
        actor=None,
        action="journal.posted",
        subject_type="journal_transaction",
        subject_id=transaction.id,
        payload={
            "kind": transaction.kind,
            "subject_type": transaction.subject_type,
            "subject_id": transaction.subject_id,
            "effective_date": transaction.effective_date,
            "reverses": transaction.reverses_id,
            "entries": [[code, int(amount)] for code, amount in sorted(entries)],
        },
    )


def transactions_for(
    session: Session, subject_type: str, subject_id: uuid.UUID
) -> Sequence[JournalTransaction]:
    return session.scalars(
        select(JournalTransaction)
        .where(
            JournalTransaction.subject_type == subject_type,
            JournalTransaction.subject_id == subject_id,
        )
        .order_by(JournalTransaction.created_dt, JournalTransaction.id)
    ).all()


def balance(session: Session, code: str) -> int:
    """The account's balance in fen (debits minus credits); 0 for an unused account."""
    total = session.scalar(
        select(func.coalesce(func.sum(JournalEntry.amount), 0))
        .join(LedgerAccount, LedgerAccount.id == JournalEntry.account_id)
        .where(LedgerAccount.code == code)
    )
    return int(total or 0)


def trial_balance(session: Session) -> dict[str, Any]:
    """Every account's debits, credits and balance, and whether the whole ledger balances."""
    debit = func.coalesce(
        func.sum(case((JournalEntry.amount > 0, JournalEntry.amount), else_=0)), 0
    )
    credit = func.coalesce(
        func.sum(case((JournalEntry.amount < 0, -JournalEntry.amount), else_=0)), 0
    )
    rows = session.execute(
        select(LedgerAccount.code, LedgerAccount.name, LedgerAccount.kind, debit, credit)
        .join(JournalEntry, JournalEntry.account_id == LedgerAccount.id)
        .group_by(LedgerAccount.code, LedgerAccount.name, LedgerAccount.kind)
        .order_by(LedgerAccount.code)
    ).all()
    accounts = [
        {
            "code": code,
            "name": name,
            "kind": kind.value if hasattr(kind, "value") else kind,
            "debits": int(debits),
            "credits": int(credits),
            "balance": int(debits) - int(credits),
        }
        for code, name, kind, debits, credits in rows
    ]
    total_debits = sum(item["debits"] for item in accounts)
    total_credits = sum(item["credits"] for item in accounts)
    return {
        "balanced": total_debits == total_credits,
        "total_debits": total_debits,
        "total_credits": total_credits,
        "accounts": accounts,
    }
