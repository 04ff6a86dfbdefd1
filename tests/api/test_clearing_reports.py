"""Schedules and royalty reports through HTTP (issue 5, items 1–2).

What licensees and TTOs rely on: the schedule says what is owed and when; a report for an ended
period is priced exactly (half up to the fen, once) and issues a numbered statement due when the
contract says; a report that should not be accepted is refused with a clear 4xx and changes
nothing (rows, audit log, ledger); a correction is a new version that voids the old statement
and carries what was paid over as credit; the ledger balances after every step.

Licences are taken up today and then moved back in time (``back_date``) so that periods have
ended; the statements issued at take-up keep their dates.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation, User
from registry.audit.models import AuditEvent
from registry.clearing import credits, ledger, settlement
from registry.clearing.models import JournalEntry, Payment, RoyaltyReport, Statement
from registry.core import clock
from registry.licences import services as licence_services
from registry.licences.models import Licence
from registry.patents.models import Patent
from tests.conftest import Api
from tests.factories import Factory
from tests.factories import clearing as cf
from tests.factories import licences as lf
from tests.factories.offers import fast_admin

# Entry fee CNY 20,000.00 and 3.5 % of net sales, quarterly, paid within 30 days.
ENTRY_PLUS_RUNNING = {
    "kind": "entry_plus_running",
    "entry_fee": "20000.00",
    "base": "net_sales",
    "rate": "3.5",
    "reporting_period": "quarterly",
    "payment_due_days": 30,
}


@dataclass
class Deal:
    licence: Licence
    licensee: Organisation
    sme_api: Api
    other_sme_api: Api
    tto_api: Api
    other_tto_api: Api
    auditor_api: Api
    admin_api: Api
    tto: User
    admin: User


def back_date(session: Session, licence: Licence, days: int) -> Licence:
    """The licence as if taken ``days`` ago (its term moved with it)."""
    licence.effective_date -= timedelta(days=days)
    licence.end_date -= timedelta(days=days)
    session.flush()
    return licence


def make_deal(
    factory: Factory,
    session: Session,
    api: Api,
    royalty: dict[str, Any],
    days: int,
    *,
    is_sme: bool = False,
) -> Deal:
    university = factory.organisation("university", name="甲大学")
    tto = factory.user(university, "tto")
    other_tto = factory.user(factory.organisation("university"), "tto")
    licensee, user, token = lf.enterprise_licensee(factory, name="丙科技有限公司", is_sme=is_sme)
    _, _, other_token = lf.enterprise_licensee(factory)
    licence = lf.take_up(factory, user, lf.published_offer(factory, tto, royalty=royalty))
    back_date(session, licence, days)
    auditor = factory.user(factory.organisation("audit_body"), "auditor")
    admin = fast_admin(factory)
    return Deal(
        licence=licence,
        licensee=licensee,
        sme_api=api.as_(token),
        other_sme_api=api.as_(other_token),
        tto_api=api.as_(factory.token(tto)),
        other_tto_api=api.as_(factory.token(other_tto)),
        auditor_api=api.as_(factory.token(auditor)),
        admin_api=api.as_(factory.token(admin)),
        tto=tto,
        admin=admin,
    )


@pytest.fixture
def deal(factory: Factory, session: Session, api: Api) -> Deal:
    return make_deal(factory, session, api, ENTRY_PLUS_RUNNING, days=400)


def schedule_of(deal: Deal) -> dict[str, Any]:
    response = deal.sme_api.get(f"/licences/{deal.licence.id}/schedule")
    assert response.status_code == 200, response.json
    return dict(response.json)


def ended_periods(deal: Deal) -> list[dict[str, Any]]:
    return [p for p in schedule_of(deal)["periods"] if p["status"] in ("due", "late")]


def report(deal: Deal, period: dict[str, Any], client: Api | None = None, **body: Any) -> Any:
    payload = {"period_start": period["period_start"], "period_end": period["period_end"]}
    payload.update(body)
    return (client or deal.sme_api).post(f"/licences/{deal.licence.id}/reports", json=payload)


def pay(deal: Deal, statement_id: str, amount: str) -> None:
    paid = deal.sme_api.post(
        "/payments",
        json={
            "statement_id": statement_id,
            "amount": amount,
            "paid_date": clock.today().isoformat(),
            "reference": f"bank {amount}",
        },
    )
    assert paid.status_code == 201, paid.json


def state(session: Session) -> tuple[int, ...]:
    """Rows of everything a report may write, and the ledger's total debits."""
    session.flush()

    def count(model: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)

    debits = ledger.trial_balance(session)["total_debits"]
    return (
        count(RoyaltyReport),
        count(Statement),
        count(Payment),
        count(JournalEntry),
        count(AuditEvent),
        debits,
    )


