"""Reading offers as one caller may see them, and what the transitions share.

Drafts stay invisible outside their owners, admins and auditors (404, no existence oracle);
published and ended offers are public. The errors here carry the codes clients rely on.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from registry.core import clock
from registry.core.actor import Actor
from registry.core.errors import FieldError, Forbidden, InvalidTransition, NotFound, RuleViolation
from registry.offers import permissions
from registry.offers.eligibility import Context, Report, consenting_organisations, evaluate
from registry.offers.models import ConsentPurpose, Offer, OfferStatus
from registry.patents.models import Patent, PatentOwner


class OfferNotPublished(RuleViolation):
    """Only a published offer in force can be taken up (PL Art. 51(1); law.md A2–A3)."""

    code = "offer_not_published"


class NotEligible(RuleViolation):
    """A hard eligibility check failed (law.md A1); ``errors`` names every failed check."""

    code = "not_eligible"


class AlreadyPublished(RuleViolation):
    code = "already_published"


class TermsChanged(RuleViolation):
    code = "terms_changed"


def current_owners(session: Session, patent_id: uuid.UUID) -> list[PatentOwner]:
    return list(
        session.scalars(
            select(PatentOwner)
            .where(PatentOwner.patent_id == patent_id, PatentOwner.superseded_dt.is_(None))
            .order_by(PatentOwner.position)
            .options(selectinload(PatentOwner.organisation))
        )
    )


def _load(session: Session, offer_id: uuid.UUID, *, for_update: bool = False) -> Offer | None:
    statement = (
        select(Offer)
        .where(Offer.id == offer_id)
        .options(
            selectinload(Offer.patent).selectinload(Patent.encumbrances),
            selectinload(Offer.consents),
        )
    )
    if for_update:
        # PostgreSQL: queue behind a concurrent publish, withdrawal or take-up of this offer;
        # SQLite's BEGIN IMMEDIATE already serialises writers. The row read under the lock
        # overwrites any copy this session held (populate_existing): decide on fresh state.
        statement = statement.with_for_update(of=Offer).execution_options(populate_existing=True)
    return session.scalar(statement)


@dataclass
class Seen:
    """An offer as one caller sees it, with its patent's current owners."""

    offer: Offer
    owners: list[PatentOwner]

    @property
    def owner_ids(self) -> list[uuid.UUID]:
        return [o.organisation_id for o in self.owners]


def seen_offer(
    session: Session, actor: Actor | None, offer_id: uuid.UUID, *, for_update: bool = False
) -> Seen:
    offer = _load(session, offer_id, for_update=for_update)
    if offer is None:
        raise NotFound("offer")
    owners = current_owners(session, offer.patent_id)
    seen = Seen(offer, owners)
    if not permissions.can_view(actor, offer.status, seen.owner_ids):
        raise NotFound("offer")  # drafts stay invisible outside the owners (no oracle)
    return seen


def get_offer(session: Session, *, actor: Actor | None, offer_id: uuid.UUID) -> Offer:
    """The offer if the caller may see it: anyone for a published or ended one, the owners'
    TTOs, admins and auditors for a draft; 404 otherwise."""
    return seen_offer(session, actor, offer_id).offer


def eligibility(session: Session, *, actor: Actor, offer_id: uuid.UUID) -> Report:
    """Every check E1–E13 (law.md A1) as publishing by ``actor`` now would run them.

    For those who may see drafts (owners' TTOs, admins, auditors); 403 for other callers who
    can see the offer, 404 for those who cannot."""
    seen = seen_offer(session, actor, offer_id)
    if not permissions.can_see_drafts(actor, seen.owner_ids):
        raise Forbidden("the eligibility report is for the owners, admins and auditors")
    return evaluate_for(seen, actor=actor, attested=None)


def evaluate_for(seen: Seen, *, actor: Actor, attested: bool | None) -> Report:
    # Publishing is the publishing owner's own consent to the terms it publishes.
    implied = actor.organisation_id if permissions.is_owner_tto(actor, seen.owner_ids) else None
    return evaluate(
        Context(
            offer=seen.offer,
            patent=seen.offer.patent,
            owners=seen.owners,
            today=clock.today(),
            declarant=actor,
            attested=attested,
            consenting=consenting_organisations(
                seen.offer, purpose=ConsentPurpose.PUBLISH, implied=implied
            ),
        )
    )


def require_draft(offer: Offer, what: str) -> None:
    if offer.status != OfferStatus.DRAFT:
        raise InvalidTransition(
            f"only a draft can be {what}; this offer is {offer.status.value} "
            "(published terms never change: withdraw and declare again)",
            [FieldError.of("status", f"is {offer.status.value}, not draft")],
        )


def published_offers(session: Session, patent_id: uuid.UUID) -> Sequence[Offer]:
    return session.scalars(
        select(Offer).where(Offer.patent_id == patent_id, Offer.status == OfferStatus.PUBLISHED)
    ).all()
