"""Schedules, royalty reports and statements through HTTP (issue 5, items 1–2).

What licensees and TTOs rely on: the schedule says what is owed and when; a report for an ended
period is priced exactly (half up to the fen, once) and issues a numbered statement; a report
that should not be accepted is refused with a clear 4xx and changes nothing; a correction is a
new version that voids the old statement and carries what was paid over; the ledger balances
after every step.
"""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pypdf
import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.accounts.models import User
from registry.clearing import ledger
from registry.clearing.models import JournalEntry, RoyaltyReport, Statement
from registry.core import clock
from registry.licences.models import Licence
from tests.conftest import Api
from tests.factories import Factory
from tests.factories import licences as lf

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
    sme_api: Api
    other_sme_api: Api
    tto_api: Api
    auditor_api: Api
    admin_api: Api
    tto: User


def back_date(session: Session, licence: Licence, days: int) -> Licence:
    """The licence as if taken ``days`` ago (its term moved with it)."""
    licence.effective_date -= timedelta(days=days)
    licence.end_date -= timedelta(days=days)
    session.flush()
    return licence


@pytest.fixture
def deal(factory: Factory, session: Session, api: Api) -> Deal:
    return make_deal(factory, session, api, ENTRY_PLUS_RUNNING, days=400)


def make_deal(
    factory: Factory, session: Session, api: Api, royalty: dict[str, Any], days: int
) -> Deal:
    university = factory.organisation("university", name="甲大学")
    tto = factory.user(university, "tto")
    _, user, token = lf.enterprise_licensee(factory, name="丙科技有限公司", is_sme=False)
    _, _, other_token = lf.enterprise_licensee(factory)
    licence = lf.take_up(factory, user, lf.published_offer(factory, tto, royalty=royalty))
    back_date(session, licence, days)
    auditor = factory.user(factory.organisation("audit_body"), "auditor")
    admin = factory.user(factory.organisation("clearing_house"), "admin")
    return Deal(
        licence=licence,
        sme_api=api.as_(token),
        other_sme_api=api.as_(other_token),
        tto_api=api.as_(factory.token(tto)),
        auditor_api=api.as_(factory.token(auditor)),
        admin_api=api.as_(factory.token(admin)),
        tto=tto,
    )


def ended_periods(deal: Deal) -> list[dict[str, Any]]:
    schedule = deal.sme_api.get(f"/licences/{deal.licence.id}/schedule").json
    return [p for p in schedule["periods"] if p["status"] in ("due", "late")]


def report(deal: Deal, period: dict[str, Any], client: Api | None = None, **body: Any) -> Any:
    payload = {"period_start": period["period_start"], "period_end": period["period_end"]}
    payload.update(body)
    return (client or deal.sme_api).post(f"/licences/{deal.licence.id}/reports", json=payload)


def state(session: Session) -> tuple[int, int, int]:
    session.flush()
    count = lambda model: int(session.scalar(select(func.count()).select_from(model)) or 0)  # noqa: E731
    return count(RoyaltyReport), count(Statement), count(JournalEntry)


def balanced(session: Session) -> bool:
    session.flush()
    return bool(ledger.trial_balance(session)["balanced"])


def test_the_schedule_shows_the_entry_fee_statement_and_the_periods(deal: Deal) -> None:
    schedule = deal.sme_api.get(f"/licences/{deal.licence.id}/schedule")
    assert schedule.status_code == 200, schedule.json
    (entry,) = [i for i in schedule.json["items"] if i["kind"] == "entry_fee"]
    assert entry["amount"] == "20000.00"
    assert entry["statement_id"] is not None
    assert entry["status"] == "open"  # issued at the take-up, due 30 days after it
    periods = schedule.json["periods"]
    assert periods[0]["period_start"] == deal.licence.effective_date.isoformat()
    assert {p["status"] for p in periods} <= {"due", "late", "upcoming"}
    # Periods tile the term: each starts the day after the one before ends.
    for before, after in itertools.pairwise(periods):
        gap = date.fromisoformat(after["period_start"]) - date.fromisoformat(before["period_end"])
        assert gap == timedelta(days=1)
    assert deal.other_sme_api.get(f"/licences/{deal.licence.id}/schedule").status_code == 404


def test_a_report_is_priced_exactly_and_issues_a_statement(deal: Deal, session: Session) -> None:
    period = ended_periods(deal)[1]
    # 3.5 % of CNY 123,456.78 = 4,320.98730 → 4,320.99 (half up, to the fen).
    response = report(deal, period, net_sales="123456.78")
    assert response.status_code == 201, response.json
    assert response.json["royalty_due"] == "4320.99"
    assert response.json["version"] == 1
    statement = deal.sme_api.get(f"/statements/{response.json['statement_id']}").json
    assert statement["kind"] == "royalty"
    assert statement["amount_due"] == "4320.99"
    assert statement["number"].startswith(f"ST-{clock.today().year}-")
    assert (
        statement["due_date"]
        == (date.fromisoformat(period["period_end"]) + timedelta(days=30)).isoformat()
    )
    assert balanced(session)
    schedule = deal.sme_api.get(f"/licences/{deal.licence.id}/schedule").json
    reported = [p for p in schedule["periods"] if p["period_start"] == period["period_start"]]
    assert reported[0]["status"] == "reported"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"net_sales": "-1.00"}, 422, "net_sales"),
        ({"profit": "100.00"}, 422, "net_sales"),
        ({"net_sales": "1.001"}, 422, "net_sales"),
        ({}, 422, "net_sales"),
        ({"net_sales": "100.00", "correction_reason": "nothing to correct"}, 422, None),
    ],
    ids=["negative", "wrong-base", "sub-fen", "missing", "correction-of-nothing"],
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
    assert refused.json["errors"][0]["field"] in ("period_start", "period_end")
    schedule = fresh.sme_api.get(f"/licences/{fresh.licence.id}/schedule").json
    first = schedule["periods"][0]
    assert first["status"] == "upcoming"
    not_yet = report(fresh, first, net_sales="100.00")
    assert not_yet.status_code == 422
    assert not_yet.json["errors"][0]["field"] == "period_end"
    assert state(session) == before