def balanced(session: Session) -> bool:
    session.flush()
    return bool(ledger.trial_balance(session)["balanced"])


def actions(session: Session, subject_id: Any) -> list[str]:
    session.flush()
    return list(
        session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.subject_id == str(subject_id))
            .order_by(AuditEvent.seq)
        )
    )


# --- the schedule -----------------------------------------------------------------------------


def test_the_schedule_shows_the_entry_fee_statement_and_the_periods(deal: Deal) -> None:
    schedule = schedule_of(deal)
    (entry,) = [i for i in schedule["items"] if i["kind"] == "entry_fee"]
    assert entry["amount"] == "20000.00"
    assert entry["statement_id"] is not None
    assert entry["status"] == "open"  # issued at the take-up, due 30 days after it
    periods = schedule["periods"]
    assert periods[0]["period_start"] == deal.licence.effective_date.isoformat()
    # The licence took effect 400 days ago: its first periods ended long ago, their reports
    # are late; the current quarter is upcoming.
    assert periods[0]["status"] == "late"
    assert [p["status"] for p in periods if p["status"] == "upcoming"][:1] == ["upcoming"]
    # Periods tile the term: each starts the day after the one before ends, and each running
    # royalty item is the period's, due 30 days after it ends.
    for before, after in itertools.pairwise(periods):
        gap = date.fromisoformat(after["period_start"]) - date.fromisoformat(before["period_end"])
        assert gap == timedelta(days=1)
    running = [i for i in schedule["items"] if i["kind"] == "running_royalty"]
    assert [i["period_start"] for i in running] == [p["period_start"] for p in periods]
    for item, period in zip(running, periods, strict=True):
        assert item["amount"] is None  # a report decides it
        assert item["due_date"] == period["payment_due_date"]
        ended = date.fromisoformat(period["period_end"]) + timedelta(days=30)
        assert item["due_date"] == ended.isoformat()
        assert item["status"] in ("overdue", "due", "upcoming")


def test_the_schedule_is_seen_by_whoever_sees_the_licence(deal: Deal) -> None:
    path = f"/licences/{deal.licence.id}/schedule"
    expected = schedule_of(deal)
    for client in (deal.tto_api, deal.auditor_api, deal.admin_api):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json == expected
    assert deal.other_sme_api.get(path).status_code == 404
    assert deal.other_tto_api.get(path).status_code == 404
    assert deal.sme_api.as_(None).get(path).status_code == 401
    unknown = "/licences/00000000-0000-4000-8000-000000000000/schedule"
    assert deal.admin_api.get(unknown).status_code == 404


# --- reports ----------------------------------------------------------------------------------


