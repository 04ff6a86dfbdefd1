"""The double-entry ledger on the real database (reliability.md §0 rule 2, T11, T13).

What the clearing house and its auditors rely on: a transaction posts only when it balances,
in whole fen; the ledger refuses UPDATE and DELETE in the database itself; a reversal undoes a
transaction entry for entry; the trial balance is the sum of every entry and balances.
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Float, Numeric, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from registry.clearing import ledger
from registry.clearing.models import JournalEntry, JournalTransaction
from registry.core.db import Base
from registry.models import import_all_models

DAY = date(2026, 3, 31)
ORG = uuid.UUID("00000000-0000-4000-8000-000000000001")


def post(session: Session, *entries: tuple[ledger.AccountRef, int]) -> JournalTransaction:
    return ledger.post(
        session,
        kind="test",
        subject_type="test",
        subject_id=uuid.uuid4(),
        description="a test posting",
        effective_date=DAY,
        entries=entries,
    )


def test_a_statement_and_its_payment_balance_and_move_the_accounts(session: Session) -> None:
    receivable = ledger.receivable(ORG, "丙科技")
    post(session, (receivable, 10_000), (ledger.fixed(ledger.BILLED), -10_000))
    post(
        session,
        (ledger.fixed(ledger.CASH), 12_000),
        (receivable, -10_000),
        (ledger.licensee_credit(ORG, "丙科技"), -2_000),
        (ledger.fixed(ledger.BILLED), 10_000),
        (ledger.fixed(ledger.RECEIVED), -10_000),
    )
    assert ledger.balance(session, receivable.code) == 0
    assert ledger.balance(session, ledger.CASH) == 12_000
    assert ledger.balance(session, f"credit:{ORG}") == -2_000  # held for the licensee
    assert ledger.balance(session, ledger.RECEIVED) == -10_000
    trial = ledger.trial_balance(session)
    assert trial["balanced"] is True
    assert trial["total_debits"] == trial["total_credits"] == 32_000


@pytest.mark.parametrize(
    "amounts",
    [(100, -99), (100,), (), (1.5, -1.5), (True, -1)],
    ids=["off-by-a-fen", "one-sided", "empty", "float", "bool"],
)
def test_unbalanced_or_inexact_postings_are_refused(session: Session, amounts: tuple) -> None:
    refs = [ledger.fixed(ledger.CASH), ledger.fixed(ledger.SUSPENSE)]
    before = session.scalar(select(func.count()).select_from(JournalEntry))
    with pytest.raises(ledger.Unbalanced):
        post(session, *zip(refs, amounts, strict=False))
    assert session.scalar(select(func.count()).select_from(JournalEntry)) == before


def test_a_reversal_undoes_a_transaction_entry_for_entry(session: Session) -> None:
    original = post(
        session, (ledger.fixed(ledger.CASH), 500), (ledger.fixed(ledger.SUSPENSE), -500)
    )
    reversal = ledger.reverse(session, original, description="wrong line", effective_date=DAY)
    assert reversal.reverses_id == original.id
    assert ledger.balance(session, ledger.CASH) == 0
    assert ledger.balance(session, ledger.SUSPENSE) == 0
    assert ledger.trial_balance(session)["balanced"] is True


@pytest.mark.parametrize("table", ["journal_entries", "journal_transactions"])
def test_the_database_refuses_to_rewrite_the_ledger(session: Session, table: str) -> None:
    post(session, (ledger.fixed(ledger.CASH), 700), (ledger.fixed(ledger.SUSPENSE), -700))
    column = "amount = 1" if table == "journal_entries" else "description = 'forged'"
    # The table names come from the parametrisation above, not from input.
    for statement in (f"UPDATE {table} SET {column}", f"DELETE FROM {table}"):  # noqa: S608
        with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
            session.execute(text(statement))
    assert ledger.trial_balance(session)["total_debits"] == 700


def test_accounts_are_created_once(session: Session) -> None:
    first = ledger.account(session, ledger.payable("organisation", ORG, "甲大学"))
    again = ledger.account(session, ledger.payable("organisation", ORG, "甲大学"))
    assert first.id == again.id


def test_money_columns_are_bigint_fen_never_float_or_numeric() -> None:
    """T13: every clearing amount column is a BIGINT of fen."""
    import_all_models()
    offending = []
    for table in Base.metadata.sorted_tables:
        if not table.name.startswith(
            ("journal_", "statements", "payments", "settlement_", "royalty_", "bank_")
        ):
            continue
        for column in table.columns:
            if isinstance(column.type, Float | Numeric):
                offending.append(f"{table.name}.{column.name}")
            money = any(word in column.name for word in ("amount", "total", "royalty", "due"))
            when = column.name.endswith(("_date", "_dt"))
            if money and not when and not isinstance(column.type, BigInteger):
                offending.append(f"{table.name}.{column.name}: {column.type}")
    assert offending == []


# Each example rolls its own savepoint back, so sharing the test's session is safe.
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=6))
def test_any_split_posting_balances_and_sums(session: Session, parts: list[int]) -> None:
    """Cash in, split to several payees: the trial balance stays balanced to the fen."""
    with session.begin_nested() as savepoint:
        entries = [(ledger.fixed(ledger.CASH), sum(parts))]
        entries += [
            (ledger.payable("inventor", uuid.uuid4(), f"发明人{index}"), -part)
            for index, part in enumerate(parts)
        ]
        post(session, *entries)
        trial = ledger.trial_balance(session)
        assert trial["balanced"] is True
        assert trial["total_debits"] == sum(parts)
        savepoint.rollback()
