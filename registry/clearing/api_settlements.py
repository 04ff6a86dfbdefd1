"""HTTP endpoints for settlement runs, payee statements, the ledger and licensees' statements
of account (thin: schema → service → schema)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from registry.clearing import ledger_views, payee_statements, settlement, settlement_views
from registry.clearing import schemas_settlements as schemas
from registry.config import Settings
from registry.core.actor import require_actor
from registry.core.api import make_blueprint, paginate
from registry.core.http import download, get_session
from registry.core.idempotency import HEADER_DOC, idempotent

blp = make_blueprint(
    "settlements", __name__, "Settlement runs, payee statements, the ledger and accounts"
)

PDF_DOC = {
    "200": {
        "description": "a PDF",
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    }
}
CSV_DOC = {
    "200": {
        "description": "CSV, UTF-8",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


def _settings() -> Settings:
    settings: Settings = current_app.config["REGISTRY_SETTINGS"]
    return settings


@blp.route("/settlements")
class Settlements(MethodView):
    @idempotent
    @blp.doc(parameters=[HEADER_DOC])  # the POST's header, not the GET's beside it
    @blp.arguments(schemas.SettlementRequestSchema)
    @blp.response(201, schemas.SettlementSchema)
    @blp.alt_response(409, description="nothing_to_settle, settlement_conflict")
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Settle every payment received in the period and not settled yet (admins).

        Send an ``Idempotency-Key`` to retry safely. Running a period again settles only
        payments that arrived since; with none, 409 ``nothing_to_settle``."""
        actor = require_actor()
        session = get_session()
        settings = _settings()
        run = settlement.run_settlement(
            session,
            actor=actor,
            period_start=data["period_start"],
            period_end=data["period_end"],
            fee_rate=settings.settlement_fee_rate,
            minimum_payout=settings.minimum_payout,
        )
        return settlement_views.describe_run(session, run, actor=actor)

    @blp.response(200, schemas.SettlementSummarySchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters) -> Any:
        """Runs you may see, newest first: all (admins, auditors), those paying your
        organisation or its inventors (TTO staff)."""
        statement = settlement_views.visible_runs(require_actor())
        return paginate(get_session(), statement, pagination_parameters)


@blp.route("/settlements/<uuid:run_id>")
class SettlementById(MethodView):
    @blp.response(200, schemas.SettlementSchema)
    def get(self, run_id: uuid.UUID) -> dict[str, Any]:
        """The run with its lines and payouts; TTO staff see only their organisation's and its
        inventors' lines, and no totals."""
        actor = require_actor()
        session = get_session()
        run = settlement_views.get_run(session, actor=actor, run_id=run_id)
        return settlement_views.describe_run(session, run, actor=actor)


@blp.route("/settlements/<uuid:run_id>/reverse", parameters=[HEADER_DOC])
class SettlementReverse(MethodView):
    @idempotent
    @blp.response(201, schemas.SettlementSchema)
    @blp.alt_response(409, description="not_reversible")
    def post(self, run_id: uuid.UUID) -> dict[str, Any]:
        """Reverse a run (admins): a new run with its lines negated; its payments can then be
        settled again. A run is reversed once; a reversing run is never reversed."""
        actor = require_actor()
        session = get_session()
        run = settlement.reverse_settlement(
            session, actor=actor, run_id=run_id, minimum_payout=_settings().minimum_payout
        )
        return settlement_views.describe_run(session, run, actor=actor)


@blp.route("/payees/<payee_type>/<uuid:payee_id>/statements")
class PayeeStatements(MethodView):
    @blp.response(200, schemas.PayeeRunSchema(many=True))
    def get(self, payee_type: str, payee_id: uuid.UUID) -> list[dict[str, Any]]:
        """The runs that paid a payee (``organisation``, ``inventor`` or ``beneficiary``), with
        its total and payout in each."""
        return payee_statements.payee_runs(
            get_session(), actor=require_actor(), payee_type=payee_type, payee_id=payee_id
        )


@blp.route("/settlements/<uuid:run_id>/payees/<payee_type>/<uuid:payee_id>")
class PayeeStatement(MethodView):
    @blp.response(200, schemas.PayeeStatementSchema)
    def get(self, run_id: uuid.UUID, payee_type: str, payee_id: uuid.UUID) -> dict[str, Any]:
        """A payee's statement for one run, each line traced to its payment, statement and
        licence."""
        return payee_statements.payee_statement(
            get_session(),
            actor=require_actor(),
            run_id=run_id,
            payee_type=payee_type,
            payee_id=payee_id,
        )


@blp.route("/settlements/<uuid:run_id>/payees/<payee_type>/<uuid:payee_id>.csv")
class PayeeStatementCsv(MethodView):
    @blp.doc(responses=CSV_DOC)
    def get(self, run_id: uuid.UUID, payee_type: str, payee_id: uuid.UUID) -> Response:
        """The payee statement as CSV."""
        found = payee_statements.payee_statement(
            get_session(),
            actor=require_actor(),
            run_id=run_id,
            payee_type=payee_type,
            payee_id=payee_id,
        )
        text = payee_statements.statement_csv(found)
        name = f"{found['run_number']}-{payee_type}-{payee_id}.csv"
        return download(text.encode("utf-8"), mimetype="text/csv", filename=name)


@blp.route("/settlements/<uuid:run_id>/payees/<payee_type>/<uuid:payee_id>.pdf")
class PayeeStatementPdf(MethodView):
    @blp.doc(responses=PDF_DOC)
    def get(self, run_id: uuid.UUID, payee_type: str, payee_id: uuid.UUID) -> Response:
        """The payee statement as a bilingual PDF (Chinese governs)."""
        found = payee_statements.payee_statement(
            get_session(),
            actor=require_actor(),
            run_id=run_id,
            payee_type=payee_type,
            payee_id=payee_id,
        )
        data = payee_statements.statement_pdf(found)
        name = f"{found['run_number']}-{payee_type}-{payee_id}.pdf"
        return download(data, mimetype="application/pdf", filename=name)


@blp.route("/ledger/trial-balance")
class TrialBalance(MethodView):
    @blp.response(200, schemas.TrialBalanceSchema)
    def get(self) -> dict[str, Any]:
        """Every account's debits, credits and balance (admins, auditors)."""
        return ledger_views.trial_balance(get_session(), actor=require_actor())


@blp.route("/ledger/accounts/<code>/entries")
class AccountEntries(MethodView):
    @blp.response(200, schemas.LedgerEntrySchema(many=True))
    @blp.paginate()
    def get(self, code: str, pagination_parameters: PaginationParameters) -> Any:
        """An account's entries, oldest first (admins, auditors), e.g. ``cash`` or
        ``payable:organisation:<id>``."""
        session = get_session()
        _, statement = ledger_views.account_entries(session, actor=require_actor(), code=code)
        entries = paginate(session, statement, pagination_parameters)
        return [ledger_views.entry_view(entry) for entry in entries]


@blp.route("/licensees/<uuid:organisation_id>/account")
class LicenseeAccount(MethodView):
    @blp.response(200, schemas.LicenseeAccountSchema)
    def get(self, organisation_id: uuid.UUID) -> dict[str, Any]:
        """A licensee's statement of account: statements, payments, what it owes and the
        credit held for it (the licensee itself, admins, auditors)."""
        return ledger_views.licensee_account(
            get_session(), actor=require_actor(), organisation_id=organisation_id
        )
