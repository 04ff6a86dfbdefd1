"""Request and response shapes for schedules, royalty reports and statements.

Amounts are decimal strings with two places (registry.core.fields.FenField); a report's units
are a plain integer. Statuses are the ones users see (registry.clearing.statements and
registry.clearing.schedule_view list them).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from registry.clearing.models import RoyaltyReport, Statement, StatementKind
from registry.clearing.statements import VIEW_STATUSES, statement_view
from registry.core import clock
from registry.core.api import QuerySchema, Schema
from registry.core.fields import FenField


class ReportCreateSchema(Schema):
    period_start = ma.fields.Date(required=True)
    period_end = ma.fields.Date(required=True)
    net_sales = FenField(allow_zero=True, metadata={"description": "CNY, when the base is sales"})
    profit = FenField(allow_zero=True, metadata={"description": "CNY, when the base is profit"})
    units = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=0, max=10**12))
    correction_reason = ma.fields.String(
        validate=ma.validate.Length(min=1, max=2000),
        metadata={"description": "required to correct a period reported already"},
    )


class ReportSchema(ma.Schema):
    id = ma.fields.UUID()
    licence_id = ma.fields.UUID()
    period_start = ma.fields.Date()
    period_end = ma.fields.Date()
    version = ma.fields.Integer()
    correction_reason = ma.fields.String(allow_none=True)
    base = ma.fields.String(attribute="base.value")
    base_amount = ma.fields.Method(
        "_base_amount", metadata={"description": "CNY for sales or profit, an integer of units"}
    )
    licence_year = ma.fields.Integer()
    royalty_due = FenField()
    breakdown = ma.fields.Dict(
        metadata={"description": "gross, discount, cap_reduction, due, rate, unit_amount"}
    )
    statement_id = ma.fields.Method("_statement_id", allow_none=True)
    created_dt = ma.fields.AwareDateTime()

    def _base_amount(self, report: RoyaltyReport) -> str | int:
        if report.base.value == "units":
            return report.base_amount
        return str(FenField()._serialize(report.base_amount, None, None))

    def _statement_id(self, report: RoyaltyReport) -> str | None:
        statement = getattr(report, "statement", None)
        return str(statement.id) if statement is not None else None


class StatementQuerySchema(QuerySchema):
    licence_id = ma.fields.UUID()
    kind = ma.fields.Enum(StatementKind, by_value=True)
    status = ma.fields.String(
        validate=ma.validate.OneOf(VIEW_STATUSES), metadata={"description": "as shown"}
    )


class StatementSchema(ma.Schema):
    id = ma.fields.UUID()
    number = ma.fields.String()
    licence_id = ma.fields.UUID()
    licensee_id = ma.fields.UUID(attribute="licensee_organisation_id")
    kind = ma.fields.String(attribute="kind.value")
    period_start = ma.fields.Date(allow_none=True)
    period_end = ma.fields.Date(allow_none=True)
    instalment_number = ma.fields.Integer(allow_none=True)
    report_id = ma.fields.UUID(allow_none=True)
    amount_due = FenField()
    amount_paid = FenField()
    amount_outstanding = ma.fields.Method("_outstanding")
    due_date = ma.fields.Date()
    status = ma.fields.Method(
        "_status", metadata={"description": "open, partially_paid, paid, overdue or void"}
    )
    breakdown = ma.fields.Dict()
    void_reason = ma.fields.String(allow_none=True)
    created_dt = ma.fields.AwareDateTime()

    def _status(self, statement: Statement) -> str:
        return statement_view(statement, clock.today())

    def _outstanding(self, statement: Statement) -> str:
        left = 0 if statement_view(statement, clock.today()) == "void" else statement.amount_due
        return str(FenField()._serialize(max(left - statement.amount_paid, 0), None, None))


class ScheduleItemSchema(ma.Schema):
    kind = ma.fields.String(
        metadata={
            "description": "entry_fee, lump_sum, instalment, running_royalty, minimum_true_up"
        }
    )
    due_date = ma.fields.Date()
    period_start = ma.fields.Date(allow_none=True)
    period_end = ma.fields.Date(allow_none=True)
    licence_year = ma.fields.Integer(allow_none=True)
    number = ma.fields.Integer(allow_none=True)
    amount = FenField(allow_none=True, metadata={"description": "null until a report sets it"})
    statement_id = ma.fields.UUID(allow_none=True)
    status = ma.fields.String(
        metadata={
            "description": "a statement's status (open, partially_paid, paid, overdue), or "
            "upcoming, reported, met, due, overdue"
        }
    )


class SchedulePeriodSchema(ma.Schema):
    period_start = ma.fields.Date()
    period_end = ma.fields.Date()
    licence_year = ma.fields.Integer()
    report_due_date = ma.fields.Date(allow_none=True)
    payment_due_date = ma.fields.Date(allow_none=True)
    status = ma.fields.String(metadata={"description": "free, upcoming, due, late, reported"})


class ScheduleSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ScheduleItemSchema))
    periods = ma.fields.List(ma.fields.Nested(SchedulePeriodSchema))
    free_until = ma.fields.Date(allow_none=True)


def attach_statements(reports: list[RoyaltyReport], statements: list[Statement]) -> None:
    """Give each report its statement for :class:`ReportSchema` (``statement_id``)."""
    by_report: dict[Any, Statement] = {s.report_id: s for s in statements}
    for report in reports:
        report.statement = by_report.get(report.id)  # type: ignore[attr-defined]
