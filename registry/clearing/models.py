"""The clearing house's records: reports, statements, payments, bank lines, the ledger,
settlement runs and the mail outbox (DESIGN.md §2, Clearing).

Money is integer fen in BIGINT columns everywhere (reliability.md §0 rule 2); the API turns it
into decimal strings with two places at the edge. The ledger (``journal_transactions`` and
``journal_entries``) is the book of record: append-only in the database itself, one balanced
transaction per money event, corrections by reversing transactions. The other tables say what
each event was about (which statement, which payment) and carry the states users see.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.core.db import Base, created_dt, uuid_pk
from registry.core.types import str_enum

#: An amount of money in fen (CNY 0.01), or a count of units, as a BIGINT.
Fen = Annotated[int, mapped_column(BigInteger)]


class ReportBase(enum.StrEnum):
    NET_SALES = "net_sales"
    PROFIT = "profit"
    UNITS = "units"


class StatementKind(enum.StrEnum):
    ENTRY_FEE = "entry_fee"
    LUMP_SUM = "lump_sum"
    INSTALMENT = "instalment"
    ROYALTY = "royalty"  # a running royalty for one reported period
    MINIMUM_TRUE_UP = "minimum_true_up"
    INTEREST = "interest"  # late-payment interest (CC Art. 584/585; the terms' rate)


class StatementStatus(enum.StrEnum):
    OPEN = "open"
    PAID = "paid"
    VOID = "void"  # replaced by a corrected report's statement; reversed in the ledger


class PaymentSource(enum.StrEnum):
    API = "api"
    BANK = "bank"  # matched from an imported bank-statement line
    CREDIT = "credit"  # an earlier overpayment applied to a new statement


class BankLineStatus(enum.StrEnum):
    MATCHED = "matched"
    SUSPENSE = "suspense"  # no statement matched: held, visible, for an operator
    RESOLVED = "resolved"  # matched by hand from the suspense list


class AccountKind(enum.StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    INCOME = "income"


class SettlementStatus(enum.StrEnum):
    COMPLETED = "completed"
    REVERSED = "reversed"


class PayeeType(enum.StrEnum):
    ORGANISATION = "organisation"
    INVENTOR = "inventor"
    BENEFICIARY = "beneficiary"  # an income beneficiary without an organisation
    PLATFORM = "platform"


class RoyaltyReport(Base):
    """A licensee's report for one period; a correction is a new version with a reason."""

    __tablename__ = "royalty_reports"
    __table_args__ = (
        UniqueConstraint("licence_id", "period_start", "version"),
        CheckConstraint("period_end >= period_start", name="period_order"),
        CheckConstraint("base_amount >= 0", name="base_not_negative"),
        CheckConstraint("royalty_due >= 0", name="royalty_not_negative"),
    )

    id: Mapped[uuid_pk]
    licence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("licences.id"), index=True)
    period_start: Mapped[date]
    period_end: Mapped[date]
    version: Mapped[int] = mapped_column(comment="1, then 2, 3 … for corrections")
    supersedes_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("royalty_reports.id"))
    correction_reason: Mapped[str | None] = mapped_column(Text)
    base: Mapped[ReportBase] = mapped_column(str_enum(ReportBase, "report_base"))
    base_amount: Mapped[Fen] = mapped_column(comment="net sales or profit in fen, or units")
    licence_year: Mapped[int]
    royalty_due: Mapped[Fen]
    breakdown: Mapped[dict[str, Any]] = mapped_column(JSON, comment="gross, discount, cap, due")
    reported_by_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_dt: Mapped[created_dt]


class Statement(Base):
    """An amount a licensee owes by a due date (an invoice), numbered ST-YYYY-NNNNNN."""

    __tablename__ = "statements"
    __table_args__ = (
        CheckConstraint("amount_due >= 0", name="due_not_negative"),
        CheckConstraint("amount_paid >= 0", name="paid_not_negative"),
        Index("ix_statements_open_due", "status", "due_date"),
    )

    id: Mapped[uuid_pk]
    number: Mapped[str] = mapped_column(String(20), unique=True)
    licence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("licences.id"), index=True)
    licensee_organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id"), index=True
    )
    kind: Mapped[StatementKind] = mapped_column(str_enum(StatementKind, "statement_kind"))
    period_start: Mapped[date | None]
    period_end: Mapped[date | None]
    instalment_number: Mapped[int | None]
    report_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("royalty_reports.id"))
    amount_due: Mapped[Fen]
    amount_paid: Mapped[Fen] = mapped_column(default=0, comment="cached; the ledger is the truth")
    due_date: Mapped[date] = mapped_column(index=True)
    status: Mapped[StatementStatus] = mapped_column(
        str_enum(StatementStatus, "statement_status"), default=StatementStatus.OPEN
    )
    breakdown: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    overdue_dt: Mapped[datetime | None] = mapped_column(comment="first marked overdue")
    reminders_sent: Mapped[int] = mapped_column(default=0)
    void_reason: Mapped[str | None] = mapped_column(Text)
    created_dt: Mapped[created_dt]
    updated_dt: Mapped[datetime]

    report: Mapped[RoyaltyReport | None] = relationship()


class BankLine(Base):
    """One line of an imported bank statement; its fingerprint makes a re-import a no-op."""

    __tablename__ = "bank_lines"

    id: Mapped[uuid_pk]
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    value_date: Mapped[date]
    amount: Mapped[Fen]
    reference: Mapped[str] = mapped_column(Text)
    counterparty: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[BankLineStatus] = mapped_column(str_enum(BankLineStatus, "bank_line_status"))
    statement_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("statements.id"))
    imported_by_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_dt: Mapped[created_dt]
    updated_dt: Mapped[datetime]


