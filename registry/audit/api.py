"""Audit log endpoints: list events and verify the chain (admins and auditors)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters
from sqlalchemy import select

from registry.audit import schemas, services
from registry.audit.models import AuditEvent
from registry.audit.permissions import AUDIT_READERS
from registry.core.actor import require_actor
from registry.core.api import make_blueprint, paginate
from registry.core.http import get_session

blp = make_blueprint("audit", __name__, "The hash-chained audit log")


@blp.route("/audit/events")
class AuditEvents(MethodView):
    @blp.arguments(schemas.AuditQuerySchema, location="query")
    @blp.response(200, schemas.AuditEventSchema(many=True))
    @blp.paginate()
    def get(self, query: dict[str, Any], pagination_parameters: PaginationParameters) -> Any:
        """Events in sequence order, filtered by subject or action."""
        require_actor(*AUDIT_READERS)
        statement = select(AuditEvent).order_by(AuditEvent.seq)
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
