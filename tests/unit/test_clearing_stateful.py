"""T11: random take-ups, reports, payments, settlements and reversals keep the books exact.

A Hypothesis state machine drives the clearing services on the real database (SQLite, or
PostgreSQL with REGISTRY_TEST_DATABASE_URL). After every step: the trial balance is zero, no
statement is paid beyond its amount, cash never goes negative, and the money settled (payee
lines plus fees of live runs) equals the applied part of the payments those runs settled.
Each example runs in a savepoint rolled back afterwards; the seed is printed by Hypothesis on
failure (reliability.md §0 rule 10) and contracts are issued deferred (no rendering here).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation
from registry.clearing import ledger, payments, reports, settlement
from registry.clearing.models import (
    JournalEntry,
    Payment,
    SettledPayment,
    SettlementLine,
    SettlementRun,
    SettlementStatus,
    Statement,
    StatementStatus,
)
from registry.contracts.issuing import office
from registry.core import clock
from registry.core.errors import RegistryError
from registry.licences.models import Licence
from registry.patents.models import Patent
from tests.factories import Factory
from tests.factories import clearing as cf
from tests.factories import licences as lf
from tests.factories.offers import fast_admin

ROYALTY = {
    "kind": "entry_plus_running",
    "entry_fee": "1000.00",
    "base": "net_sales",
    "rate": "4.5",
    "reporting_period": "quarterly",
    "payment_due_days": 30,
    "late_interest_rate": "5",
}


def test_the_books_stay_exact_under_random_operations(
    app: Flask, factory: Factory, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(office(app), "mode", "deferred")
    admin = fast_admin(factory)
    tto = factory.user(factory.organisation("university"), "tto")
    university = session.get_one(Organisation, tto.organisation_id)
    offers = [lf.published_offer(factory, tto, royalty=ROYALTY) for _ in range(3)]
    for offer in offers:
        # A university's part goes half to its inventors (STL Art. 45): it needs some.
        cf.set_inventors(
            factory,
            admin,
            session.get_one(Patent, offer.patent_id),
            [("张三", university, "60"), ("李四", university, "40")],
        )
    smes = [lf.enterprise_licensee(factory)[1] for _ in range(2)]
    session.flush()

    def attempt(operation: Any) -> None:
        """Run a service call as a request would: a refusal rolls back whatever it did."""
        savepoint = session.begin_nested()
        try:
            operation()
        except RegistryError:
            savepoint.rollback()
        else:
            savepoint.commit()

    class Books(RuleBasedStateMachine):
        @initialize()
        def begin(self) -> None:
            self.savepoint = session.begin_nested()
            self.licences: list[uuid.UUID] = []
            self.taken: set[tuple[int, int]] = set()
            # Two licences from the start, so that most steps have money to move.
            self.take_up(0, 0, 300)
            self.take_up(1, 1, 200)

        def teardown(self) -> None:
            self.savepoint.rollback()

        @rule(offer=st.integers(0, 2), sme=st.integers(0, 1), days=st.integers(100, 400))
        def take_up(self, offer: int, sme: int, days: int) -> None:
            if (offer, sme) in self.taken:
                return
            self.taken.add((offer, sme))
            licence = lf.take_up(factory, smes[sme], offers[offer])
            licence.effective_date -= timedelta(days=days)
            licence.end_date -= timedelta(days=days)
            session.flush()
            self.licences.append(licence.id)

        @precondition(lambda self: self.licences)
        @rule(data=st.data(), sales=st.integers(0, 10**9))
        def report(self, data: st.DataObject, sales: int) -> None:
            licence = session.get_one(Licence, data.draw(st.sampled_from(self.licences)))
            user = session.get_one(type(smes[0]), licence.licensee_user_id)
            schedule = reports.build_schedule(
                licence.terms,
                effective_date=licence.effective_date,
                end_date=licence.end_date,
                is_sme=False,
            )
            ended = [p for p in schedule.periods if p.period_end < clock.today()]
            if not ended:
                return
            period = data.draw(st.sampled_from(ended))
            body: dict[str, Any] = {
                "period_start": period.period_start,
                "period_end": period.period_end,
                "net_sales": sales,
            }
            if data.draw(st.booleans()):
                body["correction_reason"] = "更正"
            # Already reported, nothing to correct: refused, and (as a request would be)
            # rolled back.
            attempt(
                lambda: reports.file_report(
                    session, actor=factory.actor(user), licence_id=licence.id, data=body
                )
            )

        @rule(data=st.data(), share=st.integers(1, 150), by_admin=st.booleans())
        def pay(self, data: st.DataObject, share: int, by_admin: bool) -> None:
            open_ = session.scalars(
                select(Statement).where(Statement.status == StatementStatus.OPEN)
            ).all()
            if not open_:
                return
            statement = data.draw(st.sampled_from(sorted(open_, key=lambda s: s.number)))
            licence = session.get_one(Licence, statement.licence_id)
            payer = admin if by_admin else session.get_one(type(admin), licence.licensee_user_id)
            amount = max(1, statement.amount_due * share // 100)
            payments.record_payment(
                session,
                actor=factory.actor(payer),
                statement_id=statement.id,
                amount=amount,
                paid_date=clock.today() - timedelta(days=data.draw(st.integers(0, 5))),
                reference="stateful",
            )

        @rule(days=st.integers(0, 10))
        def settle(self, days: int) -> None:
            today = clock.today()
            attempt(
                lambda: settlement.run_settlement(
                    session,
                    actor=factory.actor(admin),
                    period_start=today - timedelta(days=days),
                    period_end=today,
                    fee_rate=250,
                    minimum_payout=5_000,
                )
            )

        @rule(data=st.data())
        def reverse(self, data: st.DataObject) -> None:
            live = session.scalars(
                select(SettlementRun).where(
                    SettlementRun.status == SettlementStatus.COMPLETED,
                    SettlementRun.reverses_id.is_(None),
                )
            ).all()
            if not live:
                return
            run = data.draw(st.sampled_from(sorted(live, key=lambda r: r.number)))
            settlement.reverse_settlement(
                session, actor=factory.actor(admin), run_id=run.id, minimum_payout=5_000
            )

        @precondition(lambda self: session.scalar(select(func.count(JournalEntry.id))))
        @rule()
        def tamper(self) -> None:
            with pytest.raises(DBAPIError), session.begin_nested():
                session.execute(text("UPDATE journal_entries SET amount = amount + 1"))

        @invariant()
        def books_are_exact(self) -> None:
            session.flush()
            trial = ledger.trial_balance(session)
            assert trial["balanced"], trial
            assert ledger.balance(session, ledger.CASH) >= 0
            over = session.scalar(
                select(func.count()).where(Statement.amount_paid > Statement.amount_due)
            )
            assert over == 0
            settled_applied = session.scalar(
                select(func.coalesce(func.sum(Payment.applied), 0))
                .join(SettledPayment, SettledPayment.payment_id == Payment.id)
                .where(SettledPayment.reversed_dt.is_(None))
            )
            all_lines = session.scalar(select(func.coalesce(func.sum(SettlementLine.amount), 0)))
            # Every run's lines (a reversal's are the negatives of its run's) net to exactly
            # what the live settlements took in; fees are lines of the platform.
            assert all_lines == settled_applied

    run_state_machine_as_test(
        Books,
        settings=settings(
            max_examples=30,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
