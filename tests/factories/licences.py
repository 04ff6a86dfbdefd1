"""Published offers and take-ups for licence tests, made through the real services: a TTO
declares, publishes and withdraws; an enterprise's licensee takes up."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation, User
from registry.audit.models import AuditEvent
from registry.core.clock import today
from registry.core.idempotency import IdempotencyRecord
from registry.licences.models import Licence
from registry.offers import services as offer_services
from registry.offers.lifecycle import add_years
from registry.offers.models import Offer, OfferStatus
from registry.offers.schemas import OfferCreateSchema
from registry.patents import services as patent_services
from registry.patents.models import Patent
from tests.factories import Factory

ALL_ACTS = ["make", "use", "offer_to_sell", "sell", "import"]


def notice(**overrides: Any) -> dict[str, Any]:
    data = {
        "intended_use": "用于生产锂电池负极材料，年产能约500吨",
        "contact_name": "王经理",
        "contact_phone": "+86 21 5555-0100",
        "contact_email": "wang@sme.example.cn",
        "notes": "请寄送技术资料",
    }
    data.update(overrides)
    return data


def terms(royalty: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """A declaration's terms as ``POST /offers`` takes them (without ``patent_id``)."""
    body: dict[str, Any] = {
        "royalty": royalty or {"kind": "free"},
        "term_years": 3,
        "licensed_acts": ALL_ACTS,
        "contact": {"name": "李老师", "email": "tto@uni.example.cn", "phone": "010-62780000"},
    }
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not None}


def draft_offer(
    factory: Factory,
    tto_user: User,
    *,
    patent: Patent | None = None,
    royalty: dict[str, Any] | None = None,
    **term_overrides: Any,
) -> Offer:
    """A draft declaration by ``tto_user`` on ``patent`` (a new invention of the TTO's
    organisation by default), through the offers service."""
    patent = patent or factory.patent(
        tto_user, annual_fees_paid_through=add_years(today(), 1).isoformat()
    )
    factory.session.flush()
    factory.session.refresh(patent)  # as stored now (a caller may have rolled a savepoint back)
    if patent.annual_fees_paid_through is None or patent.annual_fees_paid_through < today():
        # E5: annual fees paid (IR Art. 86(3)) — recorded as a TTO would, before declaring.
        patent_services.update_patent(
            factory.session,
            actor=factory.actor(tto_user),
            patent=patent,
            data={"annual_fees_paid_through": add_years(today(), 1)},
        )
    data = OfferCreateSchema().load(
        {"patent_id": str(patent.id), **terms(royalty, **term_overrides)}
    )
    return offer_services.create_offer(factory.session, actor=factory.actor(tto_user), data=data)


def published_offer(
    factory: Factory,
    tto_user: User,
    *,
    patent: Patent | None = None,
    royalty: dict[str, Any] | None = None,
    reuse: bool = False,
    **term_overrides: Any,
) -> Offer:
    """A draft declaration published by its (sole owner's) TTO, through the offers services;
    ``reuse`` returns the patent's published offer when it has one."""
    if reuse and patent is not None:
        existing = factory.session.scalar(
            select(Offer).where(Offer.patent_id == patent.id, Offer.status == OfferStatus.PUBLISHED)
        )
        if existing is not None:
            return existing
    draft = draft_offer(factory, tto_user, patent=patent, royalty=royalty, **term_overrides)
    return offer_services.publish(
        factory.session, actor=factory.actor(tto_user), offer_id=draft.id, attest=True
    )


def withdraw(factory: Factory, tto_user: User, offer: Offer, reason: str = "技术路线调整") -> Offer:
    """Withdraw ``offer`` as its (sole) owner's TTO, through the offers service."""
    withdrawn, _ = offer_services.withdraw(
        factory.session, actor=factory.actor(tto_user), offer_id=offer.id, reason=reason
    )
    return withdrawn


def enterprise_licensee(factory: Factory, **kwargs: Any) -> tuple[Organisation, User, str]:
    """A new SME with one licensee user and that user's bearer token."""
    organisation = factory.organisation("enterprise", **kwargs)
    user = factory.user(organisation, "licensee")
    return organisation, user, factory.token(user)


def reread(session: Session) -> None:
    """Read everything afresh from the database. Flush first: the audit log appends without
    flushing, and expiring an unflushed log head would drop the append."""
    session.flush()
    session.expire_all()


def counts(session: Session) -> dict[str, int]:
    """Licences, audit events and stored idempotent responses; offer versions summed."""
    reread(session)

    def count(model: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)

    return {
        "licences": count(Licence),
        "audit_events": count(AuditEvent),
        "idempotency_records": count(IdempotencyRecord),
        "offer_versions": int(session.scalar(select(func.sum(Offer.version))) or 0),
        "licence_counts": int(session.scalar(select(func.sum(Offer.licence_count))) or 0),
    }


def take_up(factory: Factory, user: User, offer: Offer, **overrides: Any) -> Licence:
    """A licence taken by ``user`` through the take-up service (the real path), its contract
    issued as the app is configured (the receiver finds the app's contract office)."""
    from registry.licences import services

    with factory.app.app_context():
        return services.take_up(
            factory.session,
            actor=factory.actor(user),
            offer_id=offer.id,
            notice=notice(**overrides),
            client_address="127.0.0.1",
        )
