"""Audit log endpoints: events, chain verification, the Merkle tree and its proofs (admins and
auditors); signed checkpoints and their key (public, so anyone can keep them)."""

from __future__ import annotations

import base64
from typing import Any

from flask import Response, jsonify, request
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters
from sqlalchemy import select

from registry.audit import checkpoints, schemas, services, tree
from registry.audit.models import AuditCheckpoint, AuditEvent
from registry.audit.permissions import AUDIT_READERS, CHECKPOINT_ISSUERS
from registry.core.actor import require_actor
from registry.core.api import make_blueprint, paginate, public
from registry.core.errors import NotFound
from registry.core.http import get_session

blp = make_blueprint("audit", __name__, "The hash-chained audit log")


@blp.route("/audit/events")
class AuditEvents(MethodView):
    @blp.arguments(schemas.AuditQuerySchema, location="query")
    @blp.response(200, schemas.AuditEventSchema(many=True))
    @blp.paginate()
    def get(self, query: dict[str, Any], pagination_parameters: PaginationParameters) -> Any:
        """Events in sequence order, filtered by subject or action. An auditor whose scope is
        narrower than every organisation sees the events its organisations' users made."""
        actor = require_actor(*AUDIT_READERS)
        statement = select(AuditEvent).order_by(AuditEvent.seq)
        if not actor.reads_all:
            scope = list(actor.audit_scope or ())
            statement = statement.where(AuditEvent.actor_organisation_id.in_(scope))
        for name in ("subject_type", "subject_id", "action"):
            if name in query:
                statement = statement.where(getattr(AuditEvent, name) == query[name])
        if "after_seq" in query:
            statement = statement.where(AuditEvent.seq > query["after_seq"])
        return paginate(get_session(), statement, pagination_parameters)


@blp.route("/audit/verify")
class AuditVerify(MethodView):
    @blp.response(200, schemas.VerdictSchema)
    def get(self) -> dict[str, Any]:
        """Recompute every hash; ``ok`` false names the first event that does not match."""
        require_actor(*AUDIT_READERS)
        return services.verify(get_session()).as_dict()


# The Merkle tree (RFC 6962): read like the events, by the operator and auditors --------------


@blp.route("/audit/tree-head")
class AuditTreeHead(MethodView):
    @blp.arguments(schemas.TreeHeadQuerySchema, location="query")
    @blp.response(200, schemas.TreeHeadSchema)
    def get(self, query: dict[str, Any]) -> dict[str, object]:
        """The RFC 6962 root of the first ``size`` events (default: all); 422 past the log."""
        require_actor(*AUDIT_READERS)
        return tree.tree_head(get_session(), size=query.get("size")).as_dict()


@blp.route("/audit/proof/inclusion")
class AuditInclusionProof(MethodView):
    @blp.arguments(schemas.InclusionQuerySchema, location="query")
    @blp.response(200, schemas.InclusionProofSchema)
    def get(self, query: dict[str, Any]) -> dict[str, object]:
        """The audit path of one event (by leaf index from 0, or leaf hash) in the tree of the
        first ``size`` events (default: all); verify it as RFC 9162 §2.1.3.2 says."""
        require_actor(*AUDIT_READERS)
        return tree.inclusion(get_session(), leaf=query["leaf"], size=query.get("size"))


@blp.route("/audit/proof/consistency")
class AuditConsistencyProof(MethodView):
    @blp.arguments(schemas.ConsistencyQuerySchema, location="query")
    @blp.response(200, schemas.ConsistencyProofSchema)
    def get(self, query: dict[str, Any]) -> dict[str, object]:
        """Proof that the tree of ``first`` events is a prefix of that of ``second`` (default:
        all); verify it as RFC 9162 §2.1.4.2 says."""
        require_actor(*AUDIT_READERS)
        return tree.consistency(get_session(), first=query["first"], second=query.get("second"))


# Signed checkpoints: public, so that anyone can keep them ------------------------------------

NOTE_OR_JSON = {
    "200": {
        "description": "the checkpoint as a signed note (text/plain, the default) or as JSON "
        "when the request's Accept header prefers application/json",
        "content": {
            "text/plain": {"schema": {"type": "string"}},
            "application/json": {"schema": schemas.CheckpointSchema},
        },
    }
}


@blp.route("/audit/checkpoints")
class AuditCheckpoints(MethodView):
    @public
    @blp.response(200, schemas.CheckpointSchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters) -> list[dict[str, object]]:
        """Every checkpoint issued, oldest first. Public."""
        statement = select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size)
        page = paginate(get_session(), statement, pagination_parameters)
        return [checkpoints.as_dict(found) for found in page]

    @blp.response(201, schemas.CheckpointSchema)
    @blp.alt_response(200, schema=schemas.CheckpointSchema, description="nothing new to sign")
    def post(self) -> tuple[dict[str, object], int]:
        """Sign a checkpoint of the log now (admins). When nothing but the latest checkpoint's
        own event was appended since, that checkpoint is returned with 200 instead."""
        actor = require_actor(*CHECKPOINT_ISSUERS)
        issued = checkpoints.issue(get_session(), actor=actor, signer_=checkpoints.signer())
        return checkpoints.as_dict(issued.checkpoint), 201 if issued.created else 200


@blp.route("/audit/checkpoints/latest")
class AuditLatestCheckpoint(MethodView):
    @public
    @blp.doc(responses=NOTE_OR_JSON)
    @blp.alt_response(404, description="no checkpoint has been issued yet")
    def get(self) -> Response:
        """The latest checkpoint: a signed note to keep, or JSON. Public."""
        found = checkpoints.latest(get_session())
        if found is None:
            raise NotFound("checkpoint")
        wanted = request.accept_mimetypes.best_match(["text/plain", "application/json"])
        if wanted == "application/json":
            response = jsonify(schemas.CheckpointSchema().dump(checkpoints.as_dict(found)))
        else:
            response = Response(found.note, mimetype="text/plain")
        response.headers["Vary"] = "Accept"
        return response


@blp.route("/audit/checkpoint-key")
class AuditCheckpointKey(MethodView):
    @public
    @blp.response(200, schemas.CheckpointKeySchema)
    def get(self) -> dict[str, str]:
        """The public key checkpoints are signed with, in the forms verifiers take. Public."""
        signer = checkpoints.signer()
        verifier = signer.verifier
        return {
            "name": verifier.name,
            "algorithm": "ed25519",
            "key_hash": verifier.key_hash.hex(),
            "public_key": base64.b64encode(verifier.public_key).decode(),
            "vkey": verifier.vkey,
            "pem": signer.public_pem(),
        }