def test_a_report_is_priced_exactly_and_issues_a_statement(deal: Deal, session: Session) -> None:
    period = ended_periods(deal)[1]
    # 3.5 % of CNY 123,456.78 = 4,320.98730 → 4,320.99 (half up, to the fen).
    response = report(deal, period, net_sales="123456.78")
    assert response.status_code == 201, response.json
    assert response.json["royalty_due"] == "4320.99"
    assert response.json["version"] == 1
    assert response.json["base"] == "net_sales"
    assert response.json["base_amount"] == "123456.78"
    assert response.json["breakdown"]["gross"] == "4320.99"
    assert response.json["breakdown"]["discount"] == "0.00"
    assert response.json["breakdown"]["rate"] == "3.50"
    statement = deal.sme_api.get(f"/statements/{response.json['statement_id']}").json
    assert statement["kind"] == "royalty"
    assert statement["amount_due"] == "4320.99"
    assert statement["amount_paid"] == "0.00"
    assert re.fullmatch(rf"ST-{clock.today().year}-\d{{6}}", statement["number"])
    assert (statement["period_start"], statement["period_end"]) == (
        period["period_start"],
        period["period_end"],
    )
    # Due when the contract says, 30 days after the period ended — long past for a report
    # filed this late, so the statement is overdue at once (late interest runs from then).
    assert statement["due_date"] == period["payment_due_date"]
    assert statement["status"] == "overdue"
    assert balanced(session)
    # Receivable of the licensee: the entry fee and this royalty.
    receivable = ledger.balance(session, f"receivable:{deal.licensee.id}")
    assert receivable == 2_000_000 + 432_099
    assert actions(session, deal.licence.id)[-1] == "report.filed"
    assert actions(session, statement["id"]) == ["statement.issued"]
    schedule = schedule_of(deal)
    reported = [p for p in schedule["periods"] if p["period_start"] == period["period_start"]]
    assert reported[0]["status"] == "reported"
    (item,) = [
        i
        for i in schedule["items"]
        if i["kind"] == "running_royalty" and i["period_start"] == period["period_start"]
    ]
    assert (item["statement_id"], item["amount"], item["status"]) == (
        statement["id"],
        "4320.99",
        "overdue",
    )


def test_stepped_rates_sme_discount_and_the_annual_cap(
    factory: Factory, session: Session, api: Api
) -> None:
    # 2 % in licence year 1, 4 % from year 2; 10 % off for SMEs; at most CNY 5,000.00 a year
    # (4,500.00 after the discount). Periods are cut at the anniversary.
    royalty = {
        "kind": "running",
        "base": "net_sales",
        "steps": [{"from_year": 1, "rate": "2"}, {"from_year": 2, "rate": "4"}],
        "sme_discount": "10",
        "cap": "5000.00",
        "reporting_period": "quarterly",
    }
    deal = make_deal(factory, session, api, royalty, days=500, is_sme=True)
    periods = ended_periods(deal)
    year_one = [p for p in periods if p["licence_year"] == 1]
    year_two = [p for p in periods if p["licence_year"] == 2]
    assert len(year_one) >= 3
    assert year_two
    anniversary = deal.licence.effective_date.replace(year=deal.licence.effective_date.year + 1)
    assert year_two[0]["period_start"] == anniversary.isoformat()

    # 2 % of 100,000.00 = 2,000.00, less 10 % = 1,800.00.
    first = report(deal, year_one[0], net_sales="100000.00").json
    assert (first["royalty_due"], first["breakdown"]["discount"]) == ("1800.00", "200.00")
    # 2 % of 200,000.00 = 4,000.00 → 3,600.00, but only 4,500.00 − 1,800.00 = 2,700.00 is
    # left under the cap: 900.00 cap reduction.
    second = report(deal, year_one[1], net_sales="200000.00").json
    assert second["royalty_due"] == "2700.00"
    assert second["breakdown"]["cap_reduction"] == "900.00"
    # The cap is reached: the year's next report owes nothing and issues no statement.
    third = report(deal, year_one[2], net_sales="50000.00")
    assert third.status_code == 201
    assert (third.json["royalty_due"], third.json["statement_id"]) == ("0.00", None)
    # Year 2: 4 % of 100,000.00 = 4,000.00 → 3,600.00; a new year, a new cap.
    fourth = report(deal, year_two[0], net_sales="100000.00").json
    assert (fourth["royalty_due"], fourth["breakdown"]["rate"]) == ("3600.00", "4.00")
    assert balanced(session)
    assert ledger.balance(session, f"receivable:{deal.licensee.id}") == 180_000 + 270_000 + 360_000
    statuses = {p["period_start"]: p["status"] for p in schedule_of(deal)["periods"]}
    assert statuses[year_one[2]["period_start"]] == "reported"


