"""Request and response shapes for settlements, payee statements, the ledger and a licensee's
statement of account. Every amount is a decimal string with two places (FenField); credits in
ledger entries and reversing lines are negative ("-12.50")."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from registry.clearing.models import PayeeType, PaymentSource, SettlementStatus
from registry.core.api import Schema
from registry.core.fields import FenField
from registry.core.shares import format_percent, hundredths_to_percent

Str = ma.fields.String


def _enum(enum_class: Any, **kwargs: Any) -> ma.fields.Enum:
    return ma.fields.Enum(enum_class, by_value=True, **kwargs)


class RateField(ma.fields.Field):
    """Hundredths of a percent shown as a percentage with two places (250 -> "2.50")."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else format_percent(hundredths_to_percent(int(value)))


class SettlementRequestSchema(Schema):
    period_start = ma.fields.Date(required=True)
    period_end = ma.fields.Date(required=True, metadata={"description": "today at the latest"})


class SettlementLineSchema(ma.Schema):
    payee_type = _enum(PayeeType)
    payee_id = ma.fields.UUID(allow_none=True, metadata={"description": "null for the platform"})
    payee_name = Str()
    amount = FenField()
    payment_id = ma.fields.UUID()
    role = Str(
        metadata={
            "description": "fee, owner_income, beneficiary_income, inventor_reward, institution"
        }
    )
    owner_organisation_id = ma.fields.UUID(
        allow_none=True, metadata={"description": "the co-owner whose part the line comes from"}
    )


class PayoutSchema(ma.Schema):
    payee_type = Str()
    payee_id = Str()
    payee_name = Str()
    carried_in = FenField(metadata={"description": "balance carried from earlier runs"})
    new = FenField(metadata={"description": "this run's lines"})
    paid = FenField(metadata={"description": "paid out now"})
    carried_out = FenField(metadata={"description": "carried forward (under the minimum)"})


class HeldSchema(ma.Schema):
    payment_id = Str()
    reason = Str()


class SettlementSchema(ma.Schema):
    id = ma.fields.UUID()
    number = Str(metadata={"example": "SR-2026-000001"})
    period_start = ma.fields.Date()
    period_end = ma.fields.Date()
    status = _enum(SettlementStatus)
    reverses_id = ma.fields.UUID(allow_none=True)
    reversed_by_id = ma.fields.UUID(allow_none=True)
    fee_rate = RateField(metadata={"type": "string", "example": "2.50"})
    minimum_payout = FenField()
    total_received = FenField(allow_none=True, metadata={"description": "null for TTO staff"})
    total_fees = FenField(allow_none=True)
    total_distributed = FenField(allow_none=True)
    payment_count = ma.fields.Integer(allow_none=True)
    created_dt = ma.fields.AwareDateTime()
    lines = ma.fields.List(ma.fields.Nested(SettlementLineSchema))
    payouts = ma.fields.List(ma.fields.Nested(PayoutSchema))
    held = ma.fields.List(
        ma.fields.Nested(HeldSchema),
        metadata={"description": "payments left unsettled: their records cannot be split"},
    )


class SettlementSummarySchema(ma.Schema):
    """A run in a list (without its lines)."""

    id = ma.fields.UUID()
    number = Str()
    period_start = ma.fields.Date()
    period_end = ma.fields.Date()
    status = _enum(SettlementStatus)
    reverses_id = ma.fields.UUID(allow_none=True)
    created_dt = ma.fields.AwareDateTime()


class PayeeRunSchema(ma.Schema):
    run_id = ma.fields.UUID()
    number = Str()
    period_start = ma.fields.Date()
    period_end = ma.fields.Date()
    status = _enum(SettlementStatus)
    reverses_id = ma.fields.UUID(allow_none=True)
    created_dt = ma.fields.AwareDateTime()
    amount = FenField(metadata={"description": "the payee's lines in the run"})
    line_count = ma.fields.Integer()
    payout = ma.fields.Nested(PayoutSchema, allow_none=True)


class TraceLineSchema(ma.Schema):
    role = Str()
    owner_organisation_id = ma.fields.UUID(allow_none=True)
    owner_organisation_name = Str(allow_none=True)
    licence_reference = Str()
    statement_number = Str()
    payment_id = ma.fields.UUID()
    payment_date = ma.fields.Date()
    payment_reference = Str(allow_none=True)
    payment_settled = FenField(metadata={"description": "the payment's applied part"})
    amount = FenField()


class PayeeStatementSchema(ma.Schema):
    run_id = ma.fields.UUID()
    run_number = Str()
    period_start = ma.fields.Date()
    period_end = ma.fields.Date()
    status = _enum(SettlementStatus)
    reverses_id = ma.fields.UUID(allow_none=True)
    created_dt = ma.fields.AwareDateTime()
    payee_type = Str()
    payee_id = ma.fields.UUID()
    payee_name = Str()
    total = FenField()
    lines = ma.fields.List(ma.fields.Nested(TraceLineSchema))
    payout = ma.fields.Nested(PayoutSchema, allow_none=True)


class TrialAccountSchema(ma.Schema):
    code = Str()
    name = Str()
    kind = Str()
    debits = FenField()
    credits = FenField()
    balance = FenField(metadata={"description": "debits minus credits"})


class TrialBalanceSchema(ma.Schema):
    balanced = ma.fields.Boolean()
    total_debits = FenField()
    total_credits = FenField()
    accounts = ma.fields.List(ma.fields.Nested(TrialAccountSchema))


class LedgerEntrySchema(ma.Schema):
    transaction_id = ma.fields.UUID()
    kind = Str()
    subject_type = Str()
    subject_id = ma.fields.UUID()
    description = Str()
    effective_date = ma.fields.Date()
    created_dt = ma.fields.AwareDateTime()
    reverses_id = ma.fields.UUID(allow_none=True)
    side = Str(metadata={"description": "debit or credit"})
    amount = FenField(metadata={"description": "debit > 0, credit < 0"})


class AccountStatementSchema(ma.Schema):
    id = ma.fields.UUID()
    number = Str()
    licence_id = ma.fields.UUID()
    licence_reference = Str()
    kind = Str()
    amount_due = FenField()
    amount_paid = FenField()
    due_date = ma.fields.Date()
    status = Str()


class AccountPaymentSchema(ma.Schema):
    id = ma.fields.UUID()
    statement_id = ma.fields.UUID()
    statement_number = Str()
    amount = FenField()
    applied = FenField()
    credit = FenField()
    paid_date = ma.fields.Date()
    reference = Str(allow_none=True)
    source = _enum(PaymentSource)


class LicenseeAccountSchema(ma.Schema):
    organisation_id = ma.fields.UUID()
    name = Str()
    balance_due = FenField(metadata={"description": "owed on open statements"})
    credit_balance = FenField(metadata={"description": "overpayments held for the licensee"})
    statements = ma.fields.List(ma.fields.Nested(AccountStatementSchema))
    payments = ma.fields.List(ma.fields.Nested(AccountPaymentSchema))
