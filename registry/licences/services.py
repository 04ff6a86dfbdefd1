"""Take-ups and the licence lifecycle (reference/law.md A3, B4; reliability.md §2).

A take-up writes the offer row first (:func:`registry.offers.services.claim_for_take_up`, a
conditional ``UPDATE … WHERE status='published'`` that bumps the offer's version), then inserts
the licence carrying the version it wrote. A withdrawal makes the same kind of write, so the two
are ordered by the database: a take-up that commits first stands, and one that comes after
finds the offer withdrawn (409). Services check permissions, collect every violation, flush,
record one audit event and never commit (STYLE.md §5).
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from registry.accounts.models import Organisation, OrganisationKind
from registry.audit.services import record
from registry.core import clock
from registry.core.actor import Actor, Role
from registry.core.canonical import canonical_json, format_instant
from registry.core.errors import (
    FieldError,
    Forbidden,
    InvalidTransition,
    NotFound,
    RuleViolation,
    validation_failed,
)
from registry.core.sequences import next_number
from registry.licences import permissions
from registry.licences.models import LIVE_STATUSES, Licence, LicenceStatus
from registry.licences.signals import licence_taken_up
from registry.offers.lifecycle import add_months
from registry.offers.models import Offer
from registry.offers.services import OfferNotPublished, claim_for_take_up, offer_end_date
from registry.patents.models import PatentOwner
from registry.patents.services import owned_by_any

RECORDATION_MONTHS = 3  # IR Art. 87 and CNIPA FAQ: record within 3 months of taking effect
NOTICE_FIELDS = ("intended_use", "contact_name", "contact_phone", "contact_email", "notes")
LIVE_INDEX = "uq_licences_live_per_licensee"


class AlreadyLicensed(RuleViolation):
    """One live licence per licensee organisation per offer (DESIGN.md §2)."""

    code = "already_licensed"

    def __init__(self) -> None:
        super().__init__(
            "your organisation already holds a licence on this offer; terminate it first "
            "to take a new one"
        )


class OwnPatent(RuleViolation):
    """An owner already exploits its own patent (PL Art. 14); it takes no licence on it."""

    code = "own_patent"

    def __init__(self) -> None:
        super().__init__("your organisation owns this patent; it needs no licence to exploit it")


def _owner_ids(session: Session, patent_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        session.scalars(
            select(PatentOwner.organisation_id).where(
                PatentOwner.patent_id == patent_id, PatentOwner.superseded_dt.is_(None)
            )
        )
    )


def require_enterprise_licensee(session: Session, actor: Actor) -> None:
    """403 unless ``actor`` is a licensee user of an enterprise: who may take up (PL Art. 51(1)).
    The take-up page asks it before showing the notice form."""
    if actor.role is not permissions.TAKE_UP:
        raise Forbidden("only licensee users of an enterprise take up an open licence")
    kind = session.scalar(select(Organisation.kind).where(Organisation.id == actor.organisation_id))
    if kind is not OrganisationKind.ENTERPRISE:
        raise Forbidden("only licensee users of an enterprise take up an open licence")


def _live_licence_exists(session: Session, offer_id: uuid.UUID, org_id: uuid.UUID) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    Licence.offer_id == offer_id,
                    Licence.licensee_organisation_id == org_id,
                    Licence.status.in_(LIVE_STATUSES),
                )
            )
        )
    )


def initial_status(offer: Offer) -> LicenceStatus:
    """``pending_payment`` while an upfront amount (lump sum or entry fee) is due; free and
    use-first-pay-later licences start ``active`` (reference/law.md A3; PL Art. 51(1))."""
    if offer.upfront_amount > 0 and not offer.has_free_period:
        return LicenceStatus.PENDING_PAYMENT
    return LicenceStatus.ACTIVE


def _is_live_index_violation(error: IntegrityError) -> bool:
    text = str(error.orig)
    return LIVE_INDEX in text or "licences.offer_id, licences.licensee_organisation_id" in text


def take_up(
    session: Session,
    *,
    actor: Actor,
    offer_id: uuid.UUID,
    notice: dict[str, Any],
    client_address: str | None,
) -> Licence:
    """Take a licence on a published offer with one written notice (PL Art. 51(1)).

    Only licensee users of an enterprise (403). The offer row is written first: 404 for an
    unknown offer, 409 ``offer_not_published`` for a draft, withdrawn, expired or lapsed one.
    409 ``already_licensed`` while the caller's organisation holds a live licence on the offer
    (checked under the offer's row lock; the partial unique index is the backstop); 409
    ``own_patent`` when the caller's organisation owns the patent (PL Art. 14). The
    licence keeps a snapshot of the terms and their SHA-256, the offer version the take-up
    wrote, the notice verbatim with when and from where it was received, and its dates: it
    takes effect today (Beijing), ends at the earlier of the term's end and the patent's
    expiry, and is due for recordation three months on. One ``licence.taken_up`` event, then
    :data:`~registry.licences.signals.licence_taken_up` (its contract is issued there).
    """
    require_enterprise_licensee(session, actor)
    offer = claim_for_take_up(session, offer_id=offer_id)
    if actor.organisation_id in _owner_ids(session, offer.patent_id):
        raise OwnPatent()
    if _live_licence_exists(session, offer.id, actor.organisation_id):
        raise AlreadyLicensed()
    stamp = clock.now()
    effective = clock.today()
    end = offer_end_date(offer, effective)
    if end < effective:  # the claim applied read-time expiry already; this never lets one by
        raise OfferNotPublished("the offer's term has ended: it cannot be taken up")
    number = next_number(session, "licence", effective.year)
    written = {name: notice.get(name) for name in NOTICE_FIELDS}
    licence = Licence(
        id=uuid.uuid4(),
        reference=f"OL-{effective.year}-{number:06d}",
        offer_id=offer.id,
        offer_version=offer.version,
        patent_id=offer.patent_id,
        licensee_organisation_id=actor.organisation_id,
        licensee_user_id=actor.user_id,
        terms=copy.deepcopy(offer.terms),
        terms_sha256=offer.terms_sha256,
        notice={
            **written,
            "received_dt": format_instant(stamp),
            "client_address": client_address,
        },
        notice_dt=stamp,
        status=initial_status(offer),
        effective_date=effective,
        end_date=end,
        recordation_due_date=add_months(effective, RECORDATION_MONTHS),
        created_dt=stamp,
        updated_dt=stamp,
    )
    session.add(licence)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as error:
        if _is_live_index_violation(error):
            raise AlreadyLicensed() from None
        raise
    record(
        session,
        actor=actor,
        action="licence.taken_up",
        subject_type="licence",
        subject_id=licence.id,
        payload={
            "reference": licence.reference,
            "offer_id": offer.id,
            "offer_version": licence.offer_version,
            "patent_id": offer.patent_id,
            "licensee_organisation_id": actor.organisation_id,
            "terms_sha256": licence.terms_sha256,
            "status": licence.status,
            "effective_date": licence.effective_date,
            "end_date": licence.end_date,
            "recordation_due_date": licence.recordation_due_date,
            # The log commits to the notice without copying contact details into it.
            "notice_sha256": hashlib.sha256(
                canonical_json(licence.notice).encode("utf-8")
            ).hexdigest(),
        },
    )
    licence_taken_up.send(licence, session=session, actor=actor)
    return licence


def in_audit_scope(actor: Actor) -> ColumnElement[bool]:
    """SQL: the licence's licensee or a current owner of its patent is in the auditor's scope."""
    scope = list(actor.audit_scope or ())
    return or_(Licence.licensee_organisation_id.in_(scope), owned_by_any(Licence.patent_id, scope))


def audited_licence_ids(actor: Actor) -> Select[uuid.UUID]:
    """The ids of the licences in an auditor's scope, for filtering what hangs off licences
    (statements, payments, settlement lines)."""
    return select(Licence.id).where(in_audit_scope(actor))


def visible_licences(actor: Actor, query: dict[str, Any]) -> Select[Licence]:
    """Licences the actor may list, newest first: a licensee its organisation's, a TTO those
    on patents its organisation owns, admins all, auditors those in their scope; filtered by
    offer, patent or status."""
    statement = (
        select(Licence)
        .options(selectinload(Licence.licensee))
        .order_by(Licence.created_dt.desc(), Licence.id)
    )
    if actor.role is Role.LICENSEE:
        statement = statement.where(Licence.licensee_organisation_id == actor.organisation_id)
    elif actor.role is Role.TTO:
        statement = statement.where(
            exists().where(
                PatentOwner.patent_id == Licence.patent_id,
                PatentOwner.organisation_id == actor.organisation_id,
                PatentOwner.superseded_dt.is_(None),
            )
        )
    elif actor.role is Role.AUDITOR and not actor.audits_all:
        statement = statement.where(in_audit_scope(actor))
    elif not actor.is_admin and actor.role is not Role.AUDITOR:
        raise Forbidden("your role may not read licences")
    for name, column in (
        ("offer_id", Licence.offer_id),
        ("patent_id", Licence.patent_id),
        ("status", Licence.status),
    ):
        if query.get(name) is not None:
            statement = statement.where(column == query[name])
    return statement


def recordation_due(actor: Actor, *, today: date, days: int) -> Select[Licence]:
    """Live licences not yet recorded with CNIPA whose recordation is due within ``days``
    (overdue ones included), soonest first, within the actor's view (IR Art. 87)."""
    return (
        visible_licences(actor, {})
        .where(
            Licence.status.in_(LIVE_STATUSES),
            Licence.recordation_number.is_(None),
            Licence.recordation_due_date <= today + timedelta(days=days),
        )
        .order_by(None)
        .order_by(Licence.recordation_due_date, Licence.reference)
    )


def get_licence(
    session: Session, *, actor: Actor, licence_id: uuid.UUID, for_update: bool = False
) -> Licence:
    """The licence if the actor may see it; 404 otherwise (scope never leaks)."""
    statement = select(Licence).where(Licence.id == licence_id)
    if for_update:
        statement = statement.with_for_update(of=Licence)
    licence = session.scalar(statement)
    if licence is None or not permissions.can_view(
        actor, licence, _owner_ids(session, licence.patent_id)
    ):
        raise NotFound("licence")
    return licence


def terminate(session: Session, *, actor: Actor, licence_id: uuid.UUID, reason: str) -> Licence:
    """The licensee ends its licence (it may stop exploiting at any time; PL Art. 51 leaves
    the open licence at the licensee's will). 404 outside the actor's view, 403 for anyone
    but the licensee's users, 409 ``invalid_transition`` unless the licence is live.
    Royalties already due stay due. One ``licence.terminated`` event."""
    licence = get_licence(session, actor=actor, licence_id=licence_id, for_update=True)
    if not permissions.can_terminate(actor, licence):
        raise Forbidden("only the licensee terminates its licence")
    if licence.status not in LIVE_STATUSES:
        raise InvalidTransition(f"a licence that is {licence.status.value} cannot be terminated")
    previous = licence.status
    stamp = clock.now()
    licence.status = LicenceStatus.TERMINATED
    licence.terminated_dt = stamp
    licence.termination_reason = reason
    licence.updated_dt = stamp
    session.flush()
    record(
        session,
        actor=actor,
        action="licence.terminated",
        subject_type="licence",
        subject_id=licence.id,
        payload={"status": [previous, licence.status], "reason": reason},
    )
    return licence


def set_recordation(
    session: Session, *, actor: Actor, licence_id: uuid.UUID, data: dict[str, Any]
) -> Licence:
    """Record (or correct) the CNIPA recordation number and date, and who filed it.

    Either party files (IR Art. 87): the licensee's users or TTO staff of an owner, and the
    operator for them (403 for auditors, 404 outside the actor's view). The date is neither in
    the future nor before the licence took effect (422). One ``licence.recordation_set``
    event with the changes; sending the same values again changes nothing."""
    licence = get_licence(session, actor=actor, licence_id=licence_id, for_update=True)
    if not permissions.can_record(actor, licence, _owner_ids(session, licence.patent_id)):
        raise Forbidden("only the parties to the licence record it")
    errors = []
    if data["date"] > clock.today():
        errors.append(FieldError.of("date", "the recordation date is in the future"))
    if data["date"] < licence.effective_date:
        errors.append(
            FieldError.of(
                "date", f"the licence took effect on {licence.effective_date.isoformat()}"
            )
        )
    validation_failed(errors)
    values = {
        "recordation_number": data["number"],
        "recordation_date": data["date"],
        "recordation_filed_by": data["filed_by"],
    }
    changes = {
        name: [getattr(licence, name), value]
        for name, value in values.items()
        if getattr(licence, name) != value
    }
    if not changes:
        return licence
    for name, (_old, new) in changes.items():
        setattr(licence, name, new)
    licence.updated_dt = clock.now()
    session.flush()
    record(
        session,
        actor=actor,
        action="licence.recordation_set",
        subject_type="licence",
        subject_id=licence.id,
        payload={"changes": changes},
    )
    return licence


def expire_licences(session: Session, *, today: date) -> list[Licence]:
    """Live licences whose end date has passed become ``expired`` (term end or patent
    expiry; law.md A3), each with one ``licence.expired`` event by the system."""
    licences = list(
        session.scalars(
            select(Licence)
            .where(Licence.status.in_(LIVE_STATUSES), Licence.end_date < today)
            .order_by(Licence.reference)
            .with_for_update()
        )
    )
    stamp = clock.now()
    for licence in licences:
        previous = licence.status
        licence.status = LicenceStatus.EXPIRED
        licence.updated_dt = stamp
        session.flush()
        record(
            session,
            actor=None,
            action="licence.expired",
            subject_type="licence",
            subject_id=licence.id,
            payload={"status": [previous, licence.status], "end_date": licence.end_date},
        )
    return licences
