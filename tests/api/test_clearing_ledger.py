"""The ledger API and a licensee's statement of account over HTTP (issue 5 §4, §6).

The trial balance lists every account with debits, credits and balance as decimal strings and
says whether the books balance; an account's entries page through its transactions, and they
sum to the balance the trial balance shows. Both are for admins and auditors only. A
licensee's statement of account shows its statements, payments, what it owes and the credit
held for it, to the licensee itself, admins and auditors.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from registry.clearing.models import Payment, Statement
from registry.core import clock
from tests.conftest import Api
from tests.factories import Factory
from tests.factories import clearing as cf
from tests.factories import licences as lf

MONEY = re.compile(r"^-?\d+\.\d{2}$")


@dataclass
class Books:
    deal: cf.Licensed
    statement: Statement
    payments: list[Payment]
    admin: Api
    auditor: Api
    tto: Api
    licensee: Api
    other_licensee: Api
    anonymous: Api
    session: Session


@pytest.fixture
def books(factory: Factory, api: Api, session: Session) -> Books:
    deal = cf.licensed_patent(factory, "enterprise")
    issued = cf.statement(factory, deal.licence, 100_000)
    payments = [
        cf.pay(factory, deal.admin, issued, 60_000, reference="BANK-A"),
        cf.pay(factory, deal.admin, issued, 55_000, reference="BANK-B"),  # 15,000 over: credit
    ]
    audit_body = factory.organisation("audit_body")
    _, _, other_token = lf.enterprise_licensee(factory)
    return Books(
        deal=deal,
        statement=issued,
        payments=payments,
        admin=api.as_(factory.token(deal.admin)),
        auditor=api.as_(factory.token(factory.user(audit_body, "auditor"))),
        tto=api.as_(factory.token(deal.tto)),
        licensee=api.as_(factory.token(deal.licensee_user)),
        other_licensee=api.as_(other_token),
        anonymous=api,
        session=session,
    )


def fen(text: str) -> int:
    return int(Decimal(text) * 100)


def test_trial_balance_shape_and_figures(books: Books) -> None:
    body = books.auditor.get("/ledger/trial-balance").get_json()
    assert body["balanced"] is True
    assert body["total_debits"] == body["total_credits"]
    accounts = {a["code"]: a for a in body["accounts"]}
    org = books.deal.licensee.id
    # Billed 1,000.00; received 1,150.00 of which 1,000.00 applied and 150.00 held as credit.
    assert accounts["cash"]["balance"] == "1150.00"
    assert accounts[f"receivable:{org}"]["balance"] == "0.00"
    assert accounts[f"credit:{org}"]["balance"] == "-150.00"
    assert accounts["royalties:received"]["balance"] == "-1000.00"
    for account in body["accounts"]:
        assert set(account) == {"code", "name", "kind", "debits", "credits", "balance"}
        for name in ("debits", "credits", "balance"):
            assert MONEY.match(account[name]), account
        assert fen(account["debits"]) - fen(account["credits"]) == fen(account["balance"])
    assert sum(fen(a["balance"]) for a in body["accounts"]) == 0
    assert books.admin.get("/ledger/trial-balance").get_json() == body


def test_account_entries_page_and_sum_to_the_balance(books: Books) -> None:
    code = "cash"
    first = books.admin.get(f"/ledger/accounts/{code}/entries?page_size=1")
    assert first.status_code == 200
    assert json.loads(first.headers["X-Pagination"])["total"] == 2
    [entry] = first.get_json()
    assert entry["kind"] == "payment"
    assert entry["side"] == "debit"
    assert entry["subject_type"] == "payment"
    assert entry["subject_id"] == str(books.payments[0].id)
    assert MONEY.match(entry["amount"])
    entries = books.auditor.get(f"/ledger/accounts/{code}/entries").get_json()
    assert [e["amount"] for e in entries] == ["600.00", "550.00"]
    credit = books.admin.get(f"/ledger/accounts/credit:{books.deal.licensee.id}/entries")
    [held] = credit.get_json()
    assert (held["side"], held["amount"]) == ("credit", "-150.00")
    assert books.admin.get("/ledger/accounts/payable:nobody/entries").status_code == 404


@pytest.mark.parametrize(
    ("who", "status"),
    [("admin", 200), ("auditor", 200), ("tto", 403), ("licensee", 403), ("anonymous", 401)],
)
def test_ledger_access(books: Books, who: str, status: int) -> None:
    client: Api = getattr(books, who)
    assert client.get("/ledger/trial-balance").status_code == status
    assert client.get("/ledger/accounts/cash/entries").status_code == status


def test_licensee_statement_of_account(books: Books) -> None:
    org = books.deal.licensee.id
    body = books.licensee.get(f"/licensees/{org}/account").get_json()
    assert body["organisation_id"] == str(org)
    assert (body["balance_due"], body["credit_balance"]) == ("0.00", "150.00")
    [statement] = body["statements"]
    assert statement["number"] == books.statement.number
    assert statement["licence_reference"] == books.deal.licence.reference
    assert (statement["amount_due"], statement["amount_paid"]) == ("1000.00", "1000.00")
    assert statement["status"] == "paid"
    assert [(p["reference"], p["amount"], p["applied"], p["credit"]) for p in body["payments"]] == [
        ("BANK-A", "600.00", "600.00", "0.00"),
        ("BANK-B", "550.00", "400.00", "150.00"),
    ]
    assert all(p["statement_number"] == books.statement.number for p in body["payments"])
    assert all(p["paid_date"] == clock.today().isoformat() for p in body["payments"])
    assert books.admin.get(f"/licensees/{org}/account").get_json() == body
    assert books.auditor.get(f"/licensees/{org}/account").get_json() == body


@pytest.mark.parametrize(
    ("who", "status"), [("tto", 403), ("other_licensee", 404), ("anonymous", 401)]
)
def test_licensee_account_refused(books: Books, who: str, status: int) -> None:
    client: Api = getattr(books, who)
    assert client.get(f"/licensees/{books.deal.licensee.id}/account").status_code == status


def test_unknown_licensee_account_is_404(books: Books, factory: Factory) -> None:
    assert books.admin.get(f"/licensees/{factory.new_id()}/account").status_code == 404
