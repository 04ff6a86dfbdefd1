"""Request and response shapes for take-ups and licences."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from registry.core.api import QuerySchema, Schema
from registry.licences.models import Licence, LicenceStatus, RecordationFiler

Str = ma.fields.String
Length = ma.validate.Length
PHONE = ma.validate.Regexp(
    r"^\+?[0-9][0-9 ()-]{4,38}[0-9]$",
    error="a telephone number: digits, spaces, hyphens and brackets, optionally starting with +",
)
RECORDATION_NUMBER = ma.validate.Regexp(
    r"^[A-Za-z0-9][A-Za-z0-9-]{3,63}$",
    error="a CNIPA recordation number: letters, digits and hyphens (e.g. X2026990000123)",
)


def _enum(enum_class: Any, **kwargs: Any) -> ma.fields.Enum:
    return ma.fields.Enum(enum_class, by_value=True, **kwargs)


class TakeUpSchema(Schema):
    """The written notice (PL Art. 51(1)); stored verbatim with its time and client address."""

    intended_use = Str(
        required=True,
        validate=Length(min=1, max=2000),
        metadata={"description": "how the patent will be exploited (products, field)"},
    )
    contact_name = Str(required=True, validate=Length(min=1, max=200))
    contact_phone = Str(required=True, validate=PHONE)
    contact_email = ma.fields.Email(required=True, validate=Length(max=254))
    notes = Str(allow_none=True, validate=Length(max=5000))


class TerminateSchema(Schema):
    reason = Str(required=True, validate=Length(min=1, max=2000))


class RecordationSchema(Schema):
    """The CNIPA recordation of the licence (IR Art. 87), filed by either party."""

    number = Str(required=True, validate=RECORDATION_NUMBER)
    date = ma.fields.Date(required=True)
    filed_by = _enum(RecordationFiler, required=True)


class LicenceQuerySchema(QuerySchema):
    offer_id = ma.fields.UUID()
    patent_id = ma.fields.UUID()
    status = _enum(LicenceStatus)


class RecordationDueQuerySchema(QuerySchema):
    days = ma.fields.Integer(
        load_default=30,
        validate=ma.validate.Range(min=0, max=366),
        metadata={"description": "due within this many days from today (overdue included)"},
    )


class LicenceSchema(ma.Schema):
    """A licence as its parties, admins and auditors see it."""

    id = ma.fields.UUID()
    reference = Str(metadata={"example": "OL-2026-000123"})
    status = _enum(LicenceStatus)
    offer_id = ma.fields.UUID()
    offer_version = ma.fields.Integer(
        metadata={"description": "the offer version this take-up wrote"}
    )
    patent_id = ma.fields.UUID()
    licensee_id = ma.fields.UUID(attribute="licensee_organisation_id")
    licensee_name = ma.fields.Method("_licensee_name")
    licensee_user_id = ma.fields.UUID()
    terms = ma.fields.Dict(metadata={"description": "snapshot of the offer's terms"})
    terms_sha256 = Str()
    notice = ma.fields.Dict(metadata={"description": "the written notice as received"})
    notice_dt = ma.fields.AwareDateTime()
    effective_date = ma.fields.Date()
    end_date = ma.fields.Date()
    recordation_due_date = ma.fields.Date()
    recordation = ma.fields.Method("_recordation")
    contract = ma.fields.Method(
        "_contract",
        metadata={
            "description": "the signed contract: status issued (with sha256, unsigned_sha256, "
            "template, version, signed_dt) or pending (not made yet)"
        },
    )
    terminated_dt = ma.fields.AwareDateTime(allow_none=True)
    termination_reason = Str(allow_none=True)
    created_dt = ma.fields.AwareDateTime()
    updated_dt = ma.fields.AwareDateTime()

    def _licensee_name(self, licence: Licence) -> str:
        return licence.licensee.name

    def _recordation(self, licence: Licence) -> dict[str, Any] | None:
        if licence.recordation_number is None:
            return None
        return {
            "number": licence.recordation_number,
            "date": licence.recordation_date.isoformat() if licence.recordation_date else None,
            "filed_by": licence.recordation_filed_by,
        }

    def _contract(self, licence: Licence) -> dict[str, Any]:
        # ``contract`` is the contracts feature's backref; this feature does not import it.
        contract = getattr(licence, "contract", None)
        if contract is None:
            return {
                "status": "pending",
                "sha256": None,
                "unsigned_sha256": None,
                "template": None,
                "version": None,
                "signed_dt": None,
            }
        return {
            "status": "issued",
            "sha256": contract.signed_sha256,
            "unsigned_sha256": contract.unsigned_sha256,
            "template": contract.template_key,
            "version": contract.template_version,
            "signed_dt": contract.signed_dt.isoformat(),
        }
