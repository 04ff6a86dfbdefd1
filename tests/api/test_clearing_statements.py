"""Statements through HTTP (issue 5, item 2): issued at take-up for the fixed amounts, by reports
and by the annual-minimum true-up; listed and shown to whoever may see them; exported as CSV and
as a bilingual PDF.

Worked examples are in the comments; every money movement leaves the trial balance at zero.
"""

from __future__ import annotations

import io
import json
from datetime import date, timedelta
from typing import Any

import pypdf
import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.audit.models import AuditEvent
from registry.clearing import ledger
from registry.clearing.models import Statement
from registry.core import clock
from registry.licences.models import LicenceStatus
from registry.offers.lifecycle import add_months
from tests.api.test_clearing_reports import (
    ENTRY_PLUS_RUNNING,
    Deal,
    balanced,
    ended_periods,
    make_deal,
    pay,
    report,
    schedule_of,
    state,
)
from tests.conftest import Api
from tests.factories import Factory

UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def deal(factory: Factory, session: Session, api: Api) -> Deal:
    return make_deal(factory, session, api, ENTRY_PLUS_RUNNING, days=400)


def statements_of(client: Api, **query: Any) -> list[dict[str, Any]]:
    response = client.get("/statements", query_string={"page_size": 100, **query})
    assert response.status_code == 200, response.json
    return list(response.json)


def true_ups(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["clearing", "true-ups", *args])


# --- issued at take-up ------------------------------------------------------------------------


def test_instalments_are_billed_at_take_up_with_the_sme_discount(
    factory: Factory, session: Session, api: Api
) -> None:
    # A lump sum of CNY 10,000.00 in two instalments (4,000.00 at take-up, 6,000.00 after six
    # months), 10 % off for SMEs: 3,600.00 and 5,400.00, each paid within 30 days of falling due.
    royalty = {
        "kind": "lump_sum",
        "amount": "10000.00",
        "instalments": [
            {"due_months": 0, "amount": "4000.00"},
            {"due_months": 6, "amount": "6000.00"},
        ],
        "sme_discount": "10",
    }
    deal = make_deal(factory, session, api, royalty, days=0, is_sme=True)
    assert deal.licence.status is LicenceStatus.PENDING_PAYMENT
    issued = sorted(statements_of(deal.sme_api), key=lambda s: s["instalment_number"])
    effective = deal.licence.effective_date
    assert [
        (s["kind"], s["instalment_number"], s["amount_due"], s["due_date"]) for s in issued
    ] == [
        ("instalment", 1, "3600.00", (effective + timedelta(days=30)).isoformat()),
        ("instalment", 2, "5400.00", (add_months(effective, 6) + timedelta(days=30)).isoformat()),
    ]
    assert {s["status"] for s in issued} == {"open"}
    assert ledger.balance(session, f"receivable:{deal.licensee.id}") == 900_000
    assert balanced(session)
    items = {i["number"]: i for i in schedule_of(deal)["items"]}
    assert {n: (i["statement_id"], i["status"]) for n, i in items.items()} == {
        1: (issued[0]["id"], "open"),
        2: (issued[1]["id"], "open"),
    }
    for statement in issued:
        events = session.scalars(
            select(AuditEvent.action).where(AuditEvent.subject_id == statement["id"])
        ).all()
        assert events == ["statement.issued"]


def test_a_free_period_defers_the_entry_fee(factory: Factory, session: Session, api: Api) -> None:
    # Use first, pay later: six free months; the entry fee is paid within 30 days after them.
    royalty = {**ENTRY_PLUS_RUNNING, "free_months": 6}
    deal = make_deal(factory, session, api, royalty, days=0)
    (entry,) = statements_of(deal.sme_api)
    last_free = add_months(deal.licence.effective_date, 6) - timedelta(days=1)
    assert entry["kind"] == "entry_fee"
    assert entry["due_date"] == (last_free + timedelta(days=30)).isoformat()
    schedule = schedule_of(deal)
    assert schedule["free_until"] == last_free.isoformat()
    assert schedule["periods"][0]["status"] == "free"
    assert schedule["periods"][1]["period_start"] == (last_free + timedelta(days=1)).isoformat()


def test_a_free_licence_owes_nothing(factory: Factory, session: Session, api: Api) -> None:
    deal = make_deal(factory, session, api, {"kind": "free"}, days=0)
    assert statements_of(deal.sme_api) == []
    assert schedule_of(deal) == {"items": [], "periods": [], "free_until": None}
    assert deal.licence.status is LicenceStatus.ACTIVE


# --- listing and showing ----------------------------------------------------------------------


