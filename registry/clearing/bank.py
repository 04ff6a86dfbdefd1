"""Bank-statement import: receipts matched to statements by number, the rest held in suspense.

**The file** is described in registry.clearing.bank_file (CSV, UTF-8; ``date, amount,
reference, counterparty``; all or nothing).

**Matching.** A statement number (``ST-YYYY-NNNNNN``, any letter case) in the reference names
the statement. The line becomes a payment (source ``bank``, paid on the value date, by the
rules of registry.clearing.payments: partial, over, late interest) when it names exactly one
number, of a statement that is open. Otherwise — no number, several different numbers, an
unknown number, a void or already paid statement — the line is held in **suspense**:
Dr cash / Cr suspense (ledger flow "bank line held"), listed by ``GET /bank-lines?status=
suspense`` with the reason. An admin resolves it with ``POST /bank-lines/{id}/match`` naming an
open statement, and the line becomes ``resolved``.

Ledger flows (extending registry.clearing.ledger's list; each transaction balances):

* line matched on import (payment, applied a + credit c = P): the "payment" flow,
  Dr cash P; Cr receivable(L) a; Cr credit(L) c; Dr royalties:billed a; Cr royalties:received a
* line held (P):            Dr cash P                     Cr suspense P
* held line resolved (P = a + c): Dr suspense P; Cr receivable(L) a; Cr credit(L) c;
  Dr royalties:billed a; Cr royalties:received a (the cash was booked when it was held)

**Re-import.** Each line's fingerprint is the SHA-256 of its value date, amount, reference,
counterparty and its occurrence among identical lines in the file (two equal receipts on one
day stay two). Importing the same file, or an overlapping export, again adds only the lines not
seen before; the unique fingerprint also stops two concurrent imports of one file.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.audit.services import record
from registry.clearing import ledger, payments
from registry.clearing.bank_file import Receipt, fingerprints, read_receipts
from registry.clearing.models import BankLine, BankLineStatus, PaymentSource, Statement
from registry.core import clock
from registry.core.actor import Actor, Role
from registry.core.errors import Duplicate, FieldError, Forbidden, NotFound, RuleViolation
from registry.core.money import format_money, from_fen

# Not inside a longer token ("XST-…", "…0000012"); Chinese text may touch it ("货款ST-…许可费").
NUMBER: Final = re.compile(r"(?<![A-Za-z0-9])ST-\d{4}-\d{6}(?![0-9])", re.IGNORECASE)


def require_admin(actor: Actor) -> None:
    if actor.role is not Role.ADMIN:
        raise Forbidden("only the clearing house (admin) handles bank statements")


@dataclass
class ImportResult:
    lines: int = 0
    matched: list[BankLine] = field(default_factory=list)
    suspense: list[BankLine] = field(default_factory=list)
    duplicates: int = 0
    reasons: dict[uuid.UUID, str] = field(default_factory=dict)


def suspense_reason(session: Session, reference: str) -> str | None:
    """Why a reference cannot be matched automatically; ``None`` when it names an open
    statement."""
    numbers = sorted({number.upper() for number in NUMBER.findall(reference)})
    if not numbers:
        return "no statement number in the reference"
    if len(numbers) > 1:
        return f"several statement numbers: {', '.join(numbers)}"
    statement = session.scalar(select(Statement).where(Statement.number == numbers[0]))
    if statement is None:
        return f"unknown statement {numbers[0]}"
    try:
        payments.check_payable(statement)
    except RuleViolation as refusal:
        return refusal.message
    return None


def import_bank_statement(session: Session, *, actor: Actor, data: bytes) -> ImportResult:
    """Import one file (module docstring): new lines matched or held, seen lines skipped."""
    require_admin(actor)
    receipts = read_receipts(data, clock.today())
    prints = fingerprints(receipts)
    known = set(
        session.scalars(select(BankLine.fingerprint).where(BankLine.fingerprint.in_(prints)))
    )
    result = ImportResult(lines=len(receipts))
    for receipt, fingerprint in zip(receipts, prints, strict=True):
        if fingerprint in known:
            result.duplicates += 1
            continue
        known.add(fingerprint)
        _import_line(session, actor, receipt, fingerprint, result)
    return result


def _import_line(
    session: Session, actor: Actor, receipt: Receipt, fingerprint: str, result: ImportResult
) -> None:
    now = clock.now()
    reason = suspense_reason(session, receipt.reference)
    line = BankLine(
        id=uuid.uuid4(),
        fingerprint=fingerprint,
        value_date=receipt.value_date,
        amount=receipt.amount,
        reference=receipt.reference,
        counterparty=receipt.counterparty,
        status=BankLineStatus.SUSPENSE if reason else BankLineStatus.MATCHED,
        imported_by_user_id=actor.user_id,
        created_dt=now,
        updated_dt=now,
    )
    try:
        with session.begin_nested():
            session.add(line)
            session.flush()
    except IntegrityError:  # the same line committed meanwhile by a concurrent import
        raise Duplicate(
            "these bank lines were imported meanwhile by another request; nothing was imported "
            "from this file — import it again to add any lines still missing"
        ) from None
    if reason is None:
        number = NUMBER.findall(receipt.reference)[0].upper()
        statement = session.scalars(select(Statement).where(Statement.number == number)).one()
        line.statement_id = statement.id
        payments.record_payment(
            session,
            actor=actor,
            statement_id=statement.id,
            amount=receipt.amount,
            paid_date=receipt.value_date,
            reference=receipt.reference[:200] or None,
            source=PaymentSource.BANK,
            bank_line=line,
        )  # the "payment" flow straight from cash: the line is matched as it arrives
        result.matched.append(line)
    else:
        _hold(session, line)
        result.suspense.append(line)
        result.reasons[line.id] = reason
    record(
        session,
        actor=actor,
        action="bank_line.imported",
        subject_type="bank_line",
        subject_id=line.id,
        payload={
            "status": line.status.value,
            "value_date": line.value_date,
            "amount": format_money(from_fen(line.amount)),
            "reference": line.reference,
            "statement_id": line.statement_id,
            "reason": reason,
        },
    )


def _hold(session: Session, line: BankLine) -> None:
    """Dr cash / Cr suspense: the receipt is booked, its purpose unknown (flow "bank line
    held")."""
    ledger.post(
        session,
        kind="bank_line",
        subject_type="bank_line",
        subject_id=line.id,
        description=f"Bank line held / 待查明收款: {line.reference}"[:1000],
        effective_date=line.value_date,
        entries=[
            (ledger.fixed(ledger.CASH), line.amount),
            (ledger.fixed(ledger.SUSPENSE), -line.amount),
        ],
    )


def match_line(
    session: Session, *, actor: Actor, line_id: uuid.UUID, statement_id: uuid.UUID
) -> BankLine:
    """Resolve a suspense line into a payment on ``statement_id`` (module docstring)."""
    require_admin(actor)
    line = session.scalars(
        select(BankLine)
        .where(BankLine.id == line_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if line is None:
        raise NotFound("bank line")
    if line.status is not BankLineStatus.SUSPENSE:
        raise RuleViolation(
            f"this bank line is {line.status.value}, not in suspense",
            [FieldError.of("id", "not in suspense")],
        )
    payment = payments.record_payment(
        session,
        actor=actor,
        statement_id=statement_id,
        amount=line.amount,
        paid_date=line.value_date,
        reference=line.reference[:200] or None,
        source=PaymentSource.BANK,
        bank_line=line,
        from_suspense=True,
    )
    line.status = BankLineStatus.RESOLVED
    line.statement_id = statement_id
    line.updated_dt = clock.now()
    session.flush()
    record(
        session,
        actor=actor,
        action="bank_line.resolved",
        subject_type="bank_line",
        subject_id=line.id,
        payload={"statement_id": statement_id, "payment_id": payment.id},
    )
    line.payment_id = payment.id  # type: ignore[attr-defined]  # shown in the response
    return line


def bank_lines_query(actor: Actor, query: dict[str, Any]) -> Any:
    """Bank lines, newest value date first, optionally by status (admins and auditors of
    every organisation: unmatched lines belong to no licence, so no narrower scope applies)."""
    if not actor.reads_all:
        raise Forbidden("only the clearing house and all-organisation auditors see bank lines")
    statement = select(BankLine).order_by(BankLine.value_date.desc(), BankLine.created_dt.desc())
    if query.get("status") is not None:
        statement = statement.where(BankLine.status == query["status"])
    return statement
