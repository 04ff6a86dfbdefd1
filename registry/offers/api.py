"""HTTP endpoints for open-licence offers and the gazette (thin: schema → service → schema)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, url_for
from flask.views import MethodView
from flask_smorest.pagination import PaginationParameters

from registry.audit import checkpoints
from registry.core import clock
from registry.core.actor import current_actor, require_actor
from registry.core.api import make_blueprint, paginate, public
from registry.core.http import IF_MATCH_DOC, check_if_match, etag_for, get_session
from registry.offers import gazette, schemas, search, services
from registry.offers.models import Offer

blp = make_blueprint("offers", __name__, "Open-licence declarations and the gazette")

ATOM_ENTRIES = 100
ATOM_CHECKPOINTS = 20


def _with_etag(offer: Offer, status: int = 200) -> tuple[Offer, int, dict[str, str]]:
    return offer, status, {"ETag": etag_for(offer.id, offer.version)}


@blp.route("/offers")
class Offers(MethodView):
    @public
    @blp.arguments(schemas.OfferQuerySchema, location="query")
    @blp.response(200, schemas.OfferSchema(many=True))
    @blp.paginate()
    def get(self, query: dict[str, Any], pagination_parameters: PaginationParameters) -> Any:
        """The public registry: published offers by default; no sign-in needed.

        ``q`` finds words (Chinese substrings too) in the patent's title, English title,
        abstract and the field of use; filters narrow the list; drafts are listed only for
        their owners' TTOs, admins and auditors (``status=draft``)."""
        statement = search.visible_offers(current_actor(), query, clock.today())
        return paginate(get_session(), statement, pagination_parameters)

    @blp.arguments(schemas.OfferCreateSchema)
    @blp.response(201, schemas.OfferSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Draft a declaration for one of your organisation's patents."""
        offer = services.create_offer(get_session(), actor=require_actor(), data=data)
        return _with_etag(offer, 201)


@blp.route("/offers/<uuid:offer_id>")
class OfferById(MethodView):
    @public
    @blp.response(200, schemas.OfferSchema)
    def get(self, offer_id: uuid.UUID) -> Any:
        """An offer: public once published; a draft only for its owners, admins, auditors."""
        return _with_etag(
            services.get_offer(get_session(), actor=current_actor(), offer_id=offer_id)
        )

    @blp.doc(parameters=[IF_MATCH_DOC])
    @blp.arguments(schemas.OfferEditSchema, required=False)  # no body: nothing to change
    @blp.response(200, schemas.OfferSchema)
    def patch(self, data: dict[str, Any], offer_id: uuid.UUID) -> Any:
        """Edit a draft (``If-Match`` with the ETag of your GET; 412 when stale). Changing the
        terms voids the consents given to the old terms."""
        session = get_session()
        actor = require_actor()
        offer = services.editable_offer(session, actor=actor, offer_id=offer_id)
        check_if_match(etag_for(offer.id, offer.version))
        return _with_etag(services.update_offer(session, actor=actor, offer=offer, data=data))


@blp.route("/offers/<uuid:offer_id>/eligibility")
class OfferEligibility(MethodView):
    @blp.response(200, schemas.EligibilitySchema)
    def get(self, offer_id: uuid.UUID) -> dict[str, Any]:
        """Every eligibility check E1–E13 with its legal basis, as publishing now would run
        them (E13, the attestation, is ``pending``: the publish request gives it)."""
        report = services.eligibility(get_session(), actor=require_actor(), offer_id=offer_id)
        return report.as_dict()


@blp.route("/offers/<uuid:offer_id>/consents")
class OfferConsents(MethodView):
    @blp.arguments(schemas.ConsentRequestSchema)
    @blp.response(201, schemas.ConsentSchema)
    def post(self, data: dict[str, Any], offer_id: uuid.UUID) -> Any:
        """Consent, for your organisation, to publishing the draft's current terms (send their
        ``terms_sha256``); an edit of the terms voids it."""
        return services.consent(
            get_session(),
            actor=require_actor(),
            offer_id=offer_id,
            terms_sha256_=data["terms_sha256"],
        )


@blp.route("/offers/<uuid:offer_id>/publish")
class OfferPublish(MethodView):
    @blp.arguments(schemas.PublishRequestSchema)
    @blp.response(200, schemas.OfferSchema)
    @blp.alt_response(409, description="not eligible: every failed check is listed")
    def post(self, data: dict[str, Any], offer_id: uuid.UUID) -> Any:
        """Publish the draft with a gazette number; its terms never change afterwards."""
        offer = services.publish(
            get_session(),
            actor=require_actor(),
            offer_id=offer_id,
            attest=data["attest_truthful"],
        )
        return _with_etag(offer)


@blp.route("/offers/<uuid:offer_id>/withdraw")
class OfferWithdraw(MethodView):
    @blp.arguments(schemas.WithdrawRequestSchema)
    @blp.response(200, schemas.WithdrawResponseSchema)
    def post(self, data: dict[str, Any], offer_id: uuid.UUID) -> Any:
        """Ask, for your organisation, to withdraw a published offer, with a reason. It is
        withdrawn when the owners the patent's decision rule needs have asked (``awaiting``
        lists who has still to ask); licences already taken stand."""
        offer, owners = services.withdraw(
            get_session(), actor=require_actor(), offer_id=offer_id, reason=data["reason"]
        )
        progress = services.withdrawal_progress(offer, owners)
        body = {
            "offer": offer,
            "withdrawn": offer.withdrawn_dt is not None,
            "awaiting": [] if offer.withdrawn_dt else progress.awaiting,
        }
        return body, 200, {"ETag": etag_for(offer.id, offer.version)}


@blp.route("/gazette")
class Gazette(MethodView):
    @public
    @blp.response(200, schemas.GazetteEntrySchema(many=True))
    @blp.paginate()
    def get(self, pagination_parameters: PaginationParameters) -> Any:
        """Publications and withdrawals, newest first, with the terms announced."""
        return paginate(get_session(), gazette.entries(), pagination_parameters)


@blp.route("/gazette.atom")
class GazetteAtom(MethodView):
    @public
    @blp.doc(responses={"200": {"description": "Atom 1.0 feed of the latest gazette entries"}})
    def get(self) -> Response:
        """The gazette as an Atom 1.0 feed (the latest 100 entries), with the audit log's
        latest signed checkpoints (their notes, to keep)."""
        session = get_session()
        items = list(session.scalars(gazette.entries().limit(ATOM_ENTRIES)))
        document = gazette.atom_feed(
            items,
            checkpoints=checkpoints.recent(session, ATOM_CHECKPOINTS),
            checkpoint_url=url_for("audit.AuditLatestCheckpoint", _external=True),
            feed_url=url_for("offers.GazetteAtom", _external=True),
            offer_url=url_for(
                "offers.OfferById", offer_id=uuid.UUID(int=0), _external=True
            ).replace(str(uuid.UUID(int=0)), "{id}"),
        )
        return Response(document, mimetype="application/atom+xml")