def test_a_royalty_per_unit(factory: Factory, session: Session, api: Api) -> None:
    royalty = {"kind": "running", "base": "units", "unit_amount": "1.25"}
    deal = make_deal(factory, session, api, royalty, days=200)
    period = ended_periods(deal)[0]
    before = state(session)
    for body in ({"units": 1.5}, {"units": "12"}, {"units": -1}, {"net_sales": "100.00"}):
        refused = report(deal, period, **body)
        assert refused.status_code == 422, body
        assert "units" in {e["field"] for e in refused.json["errors"]}
    assert state(session) == before
    # 1,001 units at CNY 1.25 = 1,251.25.
    response = report(deal, period, units=1001)
    assert response.status_code == 201, response.json
    assert (response.json["royalty_due"], response.json["base_amount"]) == ("1251.25", 1001)
    assert balanced(session)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"net_sales": "-1.00"}, 422, "net_sales"),
        ({"profit": "100.00"}, 422, "net_sales"),
        ({"net_sales": "100.00", "profit": "1.00"}, 422, "net_sales"),
        ({"net_sales": "1.001"}, 422, "net_sales"),
        ({}, 422, "net_sales"),
        ({"net_sales": "100.00", "correction_reason": "nothing to correct"}, 422, None),
        ({"net_sales": "100.00", "colour": "blue"}, 422, "colour"),
    ],
    ids=[
        "negative",
        "wrong-base",
        "two-bases",
        "sub-fen",
        "missing",
        "correction-of-nothing",
        "unknown-field",
    ],
)
def test_bad_reports_change_nothing(
    deal: Deal, session: Session, body: dict[str, Any], status: int, field: str | None
) -> None:
    period = ended_periods(deal)[0]
    before = state(session)
    response = report(deal, period, **body)
    assert response.status_code == status, response.json
    if field:
        assert field in {error["field"] for error in response.json["errors"]}
    assert state(session) == before


def test_a_period_not_ended_or_not_in_the_schedule_is_refused(
    factory: Factory, session: Session, api: Api
) -> None:
    fresh = make_deal(factory, session, api, ENTRY_PLUS_RUNNING, days=0)
    today = clock.today()
    before = state(session)
    current = {"period_start": today.isoformat(), "period_end": today.isoformat()}
    refused = report(fresh, current, net_sales="100.00")
    assert refused.status_code == 422
    assert refused.json["errors"][0]["field"] == "period_start"
    schedule = schedule_of(fresh)
    first = schedule["periods"][0]
    assert first["status"] == "upcoming"
    not_yet = report(fresh, first, net_sales="100.00")
    assert not_yet.status_code == 422
    assert not_yet.json["errors"][0]["field"] == "period_end"
    assert "after it has ended" in not_yet.json["errors"][0]["messages"][0]
    # Half a period (its right start, a wrong end) is not a period either.
    start = date.fromisoformat(first["period_start"])
    half = {"period_start": first["period_start"], "period_end": start.isoformat()}
    assert report(fresh, half, net_sales="100.00").status_code == 422
    backwards = {"period_start": first["period_end"], "period_end": first["period_start"]}
    assert report(fresh, backwards, net_sales="100.00").status_code == 422
    assert state(session) == before


def test_who_may_report(deal: Deal, session: Session) -> None:
    period = ended_periods(deal)[0]
    before = state(session)
    assert report(deal, period, deal.other_sme_api, net_sales="1.00").status_code == 404
    assert report(deal, period, deal.other_tto_api, net_sales="1.00").status_code == 404
    for client in (deal.tto_api, deal.auditor_api, deal.admin_api):
        assert report(deal, period, client, net_sales="1.00").status_code == 403
    assert report(deal, period, deal.sme_api.as_(None), net_sales="1.00").status_code == 401
    unknown = deal.sme_api.post(
        "/licences/00000000-0000-4000-8000-000000000000/reports",
        json={"period_start": period["period_start"], "period_end": period["period_end"]},
    )
    assert unknown.status_code == 404
    assert state(session) == before