class Payment(Base):
    """Money received against a statement: ``applied`` settles it, ``credit`` (an overpayment)
    is held for the licensee and applied to its next statement."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("applied >= 0 AND credit >= 0", name="parts_not_negative"),
        CheckConstraint("applied + credit = amount", name="parts_sum"),
    )

    id: Mapped[uuid_pk]
    statement_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("statements.id"), index=True)
    licence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("licences.id"), index=True)
    payer_organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    amount: Mapped[Fen]
    applied: Mapped[Fen]
    credit: Mapped[Fen]
    paid_date: Mapped[date] = mapped_column(index=True)
    reference: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[PaymentSource] = mapped_column(str_enum(PaymentSource, "payment_source"))
    bank_line_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bank_lines.id"))
    recorded_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_dt: Mapped[created_dt]

    statement: Mapped[Statement] = relationship()


class LedgerAccount(Base):
    """An account of the double-entry ledger, e.g. ``cash``, ``receivable:<org>``,
    ``payable:organisation:<id>``; its balance is the sum of its entries."""

    __tablename__ = "ledger_accounts"

    id: Mapped[uuid_pk]
    code: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[AccountKind] = mapped_column(str_enum(AccountKind, "account_kind"))
    name: Mapped[str] = mapped_column(String(300))
    owner_type: Mapped[str | None] = mapped_column(String(20))
    owner_id: Mapped[uuid.UUID | None]
    created_dt: Mapped[created_dt]


class JournalTransaction(Base):
    """One money event; its entries sum to zero (checked before insert and by tests)."""

    __tablename__ = "journal_transactions"

    id: Mapped[uuid_pk]
    kind: Mapped[str] = mapped_column(String(40), comment="statement, payment, settlement, …")
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[uuid.UUID] = mapped_column(index=True)
    description: Mapped[str] = mapped_column(Text)
    effective_date: Mapped[date]
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("journal_transactions.id"))
    created_dt: Mapped[created_dt]

    entries: Mapped[list[JournalEntry]] = relationship(back_populates="transaction")


class JournalEntry(Base):
    """A debit (positive) or credit (negative) of one account within a transaction."""

    __tablename__ = "journal_entries"
    __table_args__ = (CheckConstraint("amount <> 0", name="amount_not_zero"),)

    id: Mapped[uuid_pk]
    transaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("journal_transactions.id"), index=True
    )
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount: Mapped[Fen] = mapped_column(comment="fen: debit > 0, credit < 0")

    transaction: Mapped[JournalTransaction] = relationship(back_populates="entries")
    account: Mapped[LedgerAccount] = relationship()


class SettlementRun(Base):
    __tablename__ = "settlement_runs"

    id: Mapped[uuid_pk]
    number: Mapped[str] = mapped_column(String(20), unique=True, comment="SR-YYYY-NNNNNN")
    period_start: Mapped[date]
    period_end: Mapped[date]
    status: Mapped[SettlementStatus] = mapped_column(
        str_enum(SettlementStatus, "settlement_status")
    )
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("settlement_runs.id"))
    fee_rate: Mapped[int] = mapped_column(comment="hundredths of a percent")
    minimum_payout: Mapped[Fen]
    total_received: Mapped[Fen]
    total_fees: Mapped[Fen]
    total_distributed: Mapped[Fen]
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_dt: Mapped[created_dt]

    lines: Mapped[list[SettlementLine]] = relationship(back_populates="run")


class SettlementLine(Base):
    """One payee's part of one payment in one run (negative in a reversing run)."""

    __tablename__ = "settlement_lines"

    id: Mapped[uuid_pk]
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("settlement_runs.id"), index=True)
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id"), index=True)
    payee_type: Mapped[PayeeType] = mapped_column(str_enum(PayeeType, "payee_type"))
    payee_id: Mapped[uuid.UUID | None] = mapped_column(comment="organisation or inventor id")
    payee_name: Mapped[str] = mapped_column(String(300))
    owner_organisation_id: Mapped[uuid.UUID | None] = mapped_column(
        comment="the co-owner whose part this line comes from"
    )
    role: Mapped[str] = mapped_column(String(30), comment="fee, owner_income, inventor_reward, …")
    amount: Mapped[Fen]

    run: Mapped[SettlementRun] = relationship(back_populates="lines")


class SettledPayment(Base):
    """Which run settled a payment. The partial unique index lets a payment be settled by one
    live run only: running again, even concurrently, settles nothing twice."""

    __tablename__ = "settled_payments"
    __table_args__ = (
        Index(
            "uq_settled_payments_live",
            "payment_id",
            unique=True,
            sqlite_where=text("reversed_dt IS NULL"),
            postgresql_where=text("reversed_dt IS NULL"),
        ),
    )

    id: Mapped[uuid_pk]
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id"))
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("settlement_runs.id"), index=True)
    reversed_dt: Mapped[datetime | None]
    created_dt: Mapped[created_dt]


class OutboxMessage(Base):
    """An e-mail to send (reminders); delivered by SMTP when configured, else written as an
    ``.eml`` file into the instance folder."""

    __tablename__ = "outbox_messages"

    id: Mapped[uuid_pk]
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[uuid.UUID] = mapped_column(index=True)
    sent_dt: Mapped[datetime | None]
    transport: Mapped[str | None] = mapped_column(String(20), comment="smtp or file")
    created_dt: Mapped[created_dt]
