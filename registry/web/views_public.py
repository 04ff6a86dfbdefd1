"""Public pages: the registry search, an offer, its specimen contract, the gazette, and
contract verification. Each calls the service its API endpoint calls."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask import Response, current_app, request
from flask_smorest.pagination import PaginationParameters
from sqlalchemy import Select, func, select
from werkzeug.datastructures import FileStorage

from registry.contracts import documents
from registry.contracts import services as contract_services
from registry.core import clock
from registry.core.actor import Role
from registry.core.api import paginate
from registry.core.errors import RegistryError
from registry.core.http import download, get_session, reads
from registry.core.ratelimit import verify_limited
from registry.licences import services as licence_services
from registry.licences.models import LIVE_STATUSES, Licence
from registry.offers import gazette, reading, search
from registry.offers.lifecycle import effective_status
from registry.offers.models import Offer, OfferStatus
from registry.offers.schemas import OfferQuerySchema
from registry.patents.models import Patent
from registry.web import present
from registry.web.blueprint import bp, page_actor, render
from registry.web.forms import Form

PAGE_SIZE = 20
MAX_PAGE = 10_000
FILTERS = ("q", "patent_type", "royalty_kind", "max_upfront", "free_period", "sort")


def page_number() -> int:
    raw = request.args.get("page", "1")
    return min(int(raw), MAX_PAGE) if raw.isdigit() and int(raw) >= 1 else 1


def pages(params: PaginationParameters) -> dict[str, Any]:
    last = max(1, -(-params.item_count // params.page_size)) if params.item_count else 1
    return {"page": params.page, "last": last, "total": params.item_count}


@bp.get("/")
def home() -> Any:
    session = get_session()
    statement = search.visible_offers(
        page_actor(), {"status": OfferStatus.PUBLISHED}, clock.today()
    )
    params = PaginationParameters(1, 5)
    latest = paginate(session, statement, params)
    return render("home.html", latest=latest, total=params.item_count)


def facet_counts(statement: Select[Any], column: Any) -> dict[str, int]:
    """How many of the statement's offers have each value of ``column`` (an Offer or Patent
    column): the counts shown beside each filter choice."""
    counted = statement.order_by(None).add_columns(column.label("facet")).subquery()
    rows = get_session().execute(select(counted.c.facet, func.count()).group_by(counted.c.facet))
    return {getattr(value, "value", value): count for value, count in rows}


@bp.get("/offers")
def offers() -> Any:
    """The registry: published offers matching the words and filters, with counts per choice."""
    form = Form({name: request.args.get(name, "").strip() for name in FILTERS})
    sent = {name: value for name, value in form.values.items() if value}
    try:
        query = OfferQuerySchema().load(sent)
    except ma.ValidationError as error:
        for name, messages in error.normalized_messages().items():
            form.add(str(name), *(messages if isinstance(messages, list) else [str(messages)]))
        return render("offers.html", 422, form=form, results=[], paging=None, facets={})
    query["status"] = OfferStatus.PUBLISHED  # drafts are for the TTO's own pages
    today = clock.today()
    actor = page_actor()
    params = PaginationParameters(page_number(), PAGE_SIZE)
    results = paginate(get_session(), search.visible_offers(actor, query, today), params)

    def without(name: str) -> Select[Any]:
        return search.visible_offers(actor, {**query, name: None}, today)

    facets = {
        "royalty_kind": facet_counts(without("royalty_kind"), Offer.royalty_kind),
        "patent_type": facet_counts(without("patent_type"), Patent.patent_type),
    }
    return render("offers.html", form=form, results=results, paging=pages(params), facets=facets)


@bp.get("/offers/<uuid:offer_id>")
def offer(offer_id: uuid.UUID) -> Any:
    """An offer: the patent and its owners, the terms in words, uptake and the specimen."""
    actor = page_actor()
    session = get_session()
    seen = reading.seen_offer(session, actor, offer_id)
    status = effective_status(seen.offer, clock.today())
    held = None
    if actor is not None and actor.role is Role.LICENSEE:
        mine = licence_services.visible_licences(actor, {"offer_id": offer_id})
        held = session.scalars(mine.where(Licence.status.in_(LIVE_STATUSES)).limit(1)).first()
    return render(
        "offer.html",
        offer=seen.offer,
        owners=seen.owners,
        offer_status=status,
        takeable=status is OfferStatus.PUBLISHED,
        held=held,
        terms=present.terms_text(seen.offer.terms, licensee_is_sme=None),
    )


@bp.get("/offers/<uuid:offer_id>/specimen.pdf")
def specimen(offer_id: uuid.UUID) -> Response:
    """The specimen contract, seen as the offer is (the API's specimen, for this session)."""
    found = documents.specimen(get_session(), actor=page_actor(), offer_id=offer_id)
    return download(found.data, mimetype="application/pdf", filename=found.filename, inline=True)


@bp.get("/gazette")
def gazette_page() -> Any:
    params = PaginationParameters(page_number(), PAGE_SIZE)
    entries = paginate(get_session(), gazette.entries(), params)
    return render("gazette.html", entries=entries, paging=pages(params))


@bp.get("/verify")
def verify_form() -> Any:
    return render("verify.html", form=Form({}), verdict=None)


@bp.post("/verify")
@reads
@verify_limited  # the API's limit: one budget for both ways of asking
def verify() -> Any:
    """Check an uploaded contract PDF: signed by the registry, unmodified, on record."""
    form = Form({})
    upload: FileStorage | None = request.files.get("file")
    limit = current_app.config["REGISTRY_SETTINGS"].verify_max_bytes
    data = b""
    if upload is None or not upload.filename:
        form.add("file", "Missing data for required field.")
    else:
        try:
            data = upload.stream.read(limit + 1)
        finally:
            upload.close()
        if len(data) > limit:
            form.add("file", "the file is larger than the limit")
    if not form.ok:
        return render("verify.html", 413 if data else 422, form=form, verdict=None)
    try:
        verdict = contract_services.verify(get_session(), data)
    except RegistryError as error:
        form.absorb(error, ["file"])
        return render("verify.html", error.status, form=form, verdict=None)
    return render("verify.html", form=form, verdict=verdict)
