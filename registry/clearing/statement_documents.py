"""A statement as a document: CSV (UTF-8 with BOM, so Excel shows the Chinese) and a bilingual
PDF (PDF/A-3b through registry.core.pdf, template ``royalty_statement/1.0``)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time
from typing import Any, Final

from sqlalchemy.orm import Session

from registry.accounts.models import Organisation
from registry.clearing.models import Statement
from registry.clearing.statements import statement_view
from registry.core import clock
from registry.core.clock import BEIJING
from registry.core.money import format_money, from_fen
from registry.core.pdf import TemplateInfo, render_pdf
from registry.licences.models import Licence
from registry.patents.models import Patent

KINDS: Final = {
    "entry_fee": ("入门费", "entry fee"),
    "lump_sum": ("一次总付许可费", "lump sum"),
    "instalment": ("分期许可费", "instalment"),
    "royalty": ("提成许可费", "running royalty"),
    "minimum_true_up": ("年度最低许可费补足", "annual minimum true-up"),
    "interest": ("逾期利息", "late-payment interest"),
}
STATUS_WORDS: Final = {
    "open": "待付款",
    "partially_paid": "部分付款",
    "paid": "已付清",
    "overdue": "已逾期",
    "void": "已作废",
}
#: The breakdown lines a document shows, in this order (others stay in the JSON only).
BREAKDOWN_WORDS: Final = {
    "rate": "费率（%）/ rate (%)",
    "unit_amount": "单价 / amount per unit",
    "gross": "按费率计算 / at the rate",
    "discount": "中小企业优惠 / SME discount",
    "cap_reduction": "年度上限扣减 / annual cap reduction",
    "minimum": "年度最低许可费 / annual minimum",
    "charged_in_year": "本年度已计提成费 / royalties charged in the year",
    "due": "本期应付 / due for the period",
    "statement_number": "逾期账单 / statement paid late",
    "amount_late": "逾期金额 / amount paid late",
    "days_late": "逾期天数 / days late",
    "late_interest_rate": "年利率（%）/ annual interest rate (%)",
    "interest": "利息 / interest",
}


def _money(fen: int) -> str:
    return format_money(from_fen(fen))


def _dates(day: date) -> dict[str, str]:
    # As the contract writes dates (registry.contracts.context; clearing does not import it).
    return {"zh": f"{day.year}年{day.month}月{day.day}日", "en": f"{day.day} {day:%B} {day.year}"}


def document_data(session: Session, statement: Statement) -> dict[str, Any]:
    """What the CSV and the PDF of ``statement`` show, as of today."""
    licence = session.get_one(Licence, statement.licence_id)
    licensee = session.get_one(Organisation, statement.licensee_organisation_id)
    patent = session.get_one(Patent, licence.patent_id)
    return document_values(
        statement,
        licence={"reference": licence.reference},
        licensee={"name": licensee.name, "uscc": licensee.uscc or ""},
        patent={"title": patent.title, "application_number": patent.application_number},
        today=clock.today(),
    )


def document_values(
    statement: Statement,
    *,
    licence: dict[str, str],
    licensee: dict[str, str],
    patent: dict[str, str],
    today: date,
) -> dict[str, Any]:
    """:func:`document_data` from what was read (pure: no database)."""
    zh, en = KINDS[statement.kind.value]
    period = (
        f"{statement.period_start.isoformat()} – {statement.period_end.isoformat()}"
        if statement.period_start and statement.period_end
        else None
    )
    lines = [
        {"label": label, "value": str(statement.breakdown[key])}
        for key, label in BREAKDOWN_WORDS.items()
        if statement.breakdown.get(key) not in (None, "", "0.00", "None")
    ]
    status = statement_view(statement, today)
    outstanding = max(statement.amount_due - statement.amount_paid, 0)
    return {
        "statement": {
            "number": statement.number,
            "kind": statement.kind.value,
            "kind_zh": zh,
            "kind_en": en,
            "period": period,
            "issued": _dates(statement.created_dt.astimezone(BEIJING).date()),
            "due": _dates(statement.due_date),
            "due_date": statement.due_date.isoformat(),
            "amount_due": _money(statement.amount_due),
            "amount_paid": _money(statement.amount_paid),
            "outstanding": _money(0 if status == "void" else outstanding),
            "status": status,
            "status_zh": STATUS_WORDS[status],
            "status_en": status.replace("_", " "),
            "as_of": _dates(today),
            "void_reason": statement.void_reason or "",
        },
        "licence": licence,
        "licensee": licensee,
        "patent": patent,
        "lines": lines,
    }


def statement_csv(data: dict[str, Any]) -> bytes:
    """One row per field (English name, Chinese name, value), then the breakdown lines."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["field", "字段", "value"])
    s = data["statement"]
    rows = [
        ("number", "账单号", s["number"]),
        ("licence", "许可编号", data["licence"]["reference"]),
        ("licensee", "被许可方", data["licensee"]["name"]),
        ("licensee_uscc", "统一社会信用代码", data["licensee"]["uscc"]),
        ("patent", "专利", data["patent"]["application_number"]),
        ("kind", "项目", f"{s['kind_zh']} / {s['kind_en']}"),
        ("period", "期间", s["period"] or ""),
        ("due_date", "付款期限", s["due_date"]),
        ("amount_due", "应付金额", s["amount_due"]),
        ("amount_paid", "已付金额", s["amount_paid"]),
        ("outstanding", "未付余额", s["outstanding"]),
        ("status", "状态", s["status"]),
    ]
    rows += [("detail", line["label"], line["value"]) for line in data["lines"]]
    for row in rows:
        writer.writerow(row)
    return buffer.getvalue().encode("utf-8-sig")


def statement_pdf(statement: Statement, data: dict[str, Any]) -> bytes:
    """The bilingual PDF; its metadata dates are the day it was issued (not the clock)."""
    info = TemplateInfo.load("royalty_statement", "1.0")
    issued = statement.created_dt.astimezone(BEIJING).date()
    return render_pdf(info, data, document_dt=datetime.combine(issued, time(), BEIJING))