def test_statements_are_listed_in_scope(deal: Deal) -> None:
    (entry,) = statements_of(deal.sme_api, licence_id=str(deal.licence.id))
    assert entry["kind"] == "entry_fee"
    assert entry["amount_due"] == "20000.00"
    for client in (deal.tto_api, deal.auditor_api, deal.admin_api):
        assert entry["id"] in {s["id"] for s in statements_of(client)}
    for client in (deal.other_sme_api, deal.other_tto_api):
        assert entry["id"] not in {s["id"] for s in statements_of(client)}
        assert statements_of(client, licence_id=str(deal.licence.id)) == []
    assert deal.sme_api.as_(None).get("/statements").status_code == 401


def test_statements_are_filtered_by_the_status_shown_and_paged(
    deal: Deal, session: Session
) -> None:
    periods = ended_periods(deal)
    late = report(deal, periods[0], net_sales="100000.00").json  # 3,500.00, overdue at once
    paid = report(deal, periods[1], net_sales="10000.00").json  # 350.00
    pay(deal, paid["statement_id"], "350.00")
    corrected = report(deal, periods[2], net_sales="10000.00").json
    pay(deal, corrected["statement_id"], "100.00")
    # The correction voids the first statement; 100.00 paid on it is carried to the new one,
    # which is due 30 days from now: partially paid, not overdue.
    again = report(deal, periods[2], net_sales="20000.00", correction_reason="漏报").json
    expected = {
        "open": {"entry_fee"},
        "overdue": {late["statement_id"]},
        "paid": {paid["statement_id"]},
        "partially_paid": {again["statement_id"]},
        "void": {corrected["statement_id"]},
    }
    licence = str(deal.licence.id)
    for status, ids in expected.items():
        found = statements_of(deal.sme_api, licence_id=licence, status=status)
        assert {s["status"] for s in found} == {status}
        assert {s["kind"] if s["kind"] == "entry_fee" else s["id"] for s in found} == ids
    assert len(statements_of(deal.sme_api, licence_id=licence, kind="royalty")) == 4
    refused = deal.sme_api.get("/statements", query_string={"status": "late"})
    assert refused.status_code == 422
    page = deal.sme_api.get("/statements", query_string={"page_size": 2, "page": 2})
    assert page.status_code == 200
    assert len(page.json) == 2
    assert json.loads(page.headers["X-Pagination"])["total"] == 5
    assert balanced(session)


def test_a_statement_is_shown_to_whoever_sees_its_licence(deal: Deal) -> None:
    period = ended_periods(deal)[0]
    filed = report(deal, period, net_sales="100000.00").json
    path = f"/statements/{filed['statement_id']}"
    shown = deal.sme_api.get(path)
    assert shown.status_code == 200
    assert {
        "id",
        "number",
        "licence_id",
        "kind",
        "amount_due",
        "amount_paid",
        "amount_outstanding",
        "due_date",
        "status",
        "period_start",
        "period_end",
        "breakdown",
        "report_id",
    } <= set(shown.json)
    assert shown.json["licence_id"] == str(deal.licence.id)
    assert shown.json["report_id"] == filed["id"]
    assert shown.json["breakdown"]["due"] == "3500.00"
    assert shown.json["amount_outstanding"] == "3500.00"
    for client in (deal.tto_api, deal.auditor_api, deal.admin_api):
        assert client.get(path).json == shown.json
    for suffix in ("", ".csv", ".pdf"):
        assert deal.other_sme_api.get(path + suffix).status_code == 404
        assert deal.other_tto_api.get(path + suffix).status_code == 404
        assert deal.sme_api.as_(None).get(path + suffix).status_code == 401
        assert deal.admin_api.get(f"/statements/{UNKNOWN}{suffix}").status_code == 404


# --- documents --------------------------------------------------------------------------------


def test_a_statement_as_csv_and_as_a_bilingual_pdf(deal: Deal) -> None:
    period = ended_periods(deal)[0]
    filed = report(deal, period, net_sales="123456.78").json  # 4,320.99
    number = deal.sme_api.get(f"/statements/{filed['statement_id']}").json["number"]
    csv = deal.tto_api.get(f"/statements/{filed['statement_id']}.csv")
    assert csv.status_code == 200
    assert csv.mimetype == "text/csv"
    assert csv.headers["Content-Disposition"] == f"attachment; filename={number}.csv"
    assert csv.data.startswith("\ufeff".encode())  # Excel reads the Chinese as UTF-8
    rows = [line.split(",") for line in csv.data.decode("utf-8-sig").splitlines()]
    fields = {row[0]: row[-1] for row in rows}
    assert fields["number"] == number
    assert fields["licensee"] == "丙科技有限公司"
    assert fields["amount_due"] == "4320.99"
    assert fields["outstanding"] == "4320.99"
    assert fields["period"] == f"{period['period_start']} – {period['period_end']}"
    assert fields["status"] == "overdue"
    assert ["detail", "按费率计算 / at the rate", "4320.99"] in rows

    pdf = deal.sme_api.get(f"/statements/{filed['statement_id']}.pdf")
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    assert pdf.headers["Cache-Control"] == "private, no-store"
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.data)).pages)
    for expected in (
        number,
        "许可使用费账单",
        "Royalty Statement",
        "提成许可费",
        "running royalty",
    ):
        assert expected in text
    assert "4320.99" in text
    assert "丙科技有限公司" in text


