"""HTTP endpoints for contracts: download, verification, the CA certificate, the specimen and
the recordation pack (thin: request → service → response)."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask import Response, current_app, request
from flask.views import MethodView
from flask_smorest.fields import Upload
from werkzeug.datastructures import FileStorage

from registry.contracts import documents, services
from registry.contracts.issuing import office
from registry.contracts.signing import ca_certificate_pem
from registry.core.actor import current_actor, require_actor
from registry.core.api import make_blueprint, public
from registry.core.errors import FieldError, RegistryError, ValidationFailed
from registry.core.http import download, get_session, reads, writes
from registry.core.ratelimit import TOO_MANY_REQUESTS, verify_limited

blp = make_blueprint("contracts", __name__, "Signed licence contracts: download and verify")

PDF_RESPONSE = {
    "200": {
        "description": "a PDF",
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    }
}


class VerifyUploadSchema(ma.Schema):
    """The multipart body (documented here; read in the view so an empty or oversize file gets
    a message about the file rather than about the form)."""

    class Meta:
        unknown = ma.EXCLUDE

    file = Upload(metadata={"description": "the contract PDF to check"})


class ContractVerdictSchema(ma.Schema):
    valid = ma.fields.Boolean(metadata={"description": "all three checks below hold"})
    signature_valid = ma.fields.Boolean(
        metadata={"description": "signed by the registry's clearing house, intact, certified"}
    )
    unmodified = ma.fields.Boolean(
        metadata={"description": "nothing was added or changed after the signature"}
    )
    matches_record = ma.fields.Boolean(
        metadata={"description": "the file's SHA-256 is a contract the registry issued"}
    )
    sha256 = ma.fields.String()
    licence_reference = ma.fields.String(allow_none=True)
    licence_id = ma.fields.String(allow_none=True)
    licensor = ma.fields.List(ma.fields.String(), allow_none=True)
    licensee = ma.fields.String(allow_none=True)
    signer = ma.fields.String(allow_none=True)
    signed_dt = ma.fields.String(allow_none=True)
    problems = ma.fields.List(ma.fields.String())


class FileTooLarge(RegistryError):
    status = 413
    code = "payload_too_large"


@blp.route("/licences/<uuid:licence_id>/contract.pdf")
class ContractDownload(MethodView):
    @writes
    @blp.doc(responses=PDF_RESPONSE)
    def get(self, licence_id: uuid.UUID) -> Response:
        """The licence's signed contract (the licensee, the owners' TTOs, auditors, admins).

        404 outside your view and while the contract is pending; every download is recorded
        in the audit log."""
        found = services.download(get_session(), actor=require_actor(), licence_id=licence_id)
        return download(found.data, mimetype="application/pdf", filename=found.filename)


@blp.route("/contracts/verify")
class ContractVerify(MethodView):
    @public
    @reads
    @verify_limited  # parsing and validating a PDF is costly work for an anonymous caller
    @blp.arguments(VerifyUploadSchema, location="files")
    @blp.response(200, ContractVerdictSchema)
    @blp.alt_response(422, description="the file is empty, not a PDF, or cannot be read")
    @blp.alt_response(429, description=TOO_MANY_REQUESTS)
    def post(self, _files: dict[str, Any]) -> dict[str, Any]:
        """Check a contract PDF: signed by the registry, unmodified, and on record. Public.

        Send the file as multipart field ``file``."""
        upload: FileStorage | None = request.files.get("file")
        if upload is None:
            message = "send the PDF as multipart field 'file'"
            raise ValidationFailed(message, [FieldError.of("file", "missing")])
        limit = current_app.config["REGISTRY_SETTINGS"].verify_max_bytes
        try:
            data = upload.stream.read(limit + 1)
        finally:
            upload.close()  # a large upload is spooled to a temporary file: release it now
        if len(data) > limit:
            raise FileTooLarge(
                f"the file is larger than {limit} bytes; a contract is far smaller",
                [FieldError.of("file", "too large")],
            )
        return services.verify(get_session(), data)


@blp.route("/contracts/certificate.pem")
class ContractCertificate(MethodView):
    @public
    @blp.doc(
        responses={
            "200": {
                "description": "the registry's CA certificate (PEM): the trust root to validate "
                "contracts with, e.g. pyhanko sign validate --trust certificate.pem"
            }
        }
    )
    def get(self) -> Response:
        """The trust root that contract signatures chain to. Public."""
        pem = ca_certificate_pem(office().identity)
        response = Response(pem, mimetype="application/x-pem-file")
        response.headers["Content-Disposition"] = "attachment; filename=registry-ca.pem"
        return response


@blp.route("/offers/<uuid:offer_id>/specimen.pdf")
class OfferSpecimen(MethodView):
    @public
    @blp.doc(responses=PDF_RESPONSE)
    def get(self, offer_id: uuid.UUID) -> Response:
        """The contract a licensee taking this offer up today would get: the same template,
        terms and wording, placeholder licensee details, watermarked 样本 / SPECIMEN, unsigned.
        Public for a published offer; a draft's for its owners' TTOs, admins and auditors."""
        found = documents.specimen(get_session(), actor=current_actor(), offer_id=offer_id)
        return download(
            found.data, mimetype="application/pdf", filename=found.filename, inline=True
        )


@blp.route("/licences/<uuid:licence_id>/recordation-pack")
class RecordationPack(MethodView):
    @writes
    @blp.doc(
        responses={
            "200": {
                "description": "ZIP: the signed contract, summary.txt and summary.csv with what "
                "CNIPA's recordation form asks, the terms JSON and a README",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    )
    def get(self, licence_id: uuid.UUID) -> Response:
        """What a party files with CNIPA within three months of the licence taking effect
        (IR Art. 87). Seen by whoever may download the contract; an audit event."""
        found = documents.pack(get_session(), actor=require_actor(), licence_id=licence_id)
        return download(found.data, mimetype="application/zip", filename=found.filename)
