"""HTTP endpoints for schedules, royalty reports and statements (thin: schema → service)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters
from sqlalchemy import select

from registry.clearing import reports, schedule_view, statement_documents, statements
from registry.clearing.models import RoyaltyReport, Statement
from registry.clearing.schemas_statements import (
    ReportCreateSchema,
    ReportSchema,
    ScheduleSchema,
    StatementQuerySchema,
    StatementSchema,
    attach_statements,
)
from registry.core.actor import require_actor
from registry.core.api import make_blueprint, paginate
from registry.core.http import download, get_session
from registry.core.idempotency import HEADER_DOC, idempotent

blp = make_blueprint(
    "clearing-statements", __name__, "Schedules, royalty reports and statements (invoices)"
)


@blp.route("/licences/<uuid:licence_id>/schedule")
class LicenceSchedule(MethodView):
    @blp.response(200, ScheduleSchema)
    def get(self, licence_id: uuid.UUID) -> dict[str, Any]:
        """Everything the licence owes and every period it reports, each with its status."""
        return schedule_view.licence_schedule(
            get_session(), actor=require_actor(), licence_id=licence_id
        )


@blp.route("/licences/<uuid:licence_id>/reports")
class LicenceReports(MethodView):
    @blp.response(200, ReportSchema(many=True))
    def get(self, licence_id: uuid.UUID) -> list[RoyaltyReport]:
        session = get_session()
        found = reports.reports_of(session, actor=require_actor(), licence_id=licence_id)
        issued = session.scalars(
            select(Statement).where(Statement.report_id.in_([r.id for r in found]))
        )
        attach_statements(found, list(issued))
        return found

    @idempotent
    @blp.doc(parameters=[HEADER_DOC])  # the POST's header, not the GET's beside it
    @blp.arguments(ReportCreateSchema)
    @blp.response(201, ReportSchema)
    @blp.alt_response(409, description="not_reportable, already_reported, already_settled")
    def post(self, data: dict[str, Any], licence_id: uuid.UUID) -> RoyaltyReport:
        """Report one ended period's net sales, profit or units (as the terms' base needs);
        a correction of a reported period sends ``correction_reason``. Issues its statement."""
        session = get_session()
        report, statement = reports.file_report(
            session, actor=require_actor(), licence_id=licence_id, data=data
        )
        attach_statements([report], [statement] if statement is not None else [])
        return report


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
        return download(
            statement_documents.statement_csv(data),
            mimetype="text/csv",
            filename=f"{found.number}.csv",
        )


@blp.route("/statements/<uuid:statement_id>.pdf")
class StatementPdf(MethodView):
    @blp.doc(responses={"200": {"description": "the statement as a bilingual PDF"}})
    def get(self, statement_id: uuid.UUID) -> Response:
        session = get_session()
        found = statements.get_statement(session, actor=require_actor(), statement_id=statement_id)
        data = statement_documents.document_data(session, found)
        return download(
            statement_documents.statement_pdf(found, data),
            mimetype="application/pdf",
            filename=f"{found.number}.pdf",
        )
