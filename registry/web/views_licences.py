"""An SME takes up a licence, then finds it among its licences and downloads the contract.

Take-up is three steps on one address, ``/offers/<id>/take-up``: the notice form (GET), the
confirmation showing the exact terms the licence will carry (POST ``step=review``), and the
take-up itself (POST ``step=confirm``), which calls the take-up service the API calls. The form
carries an idempotency key from its first step: a second submission of the same confirmation
(a double click, a reload, a retry after a lost answer) leads to the licence the first made,
never to a second licence (registry/core/idempotency.py, the API's own store).
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_smorest.pagination import PaginationParameters
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation
from registry.contracts import services as contract_services
from registry.core import clock, idempotency
from registry.core.actor import Actor
from registry.core.api import paginate
from registry.core.errors import RegistryError
from registry.core.http import download, get_session, writes
from registry.licences import services as licence_services
from registry.licences.models import LIVE_STATUSES, Licence
from registry.licences.schemas import TakeUpSchema
from registry.offers import reading
from registry.offers.lifecycle import effective_status
from registry.offers.models import OfferStatus
from registry.offers.services import OfferNotPublished
from registry.web import present
from registry.web.blueprint import bp, login_required, render, signed_in
from registry.web.forms import Form, load, posted
from registry.web.views_public import PAGE_SIZE, page_number, pages

NOTICE = licence_services.NOTICE_FIELDS


def _offer_for_take_up(session: Session, actor: Actor, offer_id: uuid.UUID) -> reading.Seen:
    """The offer, if the actor sees it (404), may take licences (403) and it is open (409)."""
    seen = reading.seen_offer(session, actor, offer_id)
    licence_services.require_enterprise_licensee(session, actor)
    if effective_status(seen.offer, clock.today()) is not OfferStatus.PUBLISHED:
        raise OfferNotPublished("this offer is not open for take-up")
    return seen


def _held(session: Session, actor: Actor, offer_id: uuid.UUID) -> Licence | None:
    statement = licence_services.visible_licences(actor, {"offer_id": offer_id})
    return session.scalars(statement.where(Licence.status.in_(LIVE_STATUSES)).limit(1)).first()


def _is_sme(session: Session, actor: Actor) -> bool:
    return bool(
        session.scalar(select(Organisation.is_sme).where(Organisation.id == actor.organisation_id))
    )


def _key() -> str:
    key = request.form.get("idempotency_key", "")
    if (
        not idempotency.KEY_FORMAT.fullmatch(key)
        or len(set(key)) < idempotency.MIN_DISTINCT_CHARACTERS
    ):
        raise idempotency.InvalidIdempotencyKey("the form's idempotency key is missing or invalid")
    return key


def _page(
    template: str, status: int, seen: reading.Seen, form: Form, key: str, **extra: Any
) -> Any:
    session = get_session()
    return render(
        template,
        status,
        offer=seen.offer,
        owners=seen.owners,
        form=form,
        key=key,
        terms=present.terms_text(seen.offer.terms, licensee_is_sme=_is_sme(session, signed_in())),
        **extra,
    )


@bp.get("/offers/<uuid:offer_id>/take-up")
@login_required
def take_up_form(offer_id: uuid.UUID) -> Any:
    """Step 1: the written notice (PL Art. 51(1))."""
    actor = signed_in()
    session = get_session()
    seen = _offer_for_take_up(session, actor, offer_id)
    form = Form({name: "" for name in NOTICE} | {"contact_email": actor.email})
    return _page(
        "take_up.html", 200, seen, form, str(uuid.uuid4()), held=_held(session, actor, offer_id)
    )


@bp.post("/offers/<uuid:offer_id>/take-up")
@login_required
def take_up(offer_id: uuid.UUID) -> Any:
    """Steps 2 and 3: confirm the exact terms, then take the licence (once)."""
    actor = signed_in()
    session = get_session()
    key = _key()
    seen = _offer_for_take_up(session, actor, offer_id)
    form = posted(NOTICE)
    notice = load(form, TakeUpSchema())
    step = request.form.get("step")
    if notice is None or step == "edit":
        status = 200 if notice is not None else 422
        return _page("take_up.html", status, seen, form, key, held=None)
    if step != "confirm":
        return _page("take_up_confirm.html", 200, seen, form, key)
    if request.form.get("terms_sha256") != seen.offer.terms_sha256:
        form.problem = _("The terms changed since you read them. Read them again below.")
        return _page("take_up_confirm.html", 409, seen, form, key)
    if request.form.get("agree") != "yes":
        form.add("agree", _("Tick the box to confirm that you take the licence on these terms."))
        return _page("take_up_confirm.html", 422, seen, form, key)
    done = _claim(session, actor, key, form)
    if done is not None:
        return redirect(url_for("web.licence", licence_id=done), 303)
    try:
        licence = licence_services.take_up(
            session,
            actor=actor,
            offer_id=offer_id,
            notice=notice,
            client_address=request.remote_addr,
        )
    except RegistryError as refused:
        if refused.status >= 500:
            raise
        form.absorb(refused, NOTICE)
        return _page("take_up_confirm.html", refused.status, seen, form, key)
    _store(session, actor, key, licence)
    flash(_("Licence %(reference)s is yours. Its contract is below.", reference=licence.reference))
    return redirect(url_for("web.licence", licence_id=licence.id), 303)


def _claim(session: Session, actor: Actor, key: str, form: Form) -> uuid.UUID | None:
    """Claim the key for this take-up; the licence it already made, if it made one."""
    try:
        record = idempotency.claim_key(
            session,
            user_id=actor.user_id,
            key=key,
            endpoint=f"POST {request.path}"[:200],
            request_sha256=idempotency.fingerprint(form.values),
        )
    except idempotency.IdempotencyConflict:
        # PostgreSQL: the same form is being taken up by a request that has now committed or
        # failed (the claim waited for it); its outcome is read afresh.
        found = session.scalar(
            select(idempotency.IdempotencyRecord).where(
                idempotency.IdempotencyRecord.user_id == actor.user_id,
                idempotency.IdempotencyRecord.key == key,
            )
        )
        if found is None or found.status_code == idempotency.IN_PROGRESS:
            raise
        record = found
    if record.status_code == idempotency.IN_PROGRESS:
        return None
    return uuid.UUID(record.response_body["licence_id"])


def _store(session: Session, actor: Actor, key: str, licence: Licence) -> None:
    record = session.get_one(idempotency.IdempotencyRecord, (actor.user_id, key))
    record.status_code = 201
    record.response_body = {"licence_id": str(licence.id), "reference": licence.reference}
    session.flush()


@bp.get("/licences")
@login_required
def licences() -> Any:
    """My licences (an SME's), or those a TTO, auditor or admin may see."""
    actor = signed_in()
    params = PaginationParameters(page_number(), PAGE_SIZE)
    statement = licence_services.visible_licences(actor, {})
    found = paginate(get_session(), statement, params)
    return render("licences.html", licences=found, paging=pages(params))


@bp.get("/licences/<uuid:licence_id>")
@login_required
def licence(licence_id: uuid.UUID) -> Any:
    found = licence_services.get_licence(get_session(), actor=signed_in(), licence_id=licence_id)
    return render(
        "licence.html",
        licence=found,
        contract=getattr(found, "contract", None),
        terms=present.terms_text(found.terms, licensee_is_sme=found.licensee.is_sme),
    )


@bp.get("/licences/<uuid:licence_id>/contract.pdf")
@writes
@login_required
def contract(licence_id: uuid.UUID) -> Any:
    """The signed contract (an audit event, as through the API)."""
    found = contract_services.download(get_session(), actor=signed_in(), licence_id=licence_id)
    return download(found.data, mimetype="application/pdf", filename=found.filename)
