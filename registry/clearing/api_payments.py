"""HTTP endpoints for payments, bank-statement imports and the suspense list (thin views).

Access (services check it; anything outside the caller's scope is 404):

========================================  ==========================================
``POST /payments``                        licensee (own enterprise's statements), admin
``GET /payments``, ``/payments/{id}``     licensee (own), TTO (its patents' licences),
                                          admin, auditor
``POST /bank-statements``                 admin
``GET /bank-lines``                       admin, auditor
``POST /bank-lines/{id}/match``           admin
========================================  ==========================================
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters
from werkzeug.datastructures import FileStorage

from registry.clearing import bank, payments
from registry.clearing import schemas_payments as schemas
from registry.clearing.models import BankLine, BankLineStatus, Payment
from registry.core.actor import require_actor
from registry.core.api import make_blueprint, paginate
from registry.core.errors import FieldError, NotFound, ValidationFailed
from registry.core.http import get_session
from registry.core.idempotency import HEADER_DOC, idempotent

blp = make_blueprint(
    "clearing_payments", __name__, "Payments, bank-statement imports and the suspense list"
)


@blp.route("/payments")
class Payments(MethodView):
    @idempotent
    @blp.doc(parameters=[HEADER_DOC])  # the POST's header, not the GET's beside it
    @blp.arguments(schemas.PaymentCreateSchema)
    @blp.response(201, schemas.PaymentSchema)
    @blp.alt_response(404, description="no such statement in your scope")
    @blp.alt_response(409, description="statement_void, already_paid, or idempotency_conflict")
    def post(self, data: dict[str, Any]) -> Payment:
        """Record a payment on a statement: your enterprise's (licensee) or any (admin).

        A partial payment leaves the statement open; an overpayment's excess is ``credit``,
        held for the licensee and applied to its next statements; a payment after the due
        date bills late interest per the terms on a new statement (``interest_statement_id``).
        Send an ``Idempotency-Key`` to retry safely."""
        return payments.record_payment(
            get_session(),
            actor=require_actor(),
            statement_id=data["statement_id"],
            amount=data["amount"],
            paid_date=data["paid_date"],
            reference=data["reference"],
        )

    @blp.arguments(schemas.PaymentQuerySchema, location="query")
    @blp.response(200, schemas.PaymentSchema(many=True))
    @blp.paginate()
    def get(self, query: dict[str, Any], pagination_parameters: PaginationParameters) -> Any:
        """Payments you may see, newest first, by statement or licence."""
        session = get_session()
        statement = payments.visible_payments(require_actor(), query)
        page = paginate(session, statement, pagination_parameters)
        interest = payments.interest_statements(session, page)
        for payment in page:
            payment.interest_statement_id = interest.get(str(payment.id))  # type: ignore[attr-defined]
        return page


@blp.route("/payments/<uuid:payment_id>")
class PaymentById(MethodView):
    @blp.response(200, schemas.PaymentSchema)
    def get(self, payment_id: uuid.UUID) -> Payment:
        session = get_session()
        actor = require_actor()
        payment = session.get(Payment, payment_id)
        if payment is None:
            raise NotFound("payment")
        try:
            payments.visible_statement(session, actor, payment.statement_id)
        except NotFound:
            raise NotFound("payment") from None
        interest = payments.interest_statements(session, [payment])
        payment.interest_statement_id = interest.get(str(payment.id))  # type: ignore[attr-defined]
        return payment


@blp.route("/bank-statements")
class BankStatements(MethodView):
    @blp.arguments(schemas.BankFileSchema, location="files")
    @blp.response(200, schemas.BankImportSchema)
    @blp.alt_response(422, description="the per-row error report; nothing was imported")
    def post(self, _files: dict[str, Any]) -> dict[str, Any]:
        """Import a bank statement (CSV, multipart field ``file``; admin).

        Lines naming an open statement's number become payments; the others are held in
        suspense. Lines imported before are skipped, so importing a file again adds nothing."""
        actor = require_actor()
        bank.require_admin(actor)
        upload: FileStorage | None = request.files.get("file")
        if upload is None or not upload.filename:
            raise ValidationFailed(
                "send the file as multipart field 'file'", [FieldError.of("file", "missing")]
            )
        result = bank.import_bank_statement(get_session(), actor=actor, data=upload.read())
        lines = [*result.matched, *result.suspense]
        for line in lines:
            line.reason = result.reasons.get(line.id)  # type: ignore[attr-defined]
        return {
            "lines": result.lines,
            "matched": len(result.matched),
            "suspense": len(result.suspense),
            "duplicates": result.duplicates,
            "bank_lines": lines,
        }


@blp.route("/bank-lines")
class BankLines(MethodView):
    @blp.arguments(schemas.BankLineQuerySchema, location="query")
    @blp.response(200, schemas.BankLineSchema(many=True))
    @blp.paginate()
    def get(self, query: dict[str, Any], pagination_parameters: PaginationParameters) -> Any:
        """Imported bank lines (admins, auditors); ``status=suspense`` is the suspense list,
        each line with the reason it was not matched."""
        session = get_session()
        page: list[BankLine] = paginate(
            session, bank.bank_lines_query(require_actor(), query), pagination_parameters
        )
        for line in page:
            if line.status is BankLineStatus.SUSPENSE:
                line.reason = bank.suspense_reason(session, line.reference)  # type: ignore[attr-defined]
        return page


@blp.route("/bank-lines/<uuid:line_id>/match")
class BankLineMatch(MethodView):
    @blp.arguments(schemas.BankLineMatchSchema)
    @blp.response(200, schemas.BankLineSchema)
    @blp.alt_response(409, description="not in suspense, statement_void, already_paid")
    def post(self, data: dict[str, Any], line_id: uuid.UUID) -> BankLine:
        """Resolve a suspense line into a payment on the statement named (admin)."""
        return bank.match_line(
            get_session(),
            actor=require_actor(),
            line_id=line_id,
            statement_id=data["statement_id"],
        )
