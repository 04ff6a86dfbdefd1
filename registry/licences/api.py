"""HTTP endpoints for take-ups and licences (thin: schema → service → schema)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from registry.core import clock
from registry.core.actor import require_actor
from registry.core.api import make_blueprint, paginate
from registry.core.http import get_session
from registry.core.idempotency import HEADER_DOC, idempotent
from registry.licences import schemas, services
from registry.licences.models import Licence

blp = make_blueprint("licences", __name__, "Take-ups of open licences and the licences made")


@blp.route("/offers/<uuid:offer_id>/take-up", parameters=[HEADER_DOC])
class TakeUp(MethodView):
    @idempotent
    @blp.arguments(schemas.TakeUpSchema)
    @blp.response(201, schemas.LicenceSchema)
    @blp.alt_response(
        409,
        description="offer_not_published, already_licensed, or "
        "idempotency_conflict (a request with this key is still running)",
    )
    def post(self, data: dict[str, Any], offer_id: uuid.UUID) -> Licence:
        """Take a licence on a published offer: your enterprise's written notice.

        Send an ``Idempotency-Key`` to retry safely: the retry gets the first response."""
        return services.take_up(
            get_session(),
            actor=require_actor(),
            offer_id=offer_id,
            notice=data,
            client_address=request.remote_addr,
        )


@blp.route("/licences")
class Licences(MethodView):
    @blp.arguments(schemas.LicenceQuerySchema, location="query")
    @blp.response(200, schemas.LicenceSchema(many=True))
    @blp.paginate()
    def get(self, query: dict[str, Any], pagination_parameters: PaginationParameters) -> Any:
        """Licences you may see: your enterprise's (licensee), those on your organisation's
        patents (TTO), all (admins, auditors)."""
        statement = services.visible_licences(require_actor(), query)
        return paginate(get_session(), statement, pagination_parameters)


@blp.route("/licences/recordation-due")
class RecordationDue(MethodView):
    @blp.arguments(schemas.RecordationDueQuerySchema, location="query")
    @blp.response(200, schemas.LicenceSchema(many=True))
    @blp.paginate()
    def get(self, query: dict[str, Any], pagination_parameters: PaginationParameters) -> Any:
        """Live licences not yet recorded with CNIPA, due within ``days`` (30), soonest first."""
        statement = services.recordation_due(
            require_actor(), today=clock.today(), days=query["days"]
        )
        return paginate(get_session(), statement, pagination_parameters)


@blp.route("/licences/<uuid:licence_id>")
class LicenceById(MethodView):
    @blp.response(200, schemas.LicenceSchema)
    def get(self, licence_id: uuid.UUID) -> Licence:
        return services.get_licence(get_session(), actor=require_actor(), licence_id=licence_id)


@blp.route("/licences/<uuid:licence_id>/terminate")
class LicenceTerminate(MethodView):
    @blp.arguments(schemas.TerminateSchema)
    @blp.response(200, schemas.LicenceSchema)
    def post(self, data: dict[str, Any], licence_id: uuid.UUID) -> Licence:
        """End your enterprise's licence, giving the reason."""
        return services.terminate(
            get_session(), actor=require_actor(), licence_id=licence_id, reason=data["reason"]
        )


@blp.route("/licences/<uuid:licence_id>/recordation")
class LicenceRecordation(MethodView):
    @blp.arguments(schemas.RecordationSchema)
    @blp.response(200, schemas.LicenceSchema)
    def put(self, data: dict[str, Any], licence_id: uuid.UUID) -> Licence:
        """Record the CNIPA recordation number and date (either party)."""
        return services.set_recordation(
            get_session(), actor=require_actor(), licence_id=licence_id, data=data
        )
