"""Offer services: drafts, consents, publication, withdrawal, expiry, and the take-up claim.

Each function checks permission, collects every violation before raising, flushes, records one
audit event and never commits (STYLE.md §5). Take-up and withdrawal conflict on the offer row
and only there: both write it with a conditional ``UPDATE … WHERE status='published'`` that
bumps its version (reliability.md §0 rule 4, §2.4).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from registry.audit.services import record
from registry.core import clock
from registry.core.actor import Actor, Role
from registry.core.errors import (
    Duplicate,
    FieldError,
    Forbidden,
    InvalidTransition,
    NotFound,
    RuleViolation,
    validation_failed,
)
from registry.offers import gazette, permissions
from registry.offers.eligibility import (
    Context,
    Report,
    consent_outcome,
    consenting_organisations,
    evaluate,
)
from registry.offers.lifecycle import (
    effective_status,
    ended_status,
    offer_end_date,
    offer_last_day,
)
from registry.offers.models import (
    ConsentPurpose,
    GazetteKind,
    Offer,
    OfferConsent,
    OfferStatus,
)
from registry.offers.royalty import upfront_amount
from registry.offers.terms import (
    check_terms,
    load_document,
    merge_for_edit,
    terms_document,
    terms_sha256,
)
from registry.patents.models import EncumbranceKind, Patent, PatentOwner

__all__ = [
    "OfferNotPublished",
    "claim_for_take_up",
    "effective_status",
    "offer_end_date",
]

EXCLUSIVE_KINDS = frozenset({EncumbranceKind.EXCLUSIVE_LICENCE, EncumbranceKind.SOLE_LICENCE})


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


# Reading ------------------------------------------------------------------------------------


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
        # SQLite's BEGIN IMMEDIATE already serialises writers.
        statement = statement.with_for_update(of=Offer)
    return session.scalar(statement)


@dataclass
class Seen:
    """An offer as one caller sees it, with its patent's current owners."""

    offer: Offer
    owners: list[PatentOwner]

    @property
    def owner_ids(self) -> list[uuid.UUID]:
        return [o.organisation_id for o in self.owners]


def _seen(
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
    return _seen(session, actor, offer_id).offer


def eligibility(session: Session, *, actor: Actor, offer_id: uuid.UUID) -> Report:
    """Every check E1–E13 (law.md A1) as publishing by ``actor`` now would run them.

    For those who may see drafts (owners' TTOs, admins, auditors); 403 for other callers who
    can see the offer, 404 for those who cannot."""
    seen = _seen(session, actor, offer_id)
    if not permissions.can_see_drafts(actor, seen.owner_ids):
        raise Forbidden("the eligibility report is for the owners, admins and auditors")
    return _evaluate(seen, actor=actor, attested=None)


def _evaluate(seen: Seen, *, actor: Actor, attested: bool | None) -> Report:
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
    seen = _seen(session, actor, offer_id, for_update=True)
    if not permissions.can_manage(actor, seen.owner_ids):
        raise Forbidden("only TTO staff of the patent's owners and admins edit a declaration")
    _require_draft(seen.offer, "edited")
    return seen.offer


def _require_draft(offer: Offer, what: str) -> None:
    if offer.status != OfferStatus.DRAFT:
        raise InvalidTransition(
            f"only a draft can be {what}; this offer is {offer.status.value} "
            "(published terms never change: withdraw and declare again)",
            [FieldError.of("status", f"is {offer.status.value}, not draft")],
        )


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
    seen = _seen(session, actor, offer_id, for_update=True)
    offer = seen.offer
    if not permissions.is_owner_tto(actor, seen.owner_ids):
        raise Forbidden("each owner's TTO consents for its own organisation")
    _require_draft(offer, "consented to")
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


# Publication --------------------------------------------------------------------------------


def publish(session: Session, *, actor: Actor, offer_id: uuid.UUID, attest: bool) -> Offer:
    """Publish a draft: gazette number, timestamp, terms frozen (PL Art. 50; IR Art. 85).

    Owners' TTOs and admins (403 otherwise). Refuses (409 ``not_eligible``) while any hard
    check E1–E13 fails, naming every failed check; failed warnings are recorded on the offer.
    A patent carries one published declaration at a time (409 ``already_published``).
    Publishing by an owner's TTO is that owner's consent to the terms."""
    seen = _seen(session, actor, offer_id, for_update=True)
    offer = seen.offer
    if not permissions.can_manage(actor, seen.owner_ids):
        raise Forbidden("only TTO staff of the patent's owners and admins publish")
    _require_draft(offer, "published")
    report = _evaluate(seen, actor=actor, attested=attest)
    if report.failed_hard:
        raise NotEligible(
            "the declaration is not eligible: " + ", ".join(c.code for c in report.failed_hard),
            [
                FieldError.of(f"eligibility.{c.code}", c.message_en, c.message_zh)
                for c in report.failed_hard
            ],
        )
    today = clock.today()
    for other in _published_offers(session, offer.patent_id):
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


def _published_offers(session: Session, patent_id: uuid.UUID) -> Sequence[Offer]:
    return session.scalars(
        select(Offer).where(Offer.patent_id == patent_id, Offer.status == OfferStatus.PUBLISHED)
    ).all()


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
    (409); once per organisation (409)."""
    seen = _seen(session, actor, offer_id, for_update=True)
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
    if actor.organisation_id in consenting_organisations(offer, purpose=ConsentPurpose.WITHDRAW):
        raise Duplicate(
            "your organisation has already asked to withdraw this offer",
            [FieldError.of("reason", "already asked")],
        )
    stamp = clock.now()
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
    for offer in _published_offers(session, patent.id):
        if effective_status(offer, today) == OfferStatus.PUBLISHED:
            return (
                f"an open licence ({offer.gazette_number}) is published for this patent: "
                "Patent Law Art. 51(3) forbids an exclusive or sole licence while it is"
            )
    return None


def has_published_offer(session: Session, patent_id: uuid.UUID) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(Offer.patent_id == patent_id, Offer.status == OfferStatus.PUBLISHED)
            )
        )
    )
