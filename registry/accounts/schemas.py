"""Request and response shapes for organisations, users, tokens and reward policies."""

from __future__ import annotations

import marshmallow as ma

from registry.accounts.models import EnterpriseSize, OrganisationKind
from registry.core.actor import Role
from registry.core.api import Schema
from registry.core.fields import PercentField, StrictBoolean, UsccField


class OrganisationSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=2, max=200))
    name_en = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=300))
    kind = ma.fields.Enum(OrganisationKind, by_value=True, required=True)
    uscc = UsccField(required=True, metadata={"example": "91350100M000100Y43"})
    size = ma.fields.Enum(EnterpriseSize, by_value=True, allow_none=True)
    is_sme = StrictBoolean(load_default=False)
    address = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=300))
    created_dt = ma.fields.AwareDateTime(dump_only=True)


class OrganisationOutSchema(OrganisationSchema):
    # The clearing house may not have a USCC yet; output needs no validation.
    uscc = ma.fields.String(allow_none=True)  # type: ignore[assignment]


class UserSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    organisation_id = ma.fields.UUID(dump_only=True)
    email = ma.fields.Email(required=True, validate=ma.validate.Length(max=254))
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    role = ma.fields.Enum(Role, by_value=True, required=True)
    password = ma.fields.String(required=True, load_only=True)
    is_active = ma.fields.Boolean(dump_only=True)
    created_dt = ma.fields.AwareDateTime(dump_only=True)


class TokenRequestSchema(Schema):
    email = ma.fields.String(required=True, validate=ma.validate.Length(max=254))
    password = ma.fields.String(
        required=True, load_only=True, validate=ma.validate.Length(max=1024)
    )


class TokenSchema(ma.Schema):
    token = ma.fields.String(metadata={"description": "shown once; store it safely"})
    expires_dt = ma.fields.AwareDateTime()


class RemainderPartSchema(Schema):
    recipient = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    share = PercentField(required=True)


class RewardPolicySchema(Schema):
    organisation_id = ma.fields.UUID(dump_only=True)
    inventor_share = PercentField(required=True, allow_zero=True)
    policy_reference = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=300))
    deductions = ma.fields.List(
        ma.fields.String(
            validate=ma.validate.OneOf(
                ["maintenance_fees", "prosecution_costs", "transfer_costs", "taxes"]
            )
        ),
        load_default=list,
    )
    remainder_split = ma.fields.List(ma.fields.Nested(RemainderPartSchema), load_default=list)
    is_default = ma.fields.Boolean(dump_only=True)


class AuditScopeSchema(Schema):
    user_id = ma.fields.UUID(dump_only=True)
    all_organisations = StrictBoolean(
        required=True, metadata={"description": "every organisation is in scope"}
    )
    own_organisation_id = ma.fields.UUID(
        dump_only=True, metadata={"description": "always in scope"}
    )
    organisation_ids = ma.fields.List(
        ma.fields.UUID(),
        load_default=list,
        validate=ma.validate.Length(max=1000),
        metadata={"description": "organisations granted besides the auditor's own"},
    )
