"""Payments through the API: partial, over (credit carried forward), late (interest per the
terms), licence activation, scope and every refused input changing nothing.

Worked figures: a lump sum of CNY 10,000.00 due 30 days after take-up, late interest 3.65 % a
year (0.01 % a day, actual/365, registry.clearing.royalties):

* paid 10 days late in full: 10,000.00 × 0.0365 × 10 / 365 = CNY 10.00 interest;
* paid 4,000.00 10 days late, then 6,000.00 20 days late: 4.00 + 12.00 interest;
* paid 12,000.00 on time: 10,000.00 applied, 2,000.00 credit, which pays the next statement.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation, User
from registry.audit.models import AuditEvent
from registry.clearing import ledger
from registry.clearing.credits import credit_balance
from registry.clearing.models import (
    BankLine,
    JournalEntry,
    OutboxMessage,
    Payment,
    Statement,
    StatementKind,
    StatementStatus,
)
from registry.clearing.statements import void_statement
from registry.core import clock
from registry.licences.models import Licence, LicenceStatus
from tests.conftest import Api
from tests.factories import Factory
from tests.factories import licences as lf

LUMP_SUM = {
    "kind": "lump_sum",
    "amount": "10000.00",
    "payment_due_days": 30,
    "late_interest_rate": "3.65",
}


@dataclass
class Deal:
    """A licence taken up on a lump-sum offer, its parties, tokens and upfront statement."""

    licence: Licence
    statement: Statement
    licensee: Organisation
    licensee_user: User
    licensee_token: str
    tto_token: str
    admin: User
    admin_token: str
    auditor_token: str


def upfront_statements(factory: Factory, licence: Licence) -> list[Statement]:
    """The licence's statements issued at take-up (by the clearing receiver of
    ``licence_taken_up``), in number order."""
    found = factory.session.scalars(
        select(Statement).where(Statement.licence_id == licence.id).order_by(Statement.number)
    ).all()
    assert found, "take-up issued no statement"
    return list(found)


def make_deal(factory: Factory, royalty: dict[str, Any] | None = None) -> Deal:
    university = factory.organisation("university")
    tto = factory.user(university, "tto")
    offer = lf.published_offer(factory, tto, royalty=royalty or LUMP_SUM)
    licensee, user, token = lf.enterprise_licensee(factory, is_sme=False)
    licence = lf.take_up(factory, user, offer)
    statements = upfront_statements(factory, licence)
    admin = factory.admin()
    auditor = factory.user(factory.organisation("audit_body"), "auditor")
    factory.session.flush()
    return Deal(
        licence=licence,
        statement=statements[0],
        licensee=licensee,
        licensee_user=user,
        licensee_token=token,
        tto_token=factory.token(tto),
        admin=admin,
        admin_token=factory.token(admin),
        auditor_token=factory.token(auditor),
    )


def pay(
    api: Api,
    token: str | None,
    statement_id: Any,
    amount: Any,
    paid_date: date | str | None = None,
    *,
    key: str | None = None,
    reference: str | None = "ST payment",
) -> Any:
    body: dict[str, Any] = {
        "statement_id": str(statement_id),
        "amount": amount,
        "paid_date": str(paid_date or clock.today()),
    }
    if reference is not None:
        body["reference"] = reference
    headers = {"Idempotency-Key": key} if key else {}
    return api.as_(token).post("/payments", json=body, headers=headers)


def assert_balanced(session: Session) -> dict[str, Any]:
    session.flush()
    trial = ledger.trial_balance(session)
    assert trial["balanced"], trial
    return trial


def state(session: Session) -> dict[str, Any]:
    """Everything a refused request must leave as it was."""
    session.expire_all()

    def count(model: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)

    return {
        "payments": count(Payment),
        "statements": count(Statement),
        "entries": count(JournalEntry),
        "audit": count(AuditEvent),
        "bank_lines": count(BankLine),
        "outbox": count(OutboxMessage),
        "paid": int(session.scalar(select(func.sum(Statement.amount_paid))) or 0),
        "trial": ledger.trial_balance(session),
        "licences": sorted(str(s) for s in session.scalars(select(Licence.status))),
    }


def later(monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    monkeypatch.setattr(clock, "today", lambda: day)


def reload(session: Session, model: Any, id_: Any) -> Any:
    session.expire_all()
    return session.get(model, id_)


# The happy paths with worked figures ------------------------------------------------------------


def test_partial_then_full_payment_activates_the_licence(
    api: Api, factory: Factory, session: Session
) -> None:
    deal = make_deal(factory)
    assert deal.licence.status is LicenceStatus.PENDING_PAYMENT
    assert deal.statement.kind is StatementKind.LUMP_SUM
    assert deal.statement.amount_due == 1_000_000

    first = pay(api, deal.licensee_token, deal.statement.id, "4000.00", reference="ST partial")
    assert first.status_code == 201, first.json
    assert first.json["amount"] == "4000.00"
    assert first.json["applied"] == "4000.00"
    assert first.json["credit"] == "0.00"
    assert first.json["interest_statement_id"] is None
    statement = reload(session, Statement, deal.statement.id)
    assert (statement.amount_paid, statement.status) == (400_000, StatementStatus.OPEN)
    assert reload(session, Licence, deal.licence.id).status is LicenceStatus.PENDING_PAYMENT

    second = pay(api, deal.licensee_token, deal.statement.id, "6000.00")
    assert second.status_code == 201, second.json
    assert second.json["applied"] == "6000.00"
    statement = reload(session, Statement, deal.statement.id)
    assert (statement.amount_paid, statement.status) == (1_000_000, StatementStatus.PAID)
    assert reload(session, Licence, deal.licence.id).status is LicenceStatus.ACTIVE
    activated = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "licence.activated", AuditEvent.subject_id == str(deal.licence.id)
        )
    ).all()
    assert len(activated) == 1
    recorded = session.scalar(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "payment.recorded")
    )
    assert recorded == 2

    trial = assert_balanced(session)
    balances = {a["code"]: a["balance"] for a in trial["accounts"]}
    assert balances[ledger.CASH] == 1_000_000
    assert balances[ledger.RECEIVED] == -1_000_000
    assert balances.get(ledger.BILLED, 0) == 0
    assert balances.get(f"receivable:{deal.licensee.id}", 0) == 0

    listed = api.as_(deal.licensee_token).get(f"/payments?statement_id={deal.statement.id}")
    assert listed.status_code == 200
    assert sorted(p["amount"] for p in listed.json) == ["4000.00", "6000.00"]


def test_overpayment_is_held_as_credit_and_pays_the_next_statement(
    api: Api, factory: Factory, session: Session
) -> None:
    from registry.clearing.statements import issue_statement

    deal = make_deal(factory)
    answer = pay(api, deal.licensee_token, deal.statement.id, "12000.00")
    assert answer.status_code == 201, answer.json
    assert (answer.json["applied"], answer.json["credit"]) == ("10000.00", "2000.00")
    assert credit_balance(session, deal.licensee.id) == 200_000
    assert reload(session, Licence, deal.licence.id).status is LicenceStatus.ACTIVE
    assert_balanced(session)

    # The next statement (CNY 500.00) is paid from the credit as soon as it is issued.
    licence = reload(session, Licence, deal.licence.id)
    following = issue_statement(
        session,
        licence=licence,
        kind=StatementKind.MINIMUM_TRUE_UP,
        amount=50_000,
        due_date=clock.today() + timedelta(days=30),
        actor=factory.actor(deal.licensee_user),
    )
    session.flush()
    assert following.status is StatementStatus.PAID
    assert following.amount_paid == 50_000
    applied = session.scalars(select(Payment).where(Payment.statement_id == following.id)).one()
    assert (applied.source.value, applied.amount, applied.credit) == ("credit", 50_000, 0)
    assert credit_balance(session, deal.licensee.id) == 150_000
    trial = assert_balanced(session)
    balances = {a["code"]: a["balance"] for a in trial["accounts"]}
    assert balances[ledger.CASH] == 1_200_000
    assert balances[ledger.RECEIVED] == -1_050_000
    assert balances[f"credit:{deal.licensee.id}"] == -150_000

    # The credit is not a payment of the licensor's royalty: the list shows both parts.
    listed = api.as_(deal.admin_token).get(f"/payments?licence_id={deal.licence.id}")
    assert sorted((p["source"], p["applied"], p["credit"]) for p in listed.json) == [
        ("api", "10000.00", "2000.00"),
        ("credit", "500.00", "0.00"),
    ]


def test_late_payment_bills_interest_due_immediately(
    api: Api, factory: Factory, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal = make_deal(factory)
    due = deal.statement.due_date
    later(monkeypatch, due + timedelta(days=12))

    answer = pay(api, deal.licensee_token, deal.statement.id, "10000.00", due + timedelta(days=10))
    assert answer.status_code == 201, answer.json
    interest = reload(session, Statement, uuid.UUID(answer.json["interest_statement_id"]))
    # 10,000.00 × 3.65 % × 10 / 365 = 10.00
    assert interest.kind is StatementKind.INTEREST
    assert interest.amount_due == 1_000
    assert interest.due_date == due + timedelta(days=12)  # the day it is recorded
    assert interest.status is StatementStatus.OPEN
    assert interest.breakdown["days_late"] == 10
    assert interest.breakdown["payment_id"] == answer.json["id"]
    # The lump sum is paid: the licence is obtained; the interest is a debt of its own.
    assert reload(session, Licence, deal.licence.id).status is LicenceStatus.ACTIVE
    shown = api.as_(deal.licensee_token).get(f"/payments/{answer.json['id']}")
    assert shown.json["interest_statement_id"] == str(interest.id)

    # Paying the interest late again bills no interest on interest.
    again = pay(api, deal.licensee_token, interest.id, "10.00")
    assert again.status_code == 201, again.json
    assert again.json["interest_statement_id"] is None
    assert reload(session, Statement, interest.id).status is StatementStatus.PAID
    assert_balanced(session)


def test_partial_late_payments_each_bill_interest_on_what_they_pay(
    api: Api, factory: Factory, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal = make_deal(factory)
    due = deal.statement.due_date
    later(monkeypatch, due + timedelta(days=20))
    first = pay(api, deal.licensee_token, deal.statement.id, "4000.00", due + timedelta(days=10))
    second = pay(api, deal.licensee_token, deal.statement.id, "6000.00", due + timedelta(days=20))
    assert first.status_code == second.status_code == 201
    amounts = [
        reload(session, Statement, uuid.UUID(a.json["interest_statement_id"])).amount_due
        for a in (first, second)
    ]
    assert amounts == [400, 1_200]  # 4,000 × 0.01 % × 10 = 4.00; 6,000 × 0.01 % × 20 = 12.00
    assert_balanced(session)


def test_late_overpayment_pays_its_own_interest_from_the_credit(
    api: Api, factory: Factory, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    deal = make_deal(factory)
    due = deal.statement.due_date
    later(monkeypatch, due + timedelta(days=10))
    answer = pay(api, deal.licensee_token, deal.statement.id, "10100.00", due + timedelta(days=10))
    assert answer.status_code == 201, answer.json
    assert (answer.json["applied"], answer.json["credit"]) == ("10000.00", "100.00")
    interest = reload(session, Statement, uuid.UUID(answer.json["interest_statement_id"]))
    assert (interest.amount_due, interest.status) == (1_000, StatementStatus.PAID)
    assert credit_balance(session, deal.licensee.id) == 9_000  # 100.00 − 10.00
    assert_balanced(session)


def test_paying_the_instalment_due_at_take_up_activates_the_licence(
    api: Api, factory: Factory, session: Session
) -> None:
    royalty = {
        "kind": "lump_sum",
        "amount": "10000.00",
        "instalments": [
            {"due_months": 0, "amount": "4000.00"},
            {"due_months": 12, "amount": "6000.00"},
        ],
    }
    deal = make_deal(factory, royalty)
    first, second = upfront_statements(factory, deal.licence)
    assert (first.instalment_number, first.amount_due) == (1, 400_000)
    assert (second.instalment_number, second.amount_due) == (2, 600_000)
    assert deal.licence.status is LicenceStatus.PENDING_PAYMENT

    # The later instalment paid early does not obtain the licence (PL Art. 51(1))…
    assert pay(api, deal.licensee_token, second.id, "6000.00").status_code == 201
    assert reload(session, Licence, deal.licence.id).status is LicenceStatus.PENDING_PAYMENT
    # …the one due at take-up does.
    assert pay(api, deal.licensee_token, first.id, "4000.00").status_code == 201
    assert reload(session, Licence, deal.licence.id).status is LicenceStatus.ACTIVE
    assert_balanced(session)


def test_admin_records_a_receipt_and_an_idempotent_retry_replays_it(
    api: Api, factory: Factory, session: Session
) -> None:
    deal = make_deal(factory)
    key = str(uuid.uuid4())
    first = pay(api, deal.admin_token, deal.statement.id, "2500.00", key=key)
    retry = pay(api, deal.admin_token, deal.statement.id, "2500.00", key=key)
    assert first.status_code == retry.status_code == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json == first.json
    assert reload(session, Statement, deal.statement.id).amount_paid == 250_000
    assert session.scalar(select(func.count()).select_from(Payment)) == 1


# Refusals: each a clear 4xx that changes nothing ------------------------------------------------


def test_bad_payments_are_refused_and_change_nothing(
    api: Api, factory: Factory, session: Session
) -> None:
    deal = make_deal(factory)
    other = make_deal(factory)
    key = str(uuid.uuid4())
    assert pay(api, deal.licensee_token, deal.statement.id, "100.00", key=key).status_code == 201
    paid_in_full = other.statement
    pay(api, other.admin_token, paid_in_full.id, "10000.00")
    void = deal.statement
    before = state(session)

    tomorrow = clock.today() + timedelta(days=1)
    cases = [
        (deal.licensee_token, other.statement.id, "10.00", None, None, 404),  # another's
        (deal.licensee_token, uuid.uuid4(), "10.00", None, None, 404),  # no such statement
        (deal.licensee_token, deal.statement.id, "0.00", None, None, 422),
        (deal.licensee_token, deal.statement.id, "-5.00", None, None, 422),
        (deal.licensee_token, deal.statement.id, 12.5, None, None, 422),  # a float
        (deal.licensee_token, deal.statement.id, "1.001", None, None, 422),
        (deal.licensee_token, deal.statement.id, "10.00", tomorrow, None, 422),
        (deal.licensee_token, deal.statement.id, "200.00", None, key, 422),  # key reused
        (other.admin_token, paid_in_full.id, "10.00", None, None, 409),  # already paid
        (deal.tto_token, deal.statement.id, "10.00", None, None, 403),
        (deal.auditor_token, deal.statement.id, "10.00", None, None, 403),
        (None, deal.statement.id, "10.00", None, None, 401),
    ]
    for token, statement_id, amount, paid_date, reuse, status in cases:
        answer = pay(api, token, statement_id, amount, paid_date, key=reuse)
        assert answer.status_code == status, (amount, answer.json)
        assert answer.json["message"]
    assert state(session)["payments"] == before["payments"]
    assert state(session) == before

    void_statement(session, void, reason="replaced", actor=factory.actor(deal.admin))
    before = state(session)
    answer = pay(api, deal.licensee_token, void.id, "10.00")
    assert answer.status_code == 409
    assert answer.json["code"] == "statement_void"
    assert state(session) == before

    missing = api.as_(deal.licensee_token).post("/payments", json={"amount": "1.00"})
    assert missing.status_code == 422
    assert {"statement_id", "paid_date"} <= {e["field"] for e in missing.json["errors"]}
    assert state(session) == before


def test_payments_are_listed_within_the_callers_scope(api: Api, factory: Factory) -> None:
    deal = make_deal(factory)
    other = make_deal(factory)
    mine = pay(api, deal.licensee_token, deal.statement.id, "100.00").json["id"]
    theirs = pay(api, other.licensee_token, other.statement.id, "200.00").json["id"]

    def ids(token: str, query: str = "") -> set[str]:
        answer = api.as_(token).get(f"/payments{query}")
        assert answer.status_code == 200, answer.json
        return {p["id"] for p in answer.json}

    assert ids(deal.licensee_token) == {mine}
    assert ids(deal.tto_token) == {mine}  # the licensor's TTO sees its licences' payments
    assert {mine, theirs} <= ids(deal.admin_token)
    assert {mine, theirs} <= ids(deal.auditor_token)
    assert ids(deal.admin_token, f"?licence_id={other.licence.id}") == {theirs}
    assert api.as_(deal.licensee_token).get(f"/payments/{theirs}").status_code == 404
    assert api.as_(deal.tto_token).get(f"/payments/{theirs}").status_code == 404
    assert api.as_(other.tto_token).get(f"/payments/{theirs}").status_code == 200
    assert api.as_(None).get("/payments").status_code == 401