# --- annual-minimum true-ups ------------------------------------------------------------------


def minimum_deal(factory: Factory, session: Session, api: Api) -> Deal:
    # 3.5 % of net sales, at least CNY 10,000.00 a licence year.
    royalty = {**ENTRY_PLUS_RUNNING, "annual_minimum": "10000.00"}
    return make_deal(factory, session, api, royalty, days=400)


def year_one(deal: Deal) -> list[dict[str, Any]]:
    return [p for p in ended_periods(deal) if p["licence_year"] == 1]


def test_the_annual_minimum_true_up_is_issued_once(
    factory: Factory, session: Session, api: Api, app: Flask
) -> None:
    deal = minimum_deal(factory, session, api)
    assert report(deal, year_one(deal)[0], net_sales="100000.00").status_code == 201  # 3,500.00
    result = true_ups(app)
    assert result.exit_code == 0, result.output
    assert "1 true-up statements issued" in result.output
    (true_up,) = statements_of(
        deal.sme_api, licence_id=str(deal.licence.id), kind="minimum_true_up"
    )
    assert true_up["amount_due"] == "6500.00"  # 10,000.00 − 3,500.00
    assert true_up["breakdown"]["charged_in_year"] == "3500.00"
    assert "CNY 6500.00" in result.output
    # The year's reports were due (and its true-up payable) 30 days after it ended; that day
    # has passed, so the true-up is due at once.
    year_end = date.fromisoformat(true_up["period_end"])
    assert true_up["due_date"] == max(year_end + timedelta(days=30), clock.today()).isoformat()
    before = state(session)
    again = true_ups(app)
    assert "0 true-up statements issued" in again.output
    assert state(session) == before
    (item,) = [i for i in schedule_of(deal)["items"] if i["kind"] == "minimum_true_up"][:1]
    assert (item["statement_id"], item["status"]) == (true_up["id"], "open")
    assert balanced(session)


def test_a_true_up_waits_for_the_years_reports(
    factory: Factory, session: Session, api: Api, app: Flask
) -> None:
    deal = minimum_deal(factory, session, api)
    periods = year_one(deal)
    year_end = date.fromisoformat(periods[-1]["period_end"])
    # Ten days after the year ended its last report may still come: nothing is billed yet.
    before = state(session)
    early = true_ups(app, "--date", (year_end + timedelta(days=10)).isoformat())
    assert early.exit_code == 0, early.output
    assert "0 true-up statements issued" in early.output
    assert state(session) == before
    # Once every period of the year is reported it is billed at once, due on the schedule's day.
    for period in periods:
        assert report(deal, period, net_sales="40000.00").status_code == 201  # 1,400.00 each
    charged = 140_000 * len(periods)
    result = true_ups(app, "--date", (year_end + timedelta(days=10)).isoformat())
    assert "1 true-up statements issued" in result.output
    (true_up,) = statements_of(deal.sme_api, kind="minimum_true_up")
    assert true_up["amount_due"] == f"{(1_000_000 - charged) // 100}.00"
    assert true_up["due_date"] == (year_end + timedelta(days=30)).isoformat()


def test_a_year_that_reached_its_minimum_needs_no_true_up(
    factory: Factory, session: Session, api: Api, app: Flask
) -> None:
    deal = minimum_deal(factory, session, api)
    # 3.5 % of 300,000.00 = 10,500.00 ≥ 10,000.00.
    assert report(deal, year_one(deal)[0], net_sales="300000.00").status_code == 201
    before = state(session)
    assert "0 true-up statements issued" in true_ups(app).output
    assert state(session) == before
    (item,) = [i for i in schedule_of(deal)["items"] if i["kind"] == "minimum_true_up"][:1]
    assert (item["statement_id"], item["status"]) == (None, "met")


def test_true_ups_are_not_run_for_a_day_to_come(
    factory: Factory, session: Session, api: Api, app: Flask
) -> None:
    minimum_deal(factory, session, api)
    before = state(session)
    result = true_ups(app, "--date", (clock.today() + timedelta(days=1)).isoformat())
    assert result.exit_code == 2
    assert "after today" in result.output
    assert state(session) == before
    assert session.scalars(select(Statement).where(Statement.kind == "minimum_true_up")).all() == []