def test_who_may_report(deal: Deal, session: Session) -> None:
    period = ended_periods(deal)[0]
    before = state(session)
    assert report(deal, period, deal.other_sme_api, net_sales="1.00").status_code == 404
    for client in (deal.tto_api, deal.auditor_api, deal.admin_api):
        assert report(deal, period, client, net_sales="1.00").status_code == 403
    assert report(deal, period, deal.sme_api.as_(None), net_sales="1.00").status_code == 401
    assert state(session) == before


def test_free_and_lump_sum_licences_take_no_reports(
    factory: Factory, session: Session, api: Api
) -> None:
    for royalty in ({"kind": "free"}, {"kind": "lump_sum", "amount": "5000.00"}):
        lump = make_deal(factory, session, api, royalty, days=200)
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


def test_a_period_is_reported_once_and_corrected_with_a_reason(
    deal: Deal, session: Session
) -> None:
    period = ended_periods(deal)[0]
    first = report(deal, period, net_sales="100000.00")  # 3,500.00
    assert first.status_code == 201
    old_statement = first.json["statement_id"]
    # Paid in part before the licensee finds its mistake.
    paid = deal.sme_api.post(
        "/payments",
        json={
            "statement_id": old_statement,
            "amount": "1000.00",
            "paid_date": clock.today().isoformat(),
            "reference": "bank 1",
        },
    )
    assert paid.status_code == 201, paid.json
    before = state(session)
    again = report(deal, period, net_sales="90000.00")
    assert again.status_code == 409
    assert again.json["code"] == "already_reported"
    assert state(session) == before

    corrected = report(deal, period, net_sales="80000.00", correction_reason="退货冲减")
    assert corrected.status_code == 201, corrected.json
    assert corrected.json["version"] == 2
    assert corrected.json["royalty_due"] == "2800.00"
    old = deal.sme_api.get(f"/statements/{old_statement}").json
    assert old["status"] == "void"
    new = deal.sme_api.get(f"/statements/{corrected.json['statement_id']}").json
    # The CNY 1,000.00 paid on the void statement was carried to the new one as credit.
    assert new["amount_due"] == "2800.00"
    assert new["amount_paid"] == "1000.00"
    assert new["status"] in ("partially_paid", "overdue")
    assert balanced(session)
    versions = deal.sme_api.get(f"/licences/{deal.licence.id}/reports").json
    assert [v["version"] for v in versions] == [1, 2]


def test_statements_are_listed_in_scope_and_exported(deal: Deal, app: Flask) -> None:
    mine = deal.sme_api.get(f"/statements?licence_id={deal.licence.id}")
    assert mine.status_code == 200
    (entry,) = mine.json
    assert entry["kind"] == "entry_fee"
    assert {s["id"] for s in deal.tto_api.get("/statements").json} >= {entry["id"]}
    assert entry["id"] in {s["id"] for s in deal.auditor_api.get("/statements").json}
    assert entry["id"] not in {s["id"] for s in deal.other_sme_api.get("/statements").json}
    assert deal.other_sme_api.get(f"/statements/{entry['id']}").status_code == 404

    csv = deal.sme_api.get(f"/statements/{entry['id']}.csv")
    assert csv.status_code == 200
    text = csv.data.decode("utf-8-sig")
    assert entry["number"] in text
    assert "20000.00" in text
    assert "丙科技有限公司" in text
    pdf = deal.sme_api.get(f"/statements/{entry['id']}.pdf")
    assert pdf.status_code == 200
    extracted = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.data)).pages)
    assert entry["number"] in extracted
    assert "入门费" in extracted
    assert "20000.00" in extracted


def test_annual_minimum_true_up_is_issued_once(
    factory: Factory, session: Session, api: Api, app: Flask
) -> None:
    royalty = {**ENTRY_PLUS_RUNNING, "annual_minimum": "10000.00"}
    minimum = make_deal(factory, session, api, royalty, days=400)
    periods = ended_periods(minimum)
    year_one = [p for p in periods if p["licence_year"] == 1]
    assert report(minimum, year_one[0], net_sales="100000.00").status_code == 201  # 3,500.00
    result = app.test_cli_runner().invoke(args=["clearing", "true-ups"])
    assert result.exit_code == 0, result.output
    assert "1 true-up statements issued" in result.output
    true_ups = minimum.sme_api.get(
        f"/statements?licence_id={minimum.licence.id}&kind=minimum_true_up"
    ).json
    assert [s["amount_due"] for s in true_ups] == ["6500.00"]  # 10,000.00 − 3,500.00
    again = app.test_cli_runner().invoke(args=["clearing", "true-ups"])
    assert "0 true-up statements issued" in again.output
    assert balanced(session)
