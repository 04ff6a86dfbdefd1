"""Request and response shapes for payments, bank statements and bank lines."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest.fields import Upload

from registry.clearing.models import BankLineStatus, PaymentSource
from registry.core.api import QuerySchema, Schema
from registry.core.fields import FenField

Str = ma.fields.String


class PaymentCreateSchema(Schema):
    statement_id = ma.fields.UUID(required=True)
    amount = FenField(required=True, metadata={"description": 'CNY, positive, e.g. "1234.50"'})
    paid_date = ma.fields.Date(
        required=True, metadata={"description": "the day the money was paid; not after today"}
    )
    reference = Str(
        load_default=None,
        allow_none=True,
        validate=ma.validate.Length(max=200),
        metadata={"description": "the payment reference (附言), e.g. the statement number"},
    )


class PaymentQuerySchema(QuerySchema):
    statement_id = ma.fields.UUID()
    licence_id = ma.fields.UUID()


class PaymentSchema(ma.Schema):
    """A payment: ``applied`` settled the statement, ``credit`` is held for the licensee."""

    id = ma.fields.UUID()
    statement_id = ma.fields.UUID()
    licence_id = ma.fields.UUID()
    payer_organisation_id = ma.fields.UUID()
    amount = FenField()
    applied = FenField()
    credit = FenField()
    paid_date = ma.fields.Date()
    reference = Str(allow_none=True)
    source = ma.fields.Enum(PaymentSource, by_value=True)
    bank_line_id = ma.fields.UUID(allow_none=True)
    interest_statement_id = ma.fields.Method("_interest")
    created_dt = ma.fields.AwareDateTime()

    def _interest(self, payment: Any) -> str | None:
        # Set on the object by the service (POST) or the view (lists): not a column.
        value = getattr(payment, "interest_statement_id", None)
        return None if value is None else str(value)


class BankLineQuerySchema(QuerySchema):
    status = ma.fields.Enum(BankLineStatus, by_value=True)


class BankLineMatchSchema(Schema):
    statement_id = ma.fields.UUID(required=True)


class BankLineSchema(ma.Schema):
    id = ma.fields.UUID()
    value_date = ma.fields.Date()
    amount = FenField()
    reference = Str()
    counterparty = Str(allow_none=True)
    status = ma.fields.Enum(BankLineStatus, by_value=True)
    statement_id = ma.fields.UUID(allow_none=True)
    reason = ma.fields.Method("_reason", metadata={"description": "why it is in suspense"})
    payment_id = ma.fields.Method("_payment", metadata={"description": "when just matched"})
    created_dt = ma.fields.AwareDateTime()

    def _reason(self, line: Any) -> str | None:
        # Set on the object by the service or the view: worked out, not stored.
        reason: str | None = getattr(line, "reason", None)
        return reason

    def _payment(self, line: Any) -> str | None:
        value = getattr(line, "payment_id", None)
        return None if value is None else str(value)


class BankImportSchema(ma.Schema):
    lines = ma.fields.Integer(metadata={"description": "receipts in the file"})
    matched = ma.fields.Integer()
    suspense = ma.fields.Integer()
    duplicates = ma.fields.Integer(metadata={"description": "seen before: not imported again"})
    bank_lines = ma.fields.List(ma.fields.Nested(BankLineSchema))


class BankFileSchema(ma.Schema):
    """The multipart body of a bank-statement import (checked in the view, after the role)."""

    class Meta:
        unknown = ma.EXCLUDE

    file = Upload(metadata={"description": "CSV (UTF-8): date, amount, reference, counterparty"})
