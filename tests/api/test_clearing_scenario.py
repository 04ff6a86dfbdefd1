"""Issue 5's "done when", through the API from take-up to payee statements.

A running-royalty licence with an entry fee and an annual minimum reports two quarters; the
licensee pays the entry fee and one quarter in full and the other partly and late (interest is
billed); a settlement pays two co-owners (income shares differing from title shares) and their
inventors (a 50 % and a 70 % reward policy); every payee statement traces back to the payments;
payee lines plus fees equal the money received to the fen; the trial balance is zero.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.clearing import ledger
from registry.clearing.models import Payment
from registry.core import clock
from registry.licences.models import Licence
from registry.patents.models import Patent
from tests.conftest import Api
from tests.factories import Factory
from tests.factories import clearing as cf
from tests.factories import licences as lf
from tests.factories.offers import fast_admin

ROYALTY = {
    "kind": "entry_plus_running",
    "entry_fee": "20000.00",
    "base": "net_sales",
    "rate": "5",
    "annual_minimum": "30000.00",
    "reporting_period": "quarterly",
    "payment_due_days": 30,
    "late_interest_rate": "7.3",
}


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def pay(client: Api, statement_id: str, amount: str, reference: str) -> dict[str, Any]:
    response = client.post(
        "/payments",
        json={
            "statement_id": statement_id,
            "amount": amount,
            "paid_date": clock.today().isoformat(),
            "reference": reference,
        },
        headers=key(),
    )
    assert response.status_code == 201, response.json
    return dict(response.json)


def test_report_pay_settle_and_trace(factory: Factory, session: Session, api: Api) -> None:
    admin = fast_admin(factory)
    admin_api = api.as_(factory.token(admin))
    university = factory.organisation("university", name="甲大学")
    institute = factory.organisation("institute", name="乙研究所")
    tto = factory.user(university, "tto")
    offer = lf.published_offer(factory, tto, royalty=ROYALTY)
    patent = session.get_one(Patent, offer.patent_id)
    _, _, sme_token = lf.enterprise_licensee(factory, name="丙科技有限公司", is_sme=False)
    sme = api.as_(sme_token)

    taken = sme.post(f"/offers/{offer.id}/take-up", json=lf.notice(), headers=key())
    assert taken.status_code == 201, taken.json
    licence_id = taken.json["id"]
    # Taken 200 days ago, so that two quarters have ended and their payments are late.
    licence = session.get_one(Licence, uuid.UUID(licence_id))
    licence.effective_date -= timedelta(days=200)
    licence.end_date -= timedelta(days=200)
    session.flush()

    # Co-owners: title 50/50, income 60/40; inventors three and two; policies 50 % and 70 %.
    cf.set_owners(
        factory,
        admin,
        patent,
        [
            {"organisation_id": university.id, "title_share": "50", "income_share": "60"},
            {"organisation_id": institute.id, "title_share": "50", "income_share": "40"},
        ],
    )
    cf.set_inventors(
        factory,
        admin,
        patent,
        [
            ("张三", university, "30"),
            ("李四", university, "18"),
            ("王五", university, "12"),
            ("赵六", institute, "24"),
            ("钱七", institute, "16"),
        ],
    )
    cf.reward_policy(factory, admin, university, "50")
    cf.reward_policy(factory, admin, institute, "70")

    schedule = sme.get(f"/licences/{licence_id}/schedule").json
    ended = [p for p in schedule["periods"] if p["status"] in ("due", "late")][:2]
    assert len(ended) == 2
    # Quarter one: CNY 200,000.00 × 5 % = 10,000.00; quarter two: 123,456.78 × 5 % = 6,172.84.
    statements = []
    for period, sales, due in zip(
        ended, ("200000.00", "123456.78"), ("10000.00", "6172.84"), strict=True
    ):
        filed = sme.post(
            f"/licences/{licence_id}/reports",
            json={
                "period_start": period["period_start"],
                "period_end": period["period_end"],
                "net_sales": sales,
            },
            headers=key(),
        )
        assert filed.status_code == 201, filed.json
        assert filed.json["royalty_due"] == due
        statements.append(filed.json["statement_id"])

    (entry_fee,) = [i for i in schedule["items"] if i["kind"] == "entry_fee"]
    paid = [
        pay(sme, str(entry_fee["statement_id"]), "20000.00", "银行转账 A-1"),
        pay(sme, statements[0], "10000.00", "银行转账 A-2"),
        pay(sme, statements[1], "3000.00", "银行转账 A-3"),  # partly, and late
    ]
    late = sme.get(f"/statements/{statements[1]}").json
    assert late["status"] == "overdue"
    assert late["amount_paid"] == "3000.00"
    assert paid[2]["interest_statement_id"] is not None  # late interest billed
    interest = sme.get(f"/statements/{paid[2]['interest_statement_id']}").json
    assert interest["kind"] == "interest"
    assert date.fromisoformat(late["due_date"]) < clock.today()

    today = clock.today()
    run = admin_api.post(
        "/settlements",
        json={
            "period_start": (today - timedelta(days=7)).isoformat(),
            "period_end": today.isoformat(),
        },
        headers=key(),
    )
    assert run.status_code == 201, run.json
    body = run.json
    received = sum(p.applied for p in session.scalars(select(Payment)))
    assert received == 3_300_000  # 20,000.00 + 10,000.00 + 3,000.00, all applied
    fen = lambda text: int(text.replace(".", ""))  # noqa: E731 - "1234.50" → 123450
    lines = body["lines"]
    assert fen(body["total_received"]) == received
    assert sum(fen(line["amount"]) for line in lines) + fen(body["total_fees"]) == received
    assert fen(body["total_distributed"]) + fen(body["total_fees"]) == received
    assert {p["id"] for p in paid} == {line["payment_id"] for line in lines}

    by_payee: dict[tuple[str, str], int] = {}
    for line in lines:
        payee = (line["payee_type"], line["payee_id"])
        by_payee[payee] = by_payee.get(payee, 0) + fen(line["amount"])
    organisations = {pid for kind, pid in by_payee if kind == "organisation"}
    assert organisations == {str(university.id), str(institute.id)}
    assert sum(1 for kind, _ in by_payee if kind == "inventor") == 5
    # The institute's 40 % income share: 70 % of it to its two inventors, 30 % to itself.
    institute_total = sum(
        fen(line["amount"]) for line in lines if line["owner_organisation_id"] == str(institute.id)
    )
    institute_inventors = sum(
        fen(line["amount"])
        for line in lines
        if line["owner_organisation_id"] == str(institute.id) and line["payee_type"] == "inventor"
    )
    assert abs(institute_total - received * 40 // 100) <= 1
    assert abs(institute_inventors - institute_total * 70 // 100) <= 1

    # Every payee statement traces each line to its payment, statement and licence.
    for payee_type, payee_id in by_payee:
        statement = admin_api.get(f"/settlements/{body['id']}/payees/{payee_type}/{payee_id}").json
        assert fen(statement["total"]) == by_payee[payee_type, payee_id]
        for line in statement["lines"]:
            assert line["payment_id"] in {p["id"] for p in paid}
            assert line["licence_reference"] == taken.json["reference"]
            assert line["statement_number"].startswith("ST-")

    trial = admin_api.get("/ledger/trial-balance").json
    assert trial["balanced"] is True
    assert trial["total_debits"] == trial["total_credits"]
    assert ledger.balance(session, ledger.RECEIVED) == 0  # everything received was settled


def test_a_corrected_paid_report_is_settled_once(
    factory: Factory, session: Session, api: Api
) -> None:
    """Pay 3,500.00, correct the report to 2,800.00 (the paid money becomes credit and pays
    the new statement), then settle: payees get the 2,800.00 of royalties once — not the
    6,300.00 of settling the void statement's payment too — and 700.00 stays the licensee's."""
    admin = fast_admin(factory)
    admin_api = api.as_(factory.token(admin))
    university = factory.organisation("university", name="甲大学")
    tto = factory.user(university, "tto")
    royalty = {k: v for k, v in ROYALTY.items() if k not in ("entry_fee", "annual_minimum")}
    offer = lf.published_offer(factory, tto, royalty={**royalty, "kind": "running"})
    patent = session.get_one(Patent, offer.patent_id)
    cf.set_inventors(factory, admin, patent, [("张三", university, "100")])
    _, _, sme_token = lf.enterprise_licensee(factory, is_sme=False)
    sme = api.as_(sme_token)
    taken = sme.post(f"/offers/{offer.id}/take-up", json=lf.notice(), headers=key())
    licence = session.get_one(Licence, uuid.UUID(taken.json["id"]))
    licence.effective_date -= timedelta(days=200)
    licence.end_date -= timedelta(days=200)
    session.flush()
    periods = sme.get(f"/licences/{licence.id}/schedule").json["periods"]
    period = next(p for p in periods if p["status"] in ("due", "late"))
    body = {"period_start": period["period_start"], "period_end": period["period_end"]}
    first = sme.post(f"/licences/{licence.id}/reports", json={**body, "net_sales": "70000.00"})
    assert first.json["royalty_due"] == "3500.00"
    pay(sme, first.json["statement_id"], "3500.00", "网银")
    corrected = sme.post(
        f"/licences/{licence.id}/reports",
        json={**body, "net_sales": "56000.00", "correction_reason": "退货"},
    )
    assert corrected.status_code == 201, corrected.json
    assert corrected.json["royalty_due"] == "2800.00"

    today = clock.today().isoformat()
    run = admin_api.post(
        "/settlements", json={"period_start": today, "period_end": today}, headers=key()
    )
    assert run.status_code == 201, run.json
    assert run.json["total_received"] == "2800.00"
    paid_out = sum(int(line["amount"].replace(".", "")) for line in run.json["lines"])
    assert paid_out + int(run.json["total_fees"].replace(".", "")) == 280_000
    assert ledger.balance(session, f"credit:{licence.licensee_organisation_id}") == -70_000
    assert ledger.balance(session, ledger.RECEIVED) == 0
    assert admin_api.get("/ledger/trial-balance").json["balanced"] is True
