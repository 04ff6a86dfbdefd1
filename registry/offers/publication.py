"""Publication, withdrawal and the end of an offer: the transitions of reference/law.md A2.

A publication and a withdrawal are each announced in the gazette with a number per year
(IR Art. 107(13)); an offer whose term or patent ended is stored as expired or lapsed by
``flask --app wsgi offers expire``. Every transition writes the offer row with a version bump,
so it orders against take-ups (reliability.md §2.4), and records one audit event.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from registry.audit.services import record
from registry.core import clock
from registry.core.actor import Actor
from registry.core.errors import Duplicate, FieldError, Forbidden, InvalidTransition
from registry.offers import gazette, permissions
from registry.offers.eligibility import consent_outcome, consenting_organisations
from registry.offers.lifecycle import effective_status, ended_status, offer_last_day
from registry.offers.models import ConsentPurpose, GazetteKind, Offer, OfferConsent, OfferStatus
from registry.offers.reading import (
    AlreadyPublished,
    NotEligible,
    evaluate_for,
    published_offers,
    require_draft,
    seen_offer,
)
from registry.patents.models import PatentOwner


def publish(session: Session, *, actor: Actor, offer_id: uuid.UUID, attest: bool) -> Offer:
    """Publish a draft: gazette number, timestamp, terms frozen (PL Art. 50; IR Art. 85).

    Owners' TTOs and admins (403 otherwise). Refuses (409 ``not_eligible``) while any hard
    check E1–E13 fails, naming every failed check; failed warnings are recorded on the offer.
    A patent carries one published declaration at a time (409 ``already_published``).
    Publishing by an owner's TTO is that owner's consent to the terms."""
    seen = seen_offer(session, actor, offer_id, for_update=True)
    offer = seen.offer
    if not permissions.can_manage(actor, seen.owner_ids):
        raise Forbidden("only TTO staff of the patent's owners and admins publish")
    require_draft(offer, "published")
    report = evaluate_for(seen, actor=actor, attested=attest)
    if report.failed_hard:
        raise NotEligible(
            "the declaration is not eligible: " + ", ".join(c.code for c in report.failed_hard),
            [
                FieldError.of(f"eligibility.{c.code}", c.message_en, c.message_zh)
                for c in report.failed_hard
            ],
        )
    today = clock.today()
    for other in published_offers(session, offer.patent_id):
        if other.id == offer.id:
            continue
        if ended := ended_status(other, other.patent, today):
            _persist_end(session, other, ended, today)
        else:
            raise AlreadyPublished(
                f"this patent's open licence {other.gazette_number} is published: withdraw it "
                "before declaring new terms",
                [FieldError.of("patent_id", f"published as {other.gazette_number}")],
            )
    stamp = clock.now()
    implied = actor.organisation_id if permissions.is_owner_tto(actor, seen.owner_ids) else None
    if implied and implied not in consenting_organisations(offer, purpose=ConsentPurpose.PUBLISH):
        session.add(
            OfferConsent(
                offer_id=offer.id,
                organisation_id=implied,
                user_id=actor.user_id,
                purpose=ConsentPurpose.PUBLISH,
                terms_sha256=offer.terms_sha256,
                created_dt=stamp,
            )
        )
    number = gazette.gazette_number(session)
    offer.status = OfferStatus.PUBLISHED
    offer.published_dt = stamp
    offer.gazette_number = number
    offer.attested_by_user_id = actor.user_id
    offer.warnings = [
        {"code": c.code, "basis": c.basis, "message_en": c.message_en, "message_zh": c.message_zh}
        for c in report.warnings
    ]
    offer.version += 1
    offer.updated_dt = stamp
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # another declaration of this patent was published meanwhile
        raise AlreadyPublished("this patent's open licence was published meanwhile") from None
    gazette.announce(
        session,
        offer=offer,
        kind=GazetteKind.PUBLICATION,
        number=number,
        stamp=stamp,
        owners=seen.owners,
    )
    session.flush()
    session.expire(offer, ["consents"])
    record(
        session,
        actor=actor,
        action="offer.published",
        subject_type="offer",
        subject_id=offer.id,
        payload={
            "gazette_number": number,
            "terms_sha256": offer.terms_sha256,
            "warnings": [c.code for c in report.warnings],
            "version": offer.version,
        },
    )
    return offer


# Withdrawal ---------------------------------------------------------------------------------


@dataclass
class WithdrawalProgress:
    asked: list[PatentOwner]
    awaiting: list[PatentOwner]


def withdrawal_progress(offer: Offer, owners: Sequence[PatentOwner]) -> WithdrawalProgress:
    asked = consenting_organisations(offer, purpose=ConsentPurpose.WITHDRAW)
    return WithdrawalProgress(
        asked=[o for o in owners if o.organisation_id in asked],
        awaiting=[o for o in owners if o.organisation_id not in asked],
    )


def withdraw(
    session: Session, *, actor: Actor, offer_id: uuid.UUID, reason: str
) -> tuple[Offer, list[PatentOwner]]:
    """Record the caller's organisation's request to withdraw a published offer; withdraw it
    when the owners asking satisfy the patent's open-licence decision rule (unanimous unless
    agreed otherwise: PL Art. 14; CNIPA FAQ on withdrawal). Returns the offer and the owners.

    A withdrawal is written, reasoned and announced, and leaves licences already granted
    untouched (PL Art. 50(2)). It writes the offer row with ``WHERE status='published'`` and
    stores the version it wrote, which orders every take-up before or after it
    (reliability.md §2.4). Only an owner's TTO asks (403); only a published offer in force
    (409); once per organisation (409), unless its request suffices by now (the owners or the
    rule changed since): asking again then withdraws the offer."""
    seen = seen_offer(session, actor, offer_id, for_update=True)
    offer = seen.offer
    if not permissions.is_owner_tto(actor, seen.owner_ids):
        raise Forbidden("each owner's TTO asks to withdraw for its own organisation")
    today = clock.today()
    status = effective_status(offer, today)
    if status != OfferStatus.PUBLISHED:
        raise InvalidTransition(
            f"only a published offer can be withdrawn; this offer is {status.value}",
            [FieldError.of("status", f"is {status.value}, not published")],
        )
    stamp = clock.now()
    asked = consenting_organisations(offer, purpose=ConsentPurpose.WITHDRAW)
    if actor.organisation_id in asked:
        # The request stands. If it suffices now (the owners or their decision rule changed
        # since it was made), asking again completes the withdrawal: otherwise no owner could
        # ever withdraw the offer (the others may be owners no more, and admins do not ask).
        if not consent_outcome(offer.patent.consent_open_licence, seen.owners, asked)[0]:
            raise Duplicate(
                "your organisation has already asked to withdraw this offer",
                [FieldError.of("reason", "already asked")],
            )
    else:
        session.add(
            OfferConsent(
                offer_id=offer.id,
                organisation_id=actor.organisation_id,
                user_id=actor.user_id,
                purpose=ConsentPurpose.WITHDRAW,
                terms_sha256=offer.terms_sha256,
                reason=reason,
                created_dt=stamp,
            )
        )
        session.flush()
        session.expire(offer, ["consents"])
    asking = consenting_organisations(offer, purpose=ConsentPurpose.WITHDRAW)
    satisfied, awaiting = consent_outcome(offer.patent.consent_open_licence, seen.owners, asking)
    if not satisfied:
        record(
            session,
            actor=actor,
            action="offer.withdrawal_requested",
            subject_type="offer",
            subject_id=offer.id,
            payload={
                "organisation_id": actor.organisation_id,
                "reason": reason,
                "awaiting": [o.organisation_id for o in awaiting],
            },
        )
        return offer, seen.owners
    reasons = [
        c.reason or ""
        for c in offer.consents
        if c.purpose == ConsentPurpose.WITHDRAW and c.terms_sha256 == offer.terms_sha256
    ]
    number = gazette.gazette_number(session)
    written = session.execute(
        update(Offer)
        .where(Offer.id == offer.id, Offer.status == OfferStatus.PUBLISHED)
        .values(
            status=OfferStatus.WITHDRAWN,
            version=Offer.version + 1,
            withdrawn_version=Offer.version + 1,
            withdrawn_dt=stamp,
            withdrawal_reason="\n".join(reasons),
            withdrawal_gazette_number=number,
            updated_dt=stamp,
        )
        .returning(Offer.version)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if written is None:  # pragma: no cover - the row lock above makes this unreachable
        raise InvalidTransition("the offer was withdrawn or ended meanwhile")
    session.refresh(offer)
    gazette.announce(
        session,
        offer=offer,
        kind=GazetteKind.WITHDRAWAL,
        number=number,
        stamp=stamp,
        owners=seen.owners,
        reason=offer.withdrawal_reason,
        licences_unaffected=offer.licence_count,
    )
    session.flush()
    record(
        session,
        actor=actor,
        action="offer.withdrawn",
        subject_type="offer",
        subject_id=offer.id,
        payload={
            "gazette_number": number,
            "reason": reason,
            "withdrawn_version": written,
            "licence_count": offer.licence_count,
        },
    )
    return offer, seen.owners


# Ending by itself ---------------------------------------------------------------------------


def _persist_end(session: Session, offer: Offer, status: OfferStatus, today: date) -> bool:
    """Store that a published offer expired or lapsed (law.md A2); False if it was not
    published any more. Conditional like a withdrawal, so it orders against take-ups."""
    ended = today if status == OfferStatus.LAPSED else offer_last_day(offer) + timedelta(days=1)
    written = session.execute(
        update(Offer)
        .where(Offer.id == offer.id, Offer.status == OfferStatus.PUBLISHED)
        .values(
            status=status,
            version=Offer.version + 1,
            ended_date=min(ended, today),
            updated_dt=clock.now(),
        )
        .returning(Offer.version)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if written is None:
        return False
    session.refresh(offer)
    record(
        session,
        actor=None,
        action=f"offer.{status.value}",
        subject_type="offer",
        subject_id=offer.id,
        payload={
            "ended_date": offer.ended_date,
            "patent_legal_status": offer.patent.legal_status,
            "version": written,
        },
    )
    return True


def expire_offers(session: Session, *, today: date) -> list[Offer]:
    """Persist the end of every published offer whose term or patent ended, or whose patent
    lapsed (PL Arts. 42, 44, 47; law.md A2). Each is one audit event; the gazette announces
    publications and withdrawals only."""
    candidates = session.scalars(
        select(Offer)
        .where(Offer.status == OfferStatus.PUBLISHED)
        .options(selectinload(Offer.patent))
        .order_by(Offer.published_dt, Offer.id)
    ).all()
    ended = []
    for offer in candidates:
        status = ended_status(offer, offer.patent, today)
        if status is not None and _persist_end(session, offer, status, today):
            ended.append(offer)
    return ended
