"""HTTP endpoints for schedules, royalty reports and statements (thin: schema → service)."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask import Response
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from registry.clearing import reports, schedule_view, statement_documents, statements
from registry.clearing.models import RoyaltyReport, Statement, StatementKind, StatementStatus
from registry.core import clock
from registry.core.actor import require_actor
from registry.core.api import QuerySchema, Schema, make_blueprint, paginate
from registry.core.fields import FenField
from registry.core.http import get_session
from registry.core.idempotency import HEADER_DOC, idempotent

blp = make_blueprint(
    "clearing-statements", __name__, "Schedules, royalty reports and statements (invoices)"
)


def _enum(enum_class: Any, **kwargs: Any) -> ma.fields.Enum:
    return ma.fields.Enum(enum_class, by_value=True, **kwargs)


class ReportCreateSchema(Schema):
    period_start = ma.fields.Date(required=True)
    period_end = ma.fields.Date(required=True)
    net_sales = FenField(allow_zero=True, metadata={"description": "CNY, when the base is sales"})
    profit = FenField(allow_zero=True, metadata={"description": "CNY, when the base is profit"})
    units = ma.fields.Integer(
        strict=True, validate=ma.validate.Range(min=0, max=10**12), allow_none=False
    )
    correction_reason = ma.fields.String(validate=ma.validate.Length(min=1, max=2000))


class ReportSchema(ma.Schema):
    id = ma.fields.UUID()
    licence_id = ma.fields.UUID()
    period_start = ma.fields.Date()
    period_end = ma.fields.Date()
    version = ma.fields.Integer()
    correction_reason = ma.fields.String(allow_none=True)
    base = ma.fields.String(attribute="base.value")
    base_amount = ma.fields.Method("_base_amount")
    licence_year = ma.fields.Integer()
    royalty_due = FenField()
    breakdown = ma.fields.Dict()
    statement_id = ma.fields.Method("_statement_id")
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
    kind = _enum(StatementKind)
    status = _enum(StatementStatus)


class StatementSchema(ma.Schema):
    id = ma.fields.UUID()
    number = ma.fields.String()
    licence_id = ma.fields.UUID()
    licensee_id = ma.fields.UUID(attribute="licensee_organisation_id")
    kind = ma.fields.String(attribute="kind.value")
    period_start = ma.fields.Date(allow_none=True)
    period_end = ma.fields.Date(allow_none=True)
    instalment_number = ma.fields.Integer(allow_none=True)
    amount_due = FenField()
    amount_paid = FenField()
    due_date = ma.fields.Date()
    status = ma.fields.Method(
        "_status", metadata={"description": "open, partially_paid, paid, overdue or void"}
    )
    breakdown = ma.fields.Dict()
    void_reason = ma.fields.String(allow_none=True)
    created_dt = ma.fields.AwareDateTime()

    def _status(self, statement: Statement) -> str:
        return statements.statement_view(statement, clock.today())


class ScheduleItemSchema(ma.Schema):
    kind = ma.fields.String()
    due_date = ma.fields.Date()
    period_start = ma.fields.Date(allow_none=True)
    period_end = ma.fields.Date(allow_none=True)
    licence_year = ma.fields.Integer(allow_none=True)
    number = ma.fields.Integer(allow_none=True)
    amount = FenField(allow_none=True)
    statement_id = ma.fields.UUID(allow_none=True)
    status = ma.fields.String()


class SchedulePeriodSchema(ma.Schema):
    period_start = ma.fields.Date()
    period_end = ma.fields.Date()
    licence_year = ma.fields.Integer()
    report_due_date = ma.fields.Date(allow_none=True)
    payment_due_date = ma.fields.Date(allow_none=True)
    status = ma.fields.String()


class ScheduleSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ScheduleItemSchema))
    periods = ma.fields.List(ma.fields.Nested(SchedulePeriodSchema))
    free_until = ma.fields.String(allow_none=True)


@blp.route("/licences/<uuid:licence_id>/schedule")
class LicenceSchedule(MethodView):
    @blp.response(200, ScheduleSchema)
    def get(self, licence_id: uuid.UUID) -> dict[str, Any]:
        """Everything the licence owes and every period it reports, each with its status."""
        return schedule_view.licence_schedule(
            get_session(), actor=require_actor(), licence_id=licence_id
        )


@blp.route("/licences/<uuid:licence_id>/reports", parameters=[HEADER_DOC])
class LicenceReports(MethodView):
    @blp.response(200, ReportSchema(many=True))
    def get(self, licence_id: uuid.UUID) -> list[RoyaltyReport]:
        session = get_session()
        found = reports.reports_of(session, actor=require_actor(), licence_id=licence_id)
        _attach_statements(session, found)
        return found

    @idempotent
    @blp.arguments(ReportCreateSchema)
    @blp.response(201, ReportSchema)
    @blp.alt_response(409, description="not_reportable, already_reported")
    def post(self, data: dict[str, Any], licence_id: uuid.UUID) -> RoyaltyReport:
        """Report one ended period's net sales, profit or units (as the terms' base needs);
        a correction of a reported period sends ``correction_reason``. Issues its statement."""
        session = get_session()
        report, statement = reports.file_report(
            session, actor=require_actor(), licence_id=licence_id, data=data
        )
        report.statement = statement  # type: ignore[attr-defined]
        return report


def _attach_statements(session: Any, found: list[RoyaltyReport]) -> None:
    from sqlalchemy import select

    by_report = {
        s.report_id: s
        for s in session.scalars(
            select(Statement).where(Statement.report_id.in_([r.id for r in found]))
        )
    }
    for report in found:
        report.statement = by_report.get(report.id)  # type: ignore[attr-defined]


@blp.route("/statements")
class Statements(MethodView):
    @blp.arguments(StatementQuerySchema, location="query")
    @blp.response(200, StatementSchema(many=True))
    @blp.paginate()
    def get(self, query: dict[str, Any], pagination_parameters: PaginationParameters) -> Any:
        """Statements you may see: your enterprise's (licensee), those on your organisation's
        patents (TTO), all (admins, auditors)."""
        statement = statements.visible_statements(require_actor(), query)
        return paginate(get_session(), statement, pagination_parameters)


@blp.route("/statements/<uuid:statement_id>")
class StatementById(MethodView):
    @blp.response(200, StatementSchema)
    def get(self, statement_id: uuid.UUID) -> Statement:
        return statements.get_statement(
            get_session(), actor=require_actor(), statement_id=statement_id
        )


@blp.route("/statements/<uuid:statement_id>.csv")
class StatementCsv(MethodView):
    @blp.doc(responses={"200": {"description": "the statement as CSV (UTF-8 with BOM)"}})
    def get(self, statement_id: uuid.UUID) -> Response:
        session = get_session()
        found = statements.get_statement(session, actor=require_actor(), statement_id=statement_id)
        data = statement_documents.document_data(session, found)
        response = Response(statement_documents.statement_csv(data), mimetype="text/csv")
        response.headers["Content-Disposition"] = f"attachment; filename={found.number}.csv"
        return response


@blp.route("/statements/<uuid:statement_id>.pdf")
class StatementPdf(MethodView):
    @blp.doc(responses={"200": {"description": "the statement as a bilingual PDF"}})
    def get(self, statement_id: uuid.UUID) -> Response:
        session = get_session()
        found = statements.get_statement(session, actor=require_actor(), statement_id=statement_id)
        data = statement_documents.document_data(session, found)
        response = Response(
            statement_documents.statement_pdf(found, data), mimetype="application/pdf"
        )
        response.headers["Content-Disposition"] = f"attachment; filename={found.number}.pdf"
        response.headers["Cache-Control"] = "private, no-store"
        return response
