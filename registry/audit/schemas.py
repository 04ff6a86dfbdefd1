"""Shapes of audit events and of the verification verdict."""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma

from registry.core.api import QuerySchema


class AuditEventSchema(ma.Schema):
    seq = ma.fields.Integer()
    event_dt = ma.fields.AwareDateTime()
    actor_id = ma.fields.UUID(allow_none=True)
    actor_organisation_id = ma.fields.UUID(allow_none=True)
    action = ma.fields.String()
    subject_type = ma.fields.String()
    subject_id = ma.fields.String()
    payload = ma.fields.Method("_payload")
    leaf_hash = ma.fields.String()
    chain_hash = ma.fields.String()

    def _payload(self, event: Any) -> Any:
        return json.loads(event.payload)


class AuditQuerySchema(QuerySchema):
    subject_type = ma.fields.String()
    subject_id = ma.fields.String()
    action = ma.fields.String()
    after_seq = ma.fields.Integer(validate=ma.validate.Range(min=0))


class VerdictSchema(ma.Schema):
    ok = ma.fields.Boolean()
    size = ma.fields.Integer()
    chain_hash = ma.fields.String()
    first_bad_seq = ma.fields.Integer(allow_none=True)
    problem = ma.fields.String(allow_none=True)
