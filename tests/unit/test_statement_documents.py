"""A statement as users see it, without a database: the status shown, the CSV and the bilingual
PDF (registry.clearing.statements.statement_view, registry.clearing.statement_documents)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pypdf
import pytest

from registry.clearing.models import Statement, StatementKind, StatementStatus
from registry.clearing.statement_documents import (
    document_values,
    statement_csv,
    statement_pdf,
)
from registry.clearing.statements import statement_view

TODAY = date(2026, 11, 26)
ISSUED = datetime(2026, 10, 31, 20, 30, tzinfo=UTC)  # 1 November 2026, 04:30 in Beijing


def statement(**overrides: Any) -> Statement:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "number": "ST-2026-000042",
        "licence_id": uuid.uuid4(),
        "licensee_organisation_id": uuid.uuid4(),
        "kind": StatementKind.ROYALTY,
        "period_start": date(2026, 7, 1),
        "period_end": date(2026, 9, 30),
        "amount_due": 432_099,
        "amount_paid": 0,
        "due_date": date(2026, 10, 30),
        "status": StatementStatus.OPEN,
        # 3.5 % of CNY 123,456.78 = 4,320.99 (half up, to the fen).
        "breakdown": {
            "gross": "4320.99",
            "discount": "0.00",
            "cap_reduction": "0.00",
            "due": "4320.99",
            "rate": "3.50",
            "unit_amount": None,
            "licence_year": 2,
        },
        "void_reason": None,
        "created_dt": ISSUED,
    }
    values.update(overrides)
    return Statement(**values)


def values(found: Statement, today: date = TODAY) -> dict[str, Any]:
    return document_values(
        found,
        licence={"reference": "OL-2026-000007"},
        licensee={"name": "丙科技有限公司", "uscc": "91310000MA1FL0000X"},
        patent={"title": "一种锂电池负极材料的制备方法", "application_number": "202310123456.7"},
        today=today,
    )


@pytest.mark.parametrize(
    ("paid", "status", "due", "shown"),
    [
        (0, StatementStatus.OPEN, TODAY, "open"),  # due today is not yet late
        (100, StatementStatus.OPEN, TODAY, "partially_paid"),
        (0, StatementStatus.OPEN, TODAY - timedelta(days=1), "overdue"),
        (100, StatementStatus.OPEN, TODAY - timedelta(days=1), "overdue"),
        (432_099, StatementStatus.PAID, TODAY - timedelta(days=1), "paid"),
        (100, StatementStatus.VOID, TODAY - timedelta(days=1), "void"),
    ],
)
def test_the_status_shown(paid: int, status: StatementStatus, due: date, shown: str) -> None:
    assert statement_view(statement(amount_paid=paid, status=status, due_date=due), TODAY) == shown


def test_the_csv_has_one_row_per_field_then_the_breakdown() -> None:
    data = statement_csv(values(statement(amount_paid=100_000)))
    assert data.startswith("\ufeff".encode())
    assert b"\r\n" in data
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["field", "字段", "value"]
    fields = {row[0]: row[2] for row in rows[1:] if row[0] != "detail"}
    assert fields == {
        "number": "ST-2026-000042",
        "licence": "OL-2026-000007",
        "licensee": "丙科技有限公司",
        "licensee_uscc": "91310000MA1FL0000X",
        "patent": "202310123456.7",
        "kind": "提成许可费 / running royalty",
        "period": "2026-07-01 – 2026-09-30",
        "due_date": "2026-10-30",
        "amount_due": "4320.99",
        "amount_paid": "1000.00",
        "outstanding": "3320.99",
        "status": "overdue",
    }
    # Zero lines (no discount, no cap reduction) and figures without a label are left out.
    details = [(row[1], row[2]) for row in rows if row[0] == "detail"]
    assert details == [
        ("费率（%）/ rate (%)", "3.50"),
        ("按费率计算 / at the rate", "4320.99"),
        ("本期应付 / due for the period", "4320.99"),
    ]


def test_a_void_statement_owes_nothing() -> None:
    void = statement(status=StatementStatus.VOID, amount_paid=100_000, void_reason="v2: 退货")
    data = values(void)
    assert data["statement"]["outstanding"] == "0.00"
    assert data["statement"]["status"] == "void"


def pdf_text(found: Statement, today: date = TODAY) -> str:
    data = statement_pdf(found, values(found, today))
    assert data.startswith(b"%PDF-")
    return "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_the_pdf_is_bilingual() -> None:
    text = pdf_text(statement(amount_paid=100_000))
    for expected in (
        "许可使用费账单",
        "Royalty Statement",
        "ST-2026-000042",
        "OL-2026-000007",
        "丙科技有限公司",
        "提成许可费",
        "running royalty",
        "2026年10月30日",  # due date, in both languages
        "30 October 2026",
        "2026年11月1日",  # issued: the Beijing date of the statement's creation
        "4320.99",
        "3320.99",
        "已逾期",
        "overdue",
    ):
        assert expected in text, expected


def test_the_pdf_of_a_void_statement_says_so() -> None:
    text = pdf_text(statement(status=StatementStatus.VOID, void_reason="corrected by v2: 退货"))
    assert "已作废 / VOID" in text
    assert "corrected by v2: 退货" in text


def test_the_pdf_is_the_same_for_the_same_statement_on_the_same_day() -> None:
    found = statement()
    first = statement_pdf(found, values(found))
    assert statement_pdf(found, values(found)) == first
    assert statement_pdf(found, values(found, TODAY + timedelta(days=1))) != first  # "as of"