@pytest.mark.parametrize(
    "royalty",
    [
        {"kind": "free"},
        {"kind": "lump_sum", "amount": "5000.00"},
        {
            "kind": "lump_sum",
            "amount": "5000.00",
            "instalments": [
                {"due_months": 0, "amount": "2000.00"},
                {"due_months": 3, "amount": "3000.00"},
            ],
        },
    ],
    ids=["free", "lump-sum", "instalments"],
)
def test_free_and_lump_sum_licences_take_no_reports(
    factory: Factory, session: Session, api: Api, royalty: dict[str, Any]
) -> None:
    lump = make_deal(factory, session, api, royalty, days=200)
    assert schedule_of(lump)["periods"] == []
    before = state(session)
    start = lump.licence.effective_date
    period = {
        "period_start": start.isoformat(),
        "period_end": (start + timedelta(days=30)).isoformat(),
    }
    refused = report(lump, period, net_sales="100.00")
    assert refused.status_code == 409
    assert refused.json["code"] == "not_reportable"
    assert state(session) == before


def test_a_report_is_idempotent_under_its_key(deal: Deal, session: Session) -> None:
    period = ended_periods(deal)[0]
    body = {
        "period_start": period["period_start"],
        "period_end": period["period_end"],
        "net_sales": "1000.00",
    }
    path = f"/licences/{deal.licence.id}/reports"
    headers = {"Idempotency-Key": "report-2026-q1-7f3a9c"}
    first = deal.sme_api.post(path, json=body, headers=headers)
    assert first.status_code == 201
    after_first = state(session)
    again = deal.sme_api.post(path, json=body, headers=headers)
    assert (again.status_code, again.json) == (201, first.json)
    assert state(session) == after_first
    other = deal.sme_api.post(path, json={**body, "net_sales": "2000.00"}, headers=headers)
    assert other.status_code == 422
    assert state(session) == after_first


# --- corrections ------------------------------------------------------------------------------


def test_a_period_is_reported_once_and_corrected_with_a_reason(
    deal: Deal, session: Session
) -> None:
    period = ended_periods(deal)[0]
    first = report(deal, period, net_sales="100000.00")  # 3.5 % = 3,500.00
    assert first.status_code == 201
    old_statement = first.json["statement_id"]
    pay(deal, old_statement, "1000.00")  # paid in part before the licensee finds its mistake
    before = state(session)
    again = report(deal, period, net_sales="90000.00")
    assert again.status_code == 409
    assert again.json["code"] == "already_reported"
    assert "correction_reason" in {e["field"] for e in again.json["errors"]}
    assert state(session) == before

    # Returns of CNY 20,000.00: 3.5 % of 80,000.00 = 2,800.00.
    corrected = report(deal, period, net_sales="80000.00", correction_reason="退货冲减")
    assert corrected.status_code == 201, corrected.json
    assert corrected.json["version"] == 2
    assert corrected.json["royalty_due"] == "2800.00"
    assert corrected.json["correction_reason"] == "退货冲减"
    old = deal.sme_api.get(f"/statements/{old_statement}").json
    assert old["status"] == "void"
    assert "退货冲减" in old["void_reason"]
    new = deal.sme_api.get(f"/statements/{corrected.json['statement_id']}").json
    # The CNY 1,000.00 paid on the void statement became credit and was applied to the new
    # one; 1,800.00 is left to pay, due 30 days from the correction (the amount was new).
    assert new["amount_due"] == "2800.00"
    assert new["amount_paid"] == "1000.00"
    assert new["status"] == "partially_paid"
    assert new["due_date"] == (clock.today() + timedelta(days=30)).isoformat()
    assert credits.credit_balance(session, deal.licensee.id) == 0
    assert ledger.balance(session, f"receivable:{deal.licensee.id}") == 2_000_000 + 180_000
    assert balanced(session)
    assert actions(session, old_statement) == ["statement.issued", "statement.voided"]
    versions = deal.sme_api.get(f"/licences/{deal.licence.id}/reports").json
    assert [(v["version"], v["royalty_due"]) for v in versions] == [(1, "3500.00"), (2, "2800.00")]
    assert [v["statement_id"] for v in versions] == [old_statement, new["id"]]
    # A further correction is version 3 and voids version 2's statement.
    third = report(deal, period, net_sales="80000.01", correction_reason="尾差")
    assert (third.status_code, third.json["version"]) == (201, 3)
    assert deal.sme_api.get(f"/statements/{new['id']}").json["status"] == "void"
    assert balanced(session)


