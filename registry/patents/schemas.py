"""Request and response shapes for patents, ownership, inventors and encumbrances."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest.fields import Upload

from registry.core.api import QuerySchema, Schema
from registry.core.clock import today
from registry.core.fields import ApplicationNumberField, IpcField, PercentField, StrictBoolean
from registry.patents import rules
from registry.patents.models import (
    BeneficiaryBasis,
    ClauseSet,
    ConsentRule,
    EncumbranceKind,
    EvaluationConclusion,
    LegalStatus,
    OwnershipBasis,
    Patent,
    PatentType,
)

Str = ma.fields.String
Length = ma.validate.Length


def _enum(enum_class: Any, **kwargs: Any) -> ma.fields.Enum:
    return ma.fields.Enum(enum_class, by_value=True, **kwargs)


class EvaluationReportSchema(Schema):
    number = Str(required=True, validate=Length(min=1, max=64))
    date = ma.fields.Date(required=True)
    conclusion = _enum(EvaluationConclusion, required=True)


class PatentEditSchema(Schema):
    """Fields a TTO may correct after registration (identity fields are fixed)."""

    title = Str(validate=Length(min=1, max=300))
    title_en = Str(allow_none=True, validate=Length(max=500))
    abstract = Str(allow_none=True, validate=Length(max=20_000))
    ipc = ma.fields.List(IpcField(), validate=Length(max=50))
    filing_date = ma.fields.Date()
    grant_date = ma.fields.Date(allow_none=True)
    legal_status = _enum(LegalStatus)
    annual_fees_paid_through = ma.fields.Date(allow_none=True)
    evaluation_report = ma.fields.Nested(EvaluationReportSchema, allow_none=True)


class PatentCreateSchema(PatentEditSchema):
    application_number = ApplicationNumberField(
        required=True, metadata={"example": "202110123456.7"}
    )
    patent_type = _enum(PatentType, required=True)
    title = Str(required=True, validate=Length(min=1, max=300))
    filing_date = ma.fields.Date(required=True)
    owner_organisation_id = ma.fields.UUID(
        load_only=True, metadata={"description": "admins only: the first owner"}
    )


class OwnerSchema(Schema):
    organisation_id = ma.fields.UUID(required=True)
    organisation_name = Str(dump_only=True)
    title_share = PercentField(required=True)
    income_share = PercentField(required=True, allow_zero=True)
    basis = _enum(OwnershipBasis, load_default=OwnershipBasis.SERVICE_INVENTION)
    clause_set = _enum(ClauseSet, allow_none=True)
    agreement_ref = Str(allow_none=True, validate=Length(max=200))


class BeneficiarySchema(Schema):
    name = Str(required=True, validate=Length(min=1, max=200))
    organisation_id = ma.fields.UUID(allow_none=True)
    basis = _enum(BeneficiaryBasis, required=True)
    income_share = PercentField(required=True)
    valid_from = ma.fields.Date(required=True)
    valid_to = ma.fields.Date(allow_none=True)
    agreement_ref = Str(allow_none=True, validate=Length(max=200))


class DecisionRulesSchema(Schema):
    open_licence = _enum(ConsentRule, load_default=ConsentRule.UNANIMOUS)
    ordinary_licence = _enum(ConsentRule, load_default=ConsentRule.ANY_OWNER)
    exclusive_licence = _enum(ConsentRule, load_default=ConsentRule.UNANIMOUS)
    assignment = _enum(ConsentRule, load_default=ConsentRule.UNANIMOUS)


class OwnershipSchema(Schema):
    owners = ma.fields.List(
        ma.fields.Nested(OwnerSchema), required=True, validate=Length(min=1, max=20)
    )
    beneficiaries = ma.fields.List(
        ma.fields.Nested(BeneficiarySchema), load_default=list, validate=Length(max=50)
    )
    decision_rules = ma.fields.Nested(DecisionRulesSchema)


class InventorSchema(Schema):
    name = Str(required=True, validate=Length(min=1, max=100))
    organisation_id = ma.fields.UUID(allow_none=True)
    share = PercentField(required=True)


class InventorsSchema(Schema):
    inventors = ma.fields.List(
        ma.fields.Nested(InventorSchema), required=True, validate=Length(min=1, max=100)
    )


class EncumbranceSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    kind = _enum(EncumbranceKind, required=True)
    start_date = ma.fields.Date(required=True)
    end_date = ma.fields.Date(allow_none=True)
    pledgee_consent = StrictBoolean(allow_none=True)
    holder = Str(allow_none=True, validate=Length(max=200))
    reference = Str(required=True, validate=Length(min=1, max=200))
    released_dt = ma.fields.AwareDateTime(dump_only=True, allow_none=True)  # null while in force
    release_reason = Str(dump_only=True, allow_none=True)
    in_force = ma.fields.Method("_in_force", dump_only=True)

    def _in_force(self, encumbrance: Any) -> bool:
        return bool(encumbrance.in_force_on(today()))


class ReleaseQuerySchema(QuerySchema):
    reason = Str(validate=Length(max=300))


class PatentSchema(ma.Schema):
    """What a reader with access sees of a patent."""

    id = ma.fields.UUID()
    application_number = Str()
    patent_type = _enum(PatentType)
    title = Str()
    title_en = Str(allow_none=True)
    abstract = Str(allow_none=True)
    ipc = ma.fields.List(Str())
    filing_date = ma.fields.Date()
    grant_date = ma.fields.Date(allow_none=True)
    expiry_date = ma.fields.Date()
    legal_status = _enum(LegalStatus)
    status = ma.fields.Method("_status")
    annual_fees_paid_through = ma.fields.Date(allow_none=True)
    evaluation_report = ma.fields.Method("_evaluation_report")
    owners = ma.fields.List(ma.fields.Nested(OwnerSchema))
    beneficiaries = ma.fields.List(ma.fields.Nested(BeneficiarySchema))
    decision_rules = ma.fields.Method("_decision_rules")
    inventors = ma.fields.List(ma.fields.Nested(InventorSchema))
    encumbrances = ma.fields.List(ma.fields.Nested(EncumbranceSchema))
    version = ma.fields.Integer()
    created_dt = ma.fields.AwareDateTime()
    updated_dt = ma.fields.AwareDateTime()

    def _status(self, patent: Patent) -> str:
        return rules.reader_status(patent.legal_status, patent.expiry_date, today())

    def _evaluation_report(self, patent: Patent) -> dict[str, Any] | None:
        if patent.evaluation_report_number is None:
            return None
        return {
            "number": patent.evaluation_report_number,
            "date": patent.evaluation_report_date.isoformat()
            if patent.evaluation_report_date
            else None,
            "conclusion": patent.evaluation_report_conclusion,
        }

    def _decision_rules(self, patent: Patent) -> dict[str, str]:
        return {
            "open_licence": patent.consent_open_licence,
            "ordinary_licence": patent.consent_ordinary_licence,
            "exclusive_licence": patent.consent_exclusive_licence,
            "assignment": patent.consent_assignment,
        }


class PatentQuerySchema(QuerySchema):
    q = Str(validate=Length(max=200), metadata={"description": "title or application number"})
    patent_type = _enum(PatentType)
    organisation_id = ma.fields.UUID(metadata={"description": "owned by this organisation"})


class ImportQuerySchema(QuerySchema):
    dry_run = ma.fields.Boolean(load_default=False)


class ImportFileSchema(ma.Schema):
    """The multipart body of an import (documented here; checked in the view, after the
    caller's role, so a reader learns it may not import before what to send)."""

    class Meta:
        unknown = ma.EXCLUDE

    file = Upload(metadata={"description": "CSV (UTF-8) or XLSX; see samples/README.md"})


class ImportReportSchema(ma.Schema):
    dry_run = ma.fields.Boolean()
    rows = ma.fields.Integer(metadata={"description": "data rows read"})
    created = ma.fields.Integer(metadata={"description": "patents registered (0 on a dry run)"})
    patent_ids = ma.fields.List(ma.fields.UUID())
