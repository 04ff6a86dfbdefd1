"""Offer services: drafts, consents and the take-up claim; publication, withdrawal and expiry
live in :mod:`registry.offers.publication` and are re-exported here.

Each function checks permission, collects every violation before raising, flushes, records one
audit event and never commits (STYLE.md §5). Take-up and withdrawal conflict on the offer row
and only there: both write it with a conditional ``UPDATE … WHERE status='published'`` that
bumps its version (reliability.md §0 rule 4, §2.4).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from registry.audit.services import record
from registry.core import clock
from registry.core.actor import Actor, Role
from registry.core.errors import Duplicate, FieldError, Forbidden, NotFound, validation_failed
from registry.offers import permissions
from registry.offers.eligibility import consenting_organisations
from registry.offers.lifecycle import effective_status, offer_end_date
from registry.offers.models import ConsentPurpose, Offer, OfferConsent, OfferStatus
from registry.offers.publication import expire_offers, publish, withdraw, withdrawal_progress
from registry.offers.reading import (
    AlreadyPublished,
    NotEligible,
    OfferNotPublished,
    TermsChanged,
    current_owners,
    eligibility,
    get_offer,
    published_offers,
    require_draft,
    seen_offer,
)
from registry.offers.royalty import upfront_amount
from registry.offers.terms import (
    check_terms,
    load_document,
    merge_for_edit,
    terms_document,
    terms_sha256,
)
from registry.patents.models import EncumbranceKind, Patent

__all__ = [
    "AlreadyPublished",
    "NotEligible",
    "OfferNotPublished",
    "TermsChanged",
    "claim_for_take_up",
    "effective_status",
    "eligibility",
    "expire_offers",
    "get_offer",
    "offer_end_date",
    "publish",
    "withdraw",
    "withdrawal_progress",
]

EXCLUSIVE_KINDS = frozenset({EncumbranceKind.EXCLUSIVE_LICENCE, EncumbranceKind.SOLE_LICENCE})


# Drafts -------------------------------------------------------------------------------------


def _apply_terms(offer: Offer, doc: dict[str, Any], values: dict[str, Any]) -> None:
    """Store the terms document and the single terms copied out for search filters."""
    offer.terms = doc
    offer.terms_sha256 = terms_sha256(doc)
    offer.royalty_kind = values["royalty"]["kind"]
    offer.upfront_amount = upfront_amount(doc["royalty"])
    offer.has_free_period = "free_months" in doc["royalty"]
    offer.field_of_use = doc["field_of_use"]
    offer.term_end_date = values.get("term_end_date")


def create_offer(session: Session, *, actor: Actor, data: dict[str, Any]) -> Offer:
    """Create a draft declaration for one patent (law.md B3: one patent per declaration).

    TTO staff of an owner of the patent and admins only (403 for other roles); a patent the
    caller may not declare answers 422 on ``patent_id`` like an unknown one. The terms are
    checked against each other and the patent (:func:`check_terms`): 422 with every violation.
    """
    if actor.role not in (Role.TTO, Role.ADMIN):
        raise Forbidden("TTO staff of the patent's owners and admins prepare declarations")
    values = dict(data)
    patent_id = values.pop("patent_id")
    patent = session.get(Patent, patent_id)
    owners = current_owners(session, patent_id) if patent else []
    if patent is None or not permissions.can_manage(actor, [o.organisation_id for o in owners]):
        raise_invalid("patent_id", "no patent with this id that your organisation owns")
    assert patent is not None
    validation_failed(check_terms(values, patent=patent, today=clock.today()))
    stamp = clock.now()
    offer = Offer(
        id=uuid.uuid4(),
        patent_id=patent.id,
        status=OfferStatus.DRAFT,
        warnings=[],
        version=1,
        licence_count=0,
        created_by_user_id=actor.user_id,
        created_dt=stamp,
        updated_dt=stamp,
    )
    _apply_terms(offer, terms_document(values), values)
    session.add(offer)
    session.flush()
    record(
        session,
        actor=actor,
        action="offer.created",
        subject_type="offer",
        subject_id=offer.id,
        payload={
            "patent_id": patent.id,
            "terms": offer.terms,
            "terms_sha256": offer.terms_sha256,
            "version": offer.version,
        },
    )
    return offer


def raise_invalid(field: str, message: str) -> None:
    validation_failed([FieldError.of(field, message)])


def editable_offer(session: Session, *, actor: Actor, offer_id: uuid.UUID) -> Offer:
    """The offer, locked, if the caller may edit it: 404 outside its view, 403 for readers,
    409 unless it is a draft (law.md A2: published terms are immutable)."""
    seen = seen_offer(session, actor, offer_id, for_update=True)
    if not permissions.can_manage(actor, seen.owner_ids):
        raise Forbidden("only TTO staff of the patent's owners and admins edit a declaration")
    require_draft(seen.offer, "edited")
    return seen.offer


def update_offer(session: Session, *, actor: Actor, offer: Offer, data: dict[str, Any]) -> Offer:
    """Change a draft's terms (the caller has checked ``If-Match``).

    A change of terms changes their hash, so every earlier consent no longer counts (E7): the
    owners consent again to what will be published. 422 with every violation."""
    current = load_document(offer.terms)
    merged = merge_for_edit(current, data)
    validation_failed(check_terms(merged, patent=offer.patent, today=clock.today()))
    doc = terms_document(merged)
    if terms_sha256(doc) == offer.terms_sha256:
        return offer
    before, old_sha = offer.terms, offer.terms_sha256
    voided = sorted(
        str(c.organisation_id)
        for c in offer.consents
        if c.purpose == ConsentPurpose.PUBLISH and c.terms_sha256 == old_sha
    )
    _apply_terms(offer, doc, merged)
    offer.version += 1
    offer.updated_dt = clock.now()
    session.flush()
    changes = {
        name: [before.get(name), doc.get(name)]
        for name in sorted(before.keys() | doc.keys())
        if before.get(name) != doc.get(name)
    }
    record(
        session,
        actor=actor,
        action="offer.updated",
        subject_type="offer",
        subject_id=offer.id,
        payload={
            "changes": changes,
            "terms_sha256": [old_sha, offer.terms_sha256],
            "consents_voided": voided,
            "version": offer.version,
        },
    )
    return offer


# Consents -----------------------------------------------------------------------------------


def consent(
    session: Session, *, actor: Actor, offer_id: uuid.UUID, terms_sha256_: str
) -> OfferConsent:
    """Record the caller's organisation's consent to publish these exact terms (E7).

    Only an owner's TTO consents for its organisation (403 otherwise; 404 when the draft is not
    visible); only a draft (409); the hash sent must be the current terms' hash (409
    ``terms_changed``: they changed since the caller read them); once per terms (409)."""
    seen = seen_offer(session, actor, offer_id, for_update=True)
    offer = seen.offer
    if not permissions.is_owner_tto(actor, seen.owner_ids):
        raise Forbidden("each owner's TTO consents for its own organisation")
    require_draft(offer, "consented to")
    if terms_sha256_ != offer.terms_sha256:
        raise TermsChanged(
            "the terms changed since you read them: read the offer again and consent to those",
            [FieldError.of("terms_sha256", f"the current terms hash is {offer.terms_sha256}")],
        )
    if actor.organisation_id in consenting_organisations(offer, purpose=ConsentPurpose.PUBLISH):
        raise Duplicate(
            "your organisation has already consented to these terms",
            [FieldError.of("terms_sha256", "already consented")],
        )
    given = OfferConsent(
        offer_id=offer.id,
        organisation_id=actor.organisation_id,
        user_id=actor.user_id,
        purpose=ConsentPurpose.PUBLISH,
        terms_sha256=offer.terms_sha256,
        created_dt=clock.now(),
    )
    session.add(given)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # a colleague consented for the organisation at the same moment
        raise Duplicate("your organisation has already consented to these terms") from None
    session.expire(offer, ["consents"])
    record(
        session,
        actor=actor,
        action="offer.consented",
        subject_type="offer",
        subject_id=offer.id,
        payload={
            "organisation_id": actor.organisation_id,
            "purpose": ConsentPurpose.PUBLISH,
            "terms_sha256": offer.terms_sha256,
        },
    )
    return given


# Take-up (called by the licences feature) ---------------------------------------------------


def claim_for_take_up(session: Session, *, offer_id: uuid.UUID) -> Offer:
    """Atomically bump version and licence_count of a published, unexpired offer.

    ``UPDATE offers SET version=version+1, licence_count=licence_count+1 WHERE id=:id AND
    status='published' RETURNING version`` is the conflicting write a withdrawal also makes
    (reliability.md §2.3): whichever commits second sees the other's row, so no take-up can
    commit after a withdrawal. Raise NotFound for unknown offers and OfferNotPublished (code
    ``offer_not_published``) when not published or past its end (read-time expiry first).
    """
    offer = session.get(Offer, offer_id)
    if offer is None:
        raise NotFound("offer")
    status = effective_status(offer, clock.today())
    if status != OfferStatus.PUBLISHED:
        raise OfferNotPublished(f"offer is {status.value}, not published: it cannot be taken up")
    version = session.execute(
        update(Offer)
        .where(Offer.id == offer_id, Offer.status == OfferStatus.PUBLISHED)
        .values(
            version=Offer.version + 1,
            licence_count=Offer.licence_count + 1,
            updated_dt=clock.now(),
        )
        .returning(Offer.version)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    session.refresh(offer)
    if version is None:
        # Withdrawn (or ended) between our read and our write: the withdrawal won.
        raise OfferNotPublished(
            f"offer is {offer.status.value}, not published: it cannot be taken up"
        )
    return offer


# Signals ------------------------------------------------------------------------------------


def refuse_exclusive_while_published(
    patent: Patent, *, session: Session, kind: EncumbranceKind, **_: Any
) -> str | None:
    """Receiver of ``patents.encumbrance-requested``: no exclusive or sole licence while an
    open licence is published (Patent Law Art. 51(3))."""
    if kind not in EXCLUSIVE_KINDS:
        return None
    today = clock.today()
    for offer in published_offers(session, patent.id):
        if effective_status(offer, today) == OfferStatus.PUBLISHED:
            return (
                f"an open licence ({offer.gazette_number}) is published for this patent: "
                "Patent Law Art. 51(3) forbids an exclusive or sole licence while it is"
            )
    return None
