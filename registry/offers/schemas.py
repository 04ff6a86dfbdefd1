"""Request and response shapes for offers, consents, eligibility and the gazette."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from registry.core import clock
from registry.core.api import QuerySchema, Schema
from registry.core.fields import MoneyField, StrictBoolean
from registry.offers.eligibility import consenting_organisations
from registry.offers.lifecycle import effective_status
from registry.offers.models import (
    ConsentPurpose,
    GazetteKind,
    Offer,
    OfferConsent,
    OfferStatus,
    RoyaltyKind,
)
from registry.offers.royalty import RoyaltySchema
from registry.offers.terms import ContactSchema, LicensedAct, TermsSchema
from registry.patents.models import LegalStatus, PatentType

Str = ma.fields.String
SHA256 = r"^[0-9a-f]{64}$"


def _enum(enum_class: Any, **kwargs: Any) -> ma.fields.Enum:
    return ma.fields.Enum(enum_class, by_value=True, **kwargs)


class OfferCreateSchema(TermsSchema):
    patent_id = ma.fields.UUID(required=True)


class OfferEditSchema(TermsSchema):
    """Any of the terms; ``royalty`` and ``contact`` are replaced whole."""

    royalty = ma.fields.Nested(RoyaltySchema)
    licensed_acts = ma.fields.List(
        _enum(LicensedAct), validate=ma.validate.Length(min=1, max=len(LicensedAct))
    )
    contact = ma.fields.Nested(ContactSchema)


class ConsentRequestSchema(Schema):
    terms_sha256 = Str(
        required=True,
        validate=ma.validate.Regexp(SHA256, error="the offer's terms_sha256 (64 hex digits)"),
        metadata={"description": "the hash of the terms you consent to, from GET /offers/{id}"},
    )


class PublishRequestSchema(Schema):
    attest_truthful = StrictBoolean(
        required=True,
        metadata={"description": "no false material (Implementing Regulations Art. 88)"},
    )


class WithdrawRequestSchema(Schema):
    reason = Str(required=True, validate=ma.validate.Length(min=1, max=2000))


class OwnerNameSchema(ma.Schema):
    organisation_id = ma.fields.UUID()
    name = Str(attribute="organisation_name")


class PatentSummarySchema(ma.Schema):
    id = ma.fields.UUID()
    application_number = Str()
    patent_type = _enum(PatentType)
    title = Str()
    title_en = Str(allow_none=True)
    abstract = Str(allow_none=True)
    ipc = ma.fields.List(Str())
    grant_date = ma.fields.Date(allow_none=True)
    expiry_date = ma.fields.Date()
    legal_status = _enum(LegalStatus)
    owners = ma.fields.List(ma.fields.Nested(OwnerNameSchema))


class ConsentSchema(ma.Schema):
    id = ma.fields.UUID()
    offer_id = ma.fields.UUID()
    organisation_id = ma.fields.UUID()
    purpose = _enum(ConsentPurpose)
    terms_sha256 = Str()
    reason = Str(allow_none=True)
    created_dt = ma.fields.AwareDateTime()
    current = ma.fields.Method("_current")

    def _current(self, consent: OfferConsent) -> bool:
        return consent.terms_sha256 == consent.offer.terms_sha256


def _term(name: str) -> ma.fields.Function:
    return ma.fields.Function(lambda offer: offer.terms.get(name))


class OfferSchema(ma.Schema):
    """An offer: its terms (also as the exact ``terms`` document hashed into ``terms_sha256``),
    its state as of today (a published offer past its end reads as expired or lapsed) and its
    uptake."""

    id = ma.fields.UUID()
    patent_id = ma.fields.UUID()
    status = ma.fields.Method("_status", metadata={"enum": [s.value for s in OfferStatus]})
    royalty = _term("royalty")
    term_years = _term("term_years")
    term_end_date = _term("term_end_date")
    licensed_acts = _term("licensed_acts")
    field_of_use = _term("field_of_use")
    contact = _term("contact")
    other_matters = _term("other_matters")
    territory = _term("territory")
    terms = ma.fields.Dict()
    terms_sha256 = Str()
    royalty_kind = _enum(RoyaltyKind)
    upfront_amount = MoneyField()
    has_free_period = ma.fields.Boolean()
    gazette_number = Str(allow_none=True)
    published_dt = ma.fields.AwareDateTime(allow_none=True)
    withdrawal_gazette_number = Str(allow_none=True)
    withdrawn_dt = ma.fields.AwareDateTime(allow_none=True)
    withdrawal_reason = Str(allow_none=True)
    withdrawn_version = ma.fields.Integer(
        allow_none=True, metadata={"description": "every licence has offer_version below it"}
    )
    ended_date = ma.fields.Date(allow_none=True)
    warnings = ma.fields.List(ma.fields.Dict())
    version = ma.fields.Integer()
    licence_count = ma.fields.Integer()
    patent = ma.fields.Nested(PatentSummarySchema)
    consented_by = ma.fields.Method(
        "_consented_by", metadata={"description": "owners consenting to the current terms"}
    )
    withdrawal_requested_by = ma.fields.Method("_withdrawal_requested_by")
    created_dt = ma.fields.AwareDateTime()
    updated_dt = ma.fields.AwareDateTime()

    def _status(self, offer: Offer) -> str:
        return effective_status(offer, clock.today()).value

    def _consented_by(self, offer: Offer) -> list[str]:
        return sorted(str(i) for i in consenting_organisations(offer, purpose="publish"))

    def _withdrawal_requested_by(self, offer: Offer) -> list[str]:
        return sorted(str(i) for i in consenting_organisations(offer, purpose="withdraw"))


class WithdrawResponseSchema(ma.Schema):
    """The offer and, until it is withdrawn, the owners who have still to ask."""

    offer = ma.fields.Nested(OfferSchema)
    withdrawn = ma.fields.Boolean()
    awaiting = ma.fields.List(ma.fields.Nested(OwnerNameSchema))


class CheckSchema(ma.Schema):
    code = Str()
    name = Str()
    passed = ma.fields.Boolean()
    severity = Str(metadata={"enum": ["hard", "warning"]})
    basis = Str()
    message = Str()
    message_en = Str()
    message_zh = Str()


class EligibilitySchema(ma.Schema):
    eligible = ma.fields.Boolean(
        metadata={"description": "publishing now (with the pending steps done) would pass"}
    )
    pending = ma.fields.List(
        Str(), metadata={"description": "checks the publish request itself completes"}
    )
    checks = ma.fields.List(ma.fields.Nested(CheckSchema))


class OfferQuerySchema(QuerySchema):
    q = Str(
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "words in the title, English title, abstract or field of use"},
    )
    ipc = Str(validate=ma.validate.Length(min=1, max=20), metadata={"example": "H01M"})
    patent_type = _enum(PatentType)
    royalty_kind = _enum(RoyaltyKind)
    organisation = ma.fields.UUID(metadata={"description": "owned by this organisation"})
    max_upfront = MoneyField(allow_zero=True, metadata={"description": "due at take-up, CNY"})
    free_period = ma.fields.Boolean(metadata={"description": "use first, pay later"})
    status = _enum(OfferStatus, load_default=OfferStatus.PUBLISHED)
    sort = Str(
        load_default="-published_dt",
        validate=ma.validate.OneOf(
            ["-published_dt", "published_dt", "upfront_amount", "-upfront_amount"]
        ),
    )


class GazetteEntrySchema(ma.Schema):
    id = ma.fields.UUID()
    number = Str()
    kind = _enum(GazetteKind)
    offer_id = ma.fields.UUID()
    announced_dt = ma.fields.AwareDateTime()
    summary = ma.fields.Dict()
