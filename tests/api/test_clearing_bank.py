"""Bank-statement import through the API: lines matched by statement number become payments,
the rest are held in a visible suspense list and resolved by hand; a re-import adds nothing;
a malformed file changes nothing and names every bad row and column."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.clearing import ledger
from registry.clearing.models import Payment, Statement, StatementStatus
from registry.clearing.statements import void_statement
from registry.core import clock
from registry.licences.models import Licence, LicenceStatus
from tests.api.test_clearing_payments import Deal, assert_balanced, make_deal, pay, state
from tests.conftest import Api
from tests.factories import Factory

HEADER = "date,amount,reference,counterparty\n"
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "bank-statement-sample.csv"


def upload(api: Api, token: str | None, content: str | bytes, name: str = "bank.csv") -> Any:
    data = content.encode("utf-8") if isinstance(content, str) else content
    return api.as_(token).post(
        "/bank-statements",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def reload(session: Session, model: Any, id_: Any) -> Any:
    session.expire_all()
    return session.get(model, id_)


def balances(session: Session) -> dict[str, int]:
    return {a["code"]: a["balance"] for a in assert_balanced(session)["accounts"]}


def two_deals(factory: Factory, session: Session) -> tuple[Deal, Deal, Statement]:
    """Two lump-sum licences, and a third statement made void (replaced by a correction)."""
    first, second, third = make_deal(factory), make_deal(factory), make_deal(factory)
    void_statement(session, third.statement, reason="replaced", actor=factory.actor(third.admin))
    return first, second, reload(session, Statement, third.statement.id)


def test_import_matches_by_number_and_holds_the_rest_in_suspense(
    api: Api, factory: Factory, session: Session
) -> None:
    first, second, void = two_deals(factory, session)
    today = clock.today()
    day = today - timedelta(days=1)
    a, b = first.statement.number, second.statement.number
    content = (
        "\ufeff"  # Excel's byte-order mark
        + HEADER
        + f'{day},"10,000.00",货款{a}许可费,杭州示例新材料有限公司\n'  # pays A in full
        + f"{day},2500.00,{b.lower()} part,Example Co.\n"  # part of B, any letter case
        + f"{day},1200.00,royalty Q1,宁波示例电子有限公司\n"  # no number
        + f"{day},300.00,ST-2019-999999,宁波示例电子有限公司\n"  # unknown number
        + f"{day},50.00,{void.number},Example Co.\n"  # void statement
        + f"{day},60.00,{a} and {b},Example Co.\n"  # two numbers
        + f"{day},70.00,{a} again,Example Co.\n"  # A is paid by now
        + ",,,\n"  # blank rows are skipped
    )
    answer = upload(api, first.admin_token, content)
    assert answer.status_code == 200, answer.json
    assert (answer.json["lines"], answer.json["matched"], answer.json["suspense"]) == (7, 2, 5)
    assert answer.json["duplicates"] == 0
    reasons = {line["reference"]: line["reason"] for line in answer.json["bank_lines"]}
    assert reasons[f"货款{a}许可费"] is None
    assert reasons["royalty Q1"] == "no statement number in the reference"
    assert reasons["ST-2019-999999"] == "unknown statement ST-2019-999999"
    assert "void" in reasons[void.number]
    assert "several statement numbers" in reasons[f"{a} and {b}"]
    assert "already paid" in reasons[f"{a} again"]

    paid = reload(session, Statement, first.statement.id)
    assert (paid.amount_paid, paid.status) == (1_000_000, StatementStatus.PAID)
    assert reload(session, Licence, first.licence.id).status is LicenceStatus.ACTIVE
    partly = reload(session, Statement, second.statement.id)
    assert (partly.amount_paid, partly.status) == (250_000, StatementStatus.OPEN)
    bank_payments = session.scalars(select(Payment).where(Payment.source == "bank")).all()
    assert sorted((p.amount, p.paid_date) for p in bank_payments) == [
        (250_000, day),
        (1_000_000, day),
    ]
    assert all(p.bank_line_id is not None for p in bank_payments)

    held = 120_000 + 30_000 + 5_000 + 6_000 + 7_000
    books = balances(session)
    assert books[ledger.CASH] == 1_250_000 + held
    assert books[ledger.SUSPENSE] == -held
    assert books[ledger.RECEIVED] == -1_250_000

    listed = api.as_(first.auditor_token).get("/bank-lines?status=suspense")
    assert listed.status_code == 200
    assert sorted(line["amount"] for line in listed.json) == [
        "1200.00",
        "300.00",
        "50.00",
        "60.00",
        "70.00",
    ]
    assert all(line["reason"] for line in listed.json)
    assert all(line["status"] == "suspense" for line in listed.json)


def test_importing_the_same_lines_again_adds_nothing(
    api: Api, factory: Factory, session: Session
) -> None:
    deal = make_deal(factory)
    day = clock.today()
    rows = (
        f"{day},1000.00,{deal.statement.number},Example Co.\n"
        f"{day},1000.00,{deal.statement.number},Example Co.\n"  # the same receipt twice: two
        f"{day},5.00,bank interest,\n"
    )
    first = upload(api, deal.admin_token, "\ufeff" + HEADER + rows)
    assert (first.json["matched"], first.json["suspense"]) == (2, 1)
    assert reload(session, Statement, deal.statement.id).amount_paid == 200_000
    before = state(session)

    again = upload(api, deal.admin_token, HEADER + rows)  # without the BOM this time
    assert again.status_code == 200
    assert (again.json["matched"], again.json["suspense"], again.json["duplicates"]) == (0, 0, 3)
    assert state(session) == before

    # An overlapping export: only the new line is imported.
    more = upload(api, deal.admin_token, HEADER + rows + f"{day},1.00,{deal.statement.number},\n")
    assert (more.json["matched"], more.json["duplicates"]) == (1, 3)
    assert reload(session, Statement, deal.statement.id).amount_paid == 200_100
    assert_balanced(session)


def test_a_malformed_file_is_refused_whole_and_changes_nothing(
    api: Api, factory: Factory, session: Session
) -> None:
    deal = make_deal(factory)
    day = clock.today()
    tomorrow = day + timedelta(days=1)
    good = f"{day},100.00,{deal.statement.number},Example Co.\n"
    before = state(session)

    answer = upload(
        api,
        deal.admin_token,
        HEADER
        + good
        + "2026/03/01,100.00,x,\n"  # row 3: not ISO
        + f"{tomorrow},100.00,x,\n"  # row 4: in the future
        + f"{day},0.00,x,\n"  # row 5: zero
        + f"{day},-10.00,x,\n"  # row 6: a debit
        + f"{day},1.005,x,\n"  # row 7: not whole fen
        + f"{day},1,50,x,y\n"  # row 8: too many values
        + f"{day},abc,x,\n",  # row 9
    )
    assert answer.status_code == 422, answer.json
    fields = {e["field"] for e in answer.json["errors"]}
    assert fields == {
        "rows.3.date",
        "rows.4.date",
        "rows.5.amount",
        "rows.6.amount",
        "rows.7.amount",
        "rows.8",
        "rows.9.amount",
    }
    assert "nothing was imported" in answer.json["message"]
    assert state(session) == before

    for content, message in [
        (b"", "empty"),
        (HEADER.encode(), "no receipts"),
        (b"date,amount\n2026-01-01,1.00\n", "missing columns: reference"),
        ((HEADER.strip() + ",iban\n").encode(), "unknown columns: iban"),
        ((HEADER + good).encode("utf-16"), "not UTF-8"),
        ("日期,金额\n".encode("gbk"), "not UTF-8"),
    ]:
        refused = upload(api, deal.admin_token, content)
        assert refused.status_code == 422, content
        assert message in refused.json["message"]
        assert state(session) == before

    missing = api.as_(deal.admin_token).post(
        "/bank-statements", data={}, content_type="multipart/form-data"
    )
    assert missing.status_code == 422
    assert state(session) == before


def test_a_suspense_line_is_resolved_into_a_payment(
    api: Api, factory: Factory, session: Session
) -> None:
    deal = make_deal(factory)
    other = make_deal(factory)
    day = clock.today()
    imported = upload(api, deal.admin_token, HEADER + f"{day},10000.00,licence fee,SME\n")
    line_id = imported.json["bank_lines"][0]["id"]
    assert balances(session)[ledger.SUSPENSE] == -1_000_000
    before = state(session)

    refusals = [
        (deal.licensee_token, line_id, deal.statement.id, 403),
        (deal.auditor_token, line_id, deal.statement.id, 403),
        (deal.tto_token, line_id, deal.statement.id, 403),
        (None, line_id, deal.statement.id, 401),
        (deal.admin_token, uuid.uuid4(), deal.statement.id, 404),
        (deal.admin_token, line_id, uuid.uuid4(), 404),
    ]
    for token, target, statement_id, status in refusals:
        answer = api.as_(token).post(
            f"/bank-lines/{target}/match", json={"statement_id": str(statement_id)}
        )
        assert answer.status_code == status, answer.json
    assert pay(api, other.admin_token, other.statement.id, "10000.00").status_code == 201
    before = state(session)
    refused = api.as_(deal.admin_token).post(
        f"/bank-lines/{line_id}/match", json={"statement_id": str(other.statement.id)}
    )
    assert refused.status_code == 409
    assert refused.json["code"] == "already_paid"
    assert state(session) == before

    matched = api.as_(deal.admin_token).post(
        f"/bank-lines/{line_id}/match", json={"statement_id": str(deal.statement.id)}
    )
    assert matched.status_code == 200, matched.json
    assert matched.json["status"] == "resolved"
    assert matched.json["statement_id"] == str(deal.statement.id)
    payment = reload(session, Payment, uuid.UUID(matched.json["payment_id"]))
    assert (payment.source.value, payment.amount, payment.paid_date) == ("bank", 1_000_000, day)
    assert reload(session, Statement, deal.statement.id).status is StatementStatus.PAID
    assert reload(session, Licence, deal.licence.id).status is LicenceStatus.ACTIVE
    books = balances(session)
    assert books.get(ledger.SUSPENSE, 0) == 0
    assert books[ledger.CASH] == 2_000_000  # this line once, and the other licence's payment

    again = api.as_(deal.admin_token).post(
        f"/bank-lines/{line_id}/match", json={"statement_id": str(deal.statement.id)}
    )
    assert again.status_code == 409
    assert api.as_(deal.admin_token).get("/bank-lines?status=suspense").json == []
    resolved = api.as_(deal.admin_token).get("/bank-lines?status=resolved").json
    assert [line["id"] for line in resolved] == [line_id]


def test_only_the_clearing_house_imports_and_only_it_and_auditors_see_bank_lines(
    api: Api, factory: Factory, session: Session
) -> None:
    deal = make_deal(factory)
    content = HEADER + f"{clock.today()},1.00,x,\n"
    before = state(session)
    for token, status in [
        (deal.licensee_token, 403),
        (deal.tto_token, 403),
        (deal.auditor_token, 403),
        (None, 401),
    ]:
        assert upload(api, token, content).status_code == status
        assert api.as_(token).get("/bank-lines").status_code == (
            200 if token == deal.auditor_token else status
        )
    assert state(session) == before


def test_the_sample_file_is_a_valid_import(api: Api, factory: Factory) -> None:
    deal = make_deal(factory)
    answer = upload(api, deal.admin_token, SAMPLE.read_bytes(), SAMPLE.name)
    assert answer.status_code == 200, answer.json
    assert answer.json["lines"] == 4
    assert answer.json["matched"] + answer.json["suspense"] == 4
    references = {line["reference"] for line in answer.json["bank_lines"]}
    assert "royalty Q1" in references  # the Chinese and the BOM read intact
    assert any("许可费" in reference for reference in references)