def test_a_correction_below_what_was_paid_leaves_credit(deal: Deal, session: Session) -> None:
    period = ended_periods(deal)[0]
    first = report(deal, period, net_sales="100000.00")  # 3,500.00
    pay(deal, first.json["statement_id"], "3500.00")
    # Corrected to 3.5 % of 20,000.00 = 700.00: paid by the credit; 2,800.00 stays credit.
    corrected = report(deal, period, net_sales="20000.00", correction_reason="统计口径错误")
    assert corrected.status_code == 201, corrected.json
    new = deal.sme_api.get(f"/statements/{corrected.json['statement_id']}").json
    assert (new["amount_paid"], new["status"]) == ("700.00", "paid")
    assert credits.credit_balance(session, deal.licensee.id) == 280_000
    # Corrected to nothing at all: no statement, the whole 3,500.00 is credit.
    nothing = report(deal, period, net_sales="0.00", correction_reason="未实际销售")
    assert (nothing.json["royalty_due"], nothing.json["statement_id"]) == ("0.00", None)
    assert credits.credit_balance(session, deal.licensee.id) == 350_000
    assert balanced(session)


def test_a_settled_period_is_not_corrected_until_the_settlement_is_reversed(
    deal: Deal, session: Session, factory: Factory
) -> None:
    patent = session.get_one(Patent, deal.licence.patent_id)
    university = session.get_one(Organisation, deal.tto.organisation_id)
    cf.set_inventors(factory, deal.admin, patent, [("张三", university, "100")])
    period = ended_periods(deal)[0]
    first = report(deal, period, net_sales="100000.00")
    pay(deal, first.json["statement_id"], "3500.00")
    run = settlement.run_settlement(
        session,
        actor=factory.actor(deal.admin),
        period_start=clock.today(),
        period_end=clock.today(),
        fee_rate=0,
        minimum_payout=0,
    )
    before = state(session)
    refused = report(deal, period, net_sales="80000.00", correction_reason="退货冲减")
    assert refused.status_code == 409
    assert refused.json["code"] == "already_settled"
    assert state(session) == before
    settlement.reverse_settlement(
        session, actor=factory.actor(deal.admin), run_id=run.id, minimum_payout=0
    )
    corrected = report(deal, period, net_sales="80000.00", correction_reason="退货冲减")
    assert corrected.status_code == 201, corrected.json
    assert balanced(session)


def test_reports_are_listed_to_whoever_sees_the_licence(deal: Deal) -> None:
    period = ended_periods(deal)[0]
    filed = report(deal, period, net_sales="100.00").json
    path = f"/licences/{deal.licence.id}/reports"
    for client in (deal.sme_api, deal.tto_api, deal.auditor_api, deal.admin_api):
        listed = client.get(path)
        assert listed.status_code == 200
        assert [r["id"] for r in listed.json] == [filed["id"]]
    assert deal.other_sme_api.get(path).status_code == 404
    assert deal.other_tto_api.get(path).status_code == 404
    assert deal.sme_api.as_(None).get(path).status_code == 401


def test_a_terminated_licence_reports_up_to_the_day_it_stopped(
    deal: Deal, session: Session, factory: Factory
) -> None:
    user = session.scalars(select(User).where(User.organisation_id == deal.licensee.id)).first()
    assert user is not None
    licence_services.terminate(
        session, actor=factory.actor(user), licence_id=deal.licence.id, reason="停产"
    )
    periods = schedule_of(deal)["periods"]
    # The term is cut at today: the last period ends today and has not ended yet.
    assert periods[-1]["period_end"] == clock.today().isoformat()
    assert periods[-1]["status"] == "upcoming"
    assert report(deal, ended_periods(deal)[0], net_sales="10.00").status_code == 201
