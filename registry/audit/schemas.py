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


# The largest sequence number a BIGINT (PostgreSQL) or INTEGER (SQLite) column holds: a larger
# ``after_seq`` cannot be bound as a query parameter (it was a 500), and matches nothing anyway.
MAX_SEQ = 2**63 - 1


class AuditQuerySchema(QuerySchema):
    subject_type = ma.fields.String()
    subject_id = ma.fields.String()
    action = ma.fields.String()
    after_seq = ma.fields.Integer(validate=ma.validate.Range(min=0, max=MAX_SEQ))


class VerdictSchema(ma.Schema):
    ok = ma.fields.Boolean()
    size = ma.fields.Integer()
    chain_hash = ma.fields.String()
    first_bad_seq = ma.fields.Integer(allow_none=True)
    problem = ma.fields.String(allow_none=True)


# The Merkle tree and its checkpoints (RFC 6962; c2sp.org/tlog-checkpoint). Hashes are lowercase
# hex; leaf indices count from 0 (leaf i is the event with seq i + 1).

_SIZE = ma.validate.Range(min=0)


class TreeHeadQuerySchema(QuerySchema):
    size = ma.fields.Integer(validate=_SIZE, metadata={"description": "default: the whole log"})


class InclusionQuerySchema(QuerySchema):
    leaf = ma.fields.String(
        required=True,
        metadata={"description": "leaf index (0 for the first event) or a leaf hash in hex"},
    )
    size = ma.fields.Integer(validate=_SIZE, metadata={"description": "default: the whole log"})


class ConsistencyQuerySchema(QuerySchema):
    first = ma.fields.Integer(required=True, validate=_SIZE)
    second = ma.fields.Integer(validate=_SIZE, metadata={"description": "default: the whole log"})


class TreeHeadSchema(ma.Schema):
    tree_size = ma.fields.Integer()
    root_hash = ma.fields.String()


class InclusionProofSchema(ma.Schema):
    leaf_index = ma.fields.Integer()
    tree_size = ma.fields.Integer()
    leaf_hash = ma.fields.String()
    proof = ma.fields.List(ma.fields.String())
    root_hash = ma.fields.String()


class ConsistencyProofSchema(ma.Schema):
    first = ma.fields.Integer()
    second = ma.fields.Integer()
    proof = ma.fields.List(ma.fields.String())
    first_root = ma.fields.String()
    second_root = ma.fields.String()


class CheckpointSchema(ma.Schema):
    origin = ma.fields.String()
    size = ma.fields.Integer()
    root_hash = ma.fields.String()
    signature = ma.fields.String(metadata={"description": "base64(key hash ‖ Ed25519 signature)"})
    note = ma.fields.String(metadata={"description": "the signed note, as text/plain serves it"})
    created_dt = ma.fields.AwareDateTime()


class CheckpointKeySchema(ma.Schema):
    name = ma.fields.String(metadata={"description": "key name: the log's origin"})
    algorithm = ma.fields.String()
    key_hash = ma.fields.String(metadata={"description": "4 bytes, hex (c2sp.org/signed-note)"})
    public_key = ma.fields.String(metadata={"description": "32 raw bytes, base64"})
    vkey = ma.fields.String(metadata={"description": "verifier key: name+key hash+key"})
    pem = ma.fields.String(metadata={"description": "SubjectPublicKeyInfo PEM"})
