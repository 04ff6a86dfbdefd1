"""HTTP endpoints for the patent registry (thin: schema → service → schema)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters
from werkzeug.datastructures import FileStorage

from registry.core.actor import require_actor
from registry.core.api import make_blueprint, paginate
from registry.core.errors import FieldError, ValidationFailed
from registry.core.http import IF_MATCH_DOC, check_if_match, etag_for, get_session
from registry.patents import encumbrances, importer, schemas, services
from registry.patents.models import Encumbrance, Patent

blp = make_blueprint("patents", __name__, "Patents, ownership, inventors and encumbrances")


def _with_etag(patent: Patent) -> tuple[Patent, int, dict[str, str]]:
    return patent, 200, {"ETag": etag_for(patent.id, patent.version)}


@blp.route("/patents")
class Patents(MethodView):
    @blp.arguments(schemas.PatentQuerySchema, location="query")
    @blp.response(200, schemas.PatentSchema(many=True))
    @blp.paginate()
    def get(self, query: dict[str, Any], pagination_parameters: PaginationParameters) -> Any:
        """Patents you may see: your organisation's (TTO), all (admins, auditors)."""
        statement = services.visible_patents(require_actor(), query)
        return paginate(get_session(), statement, pagination_parameters)

    @blp.arguments(schemas.PatentCreateSchema)
    @blp.response(201, schemas.PatentSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Register a patent; your organisation is its sole owner until owners are set."""
        patent = services.create_patent(get_session(), actor=require_actor(), data=data)
        return patent, 201, {"ETag": etag_for(patent.id, patent.version)}


@blp.route("/patents/<uuid:patent_id>")
class PatentById(MethodView):
    @blp.response(200, schemas.PatentSchema)
    def get(self, patent_id: uuid.UUID) -> Any:
        return _with_etag(
            services.get_patent(get_session(), actor=require_actor(), patent_id=patent_id)
        )

    @blp.doc(parameters=[IF_MATCH_DOC])
    @blp.arguments(schemas.PatentEditSchema, required=False)  # no body: nothing to change
    @blp.response(200, schemas.PatentSchema)
    def patch(self, data: dict[str, Any], patent_id: uuid.UUID) -> Any:
        """Correct the record. Send ``If-Match`` with the ETag of your GET (412 when stale)."""
        session = get_session()
        actor = require_actor()
        patent = services.editable_patent(session, actor=actor, patent_id=patent_id)
        check_if_match(etag_for(patent.id, patent.version))
        patent = services.update_patent(session, actor=actor, patent=patent, data=data)
        return _with_etag(patent)


@blp.route("/patents/<uuid:patent_id>/owners")
class PatentOwners(MethodView):
    @blp.arguments(schemas.OwnershipSchema)
    @blp.response(200, schemas.PatentSchema)
    def put(self, data: dict[str, Any], patent_id: uuid.UUID) -> Any:
        """Replace owners (title and income shares), income beneficiaries and decision rules."""
        return _with_etag(
            services.set_ownership(
                get_session(), actor=require_actor(), patent_id=patent_id, data=data
            )
        )


@blp.route("/patents/<uuid:patent_id>/inventors")
class PatentInventors(MethodView):
    @blp.arguments(schemas.InventorsSchema)
    @blp.response(200, schemas.PatentSchema)
    def put(self, data: dict[str, Any], patent_id: uuid.UUID) -> Any:
        return _with_etag(
            services.set_inventors(
                get_session(),
                actor=require_actor(),
                patent_id=patent_id,
                inventors=data["inventors"],
            )
        )


@blp.route("/patents/<uuid:patent_id>/encumbrances")
class PatentEncumbrances(MethodView):
    @blp.arguments(schemas.EncumbranceSchema)
    @blp.response(201, schemas.EncumbranceSchema)
    def post(self, data: dict[str, Any], patent_id: uuid.UUID) -> Encumbrance:
        return encumbrances.add_encumbrance(
            get_session(), actor=require_actor(), patent_id=patent_id, data=data
        )


@blp.route("/patents/<uuid:patent_id>/encumbrances/<uuid:encumbrance_id>")
class PatentEncumbrance(MethodView):
    @blp.arguments(schemas.ReleaseQuerySchema, location="query")
    @blp.response(200, schemas.EncumbranceSchema)
    def delete(
        self, query: dict[str, Any], patent_id: uuid.UUID, encumbrance_id: uuid.UUID
    ) -> Encumbrance:
        """Release the encumbrance (it stays on record with its release time and reason)."""
        return encumbrances.release_encumbrance(
            get_session(),
            actor=require_actor(),
            patent_id=patent_id,
            encumbrance_id=encumbrance_id,
            reason=query.get("reason"),
        )


@blp.route("/patents/import")
class PatentImport(MethodView):
    @blp.arguments(schemas.ImportQuerySchema, location="query")
    @blp.arguments(schemas.ImportFileSchema, location="files")
    @blp.response(200, schemas.ImportReportSchema)
    @blp.alt_response(422, description="the per-row error report; nothing was imported")
    def post(self, query: dict[str, Any], _files: dict[str, Any]) -> dict[str, Any]:
        """Import patents from CSV (UTF-8) or XLSX, sent as multipart field ``file``.

        All or nothing: any bad row rejects the whole file with every row's errors.
        ``dry_run=true`` validates without saving.
        """
        actor = require_actor()
        services.require_registrar(actor)
        upload: FileStorage | None = request.files.get("file")
        if upload is None or not upload.filename:
            raise ValidationFailed(
                "send the file as multipart field 'file'", [FieldError.of("file", "missing")]
            )
        report = importer.import_file(
            get_session(),
            actor=actor,
            filename=upload.filename,
            stream=upload.stream,
            dry_run=query["dry_run"],
        )
        return report.as_dict()
