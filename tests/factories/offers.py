"""Offers for tests: valid request bodies, eligible patents, drafts and published offers made
through the services, and proof that a refused request changed nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any
from unittest import mock

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.accounts import services as account_services
from registry.accounts.models import User
from registry.audit.models import AuditEvent
from registry.core.clock import today
from registry.offers import services
from registry.offers.models import GazetteEntry, Offer, OfferConsent
from registry.offers.schemas import OfferCreateSchema
from registry.patents.models import Patent
from tests.factories import Factory, password_hash

ALL_ACTS = ["make", "use", "offer_to_sell", "sell", "import"]
CONTACT = {"name": "李老师", "email": "tto@uni.example.cn", "phone": "010-62780000"}


def fast_admin(factory: Factory) -> User:
    """The factory's admin, without paying for a fresh argon2 hash (~0.2 s) each time."""
    with mock.patch.object(account_services, "hash_password", return_value=password_hash()):
        return factory.admin()


def fees_paid_through() -> str:
    return date(today().year + 1, 12, 31).isoformat()


def royalty(kind: str = "lump_sum", **fields: Any) -> dict[str, Any]:
    defaults: dict[str, dict[str, Any]] = {
        "free": {},
        "lump_sum": {"amount": "50000.00"},
        "running": {"base": "net_sales", "rate": "3.5"},
        "entry_plus_running": {"entry_fee": "20000", "base": "net_sales", "rate": "2"},
    }
    return {"kind": kind, **defaults[kind], **fields}


def offer_body(patent_id: Any = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "royalty": royalty(),
        "term_years": 3,
        "licensed_acts": ALL_ACTS,
        "field_of_use": "锂离子电池负极材料的生产",
        "contact": dict(CONTACT),
        "other_matters": "提供为期三个月的技术指导",
    }
    if patent_id is not None:
        body["patent_id"] = str(patent_id)
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def eligible_patent(factory: Factory, owner_user: User, **overrides: Any) -> Patent:
    """A granted invention in force with its annual fees paid: every patent check passes."""
    overrides.setdefault("annual_fees_paid_through", fees_paid_through())
    return factory.patent(owner_user, **overrides)


def draft(factory: Factory, user: User, patent: Patent, **overrides: Any) -> Offer:
    data = OfferCreateSchema().load(offer_body(patent.id, **overrides))
    return services.create_offer(factory.session, actor=factory.actor(user), data=data)


def consent(factory: Factory, user: User, offer: Offer) -> None:
    services.consent(
        factory.session,
        actor=factory.actor(user),
        offer_id=offer.id,
        terms_sha256_=offer.terms_sha256,
    )


def published(
    factory: Factory, user: User, patent: Patent | None = None, **overrides: Any
) -> Offer:
    """A published offer on ``patent`` (a new eligible invention of ``user``'s organisation)."""
    patent = patent or eligible_patent(factory, user)
    offer = draft(factory, user, patent, **overrides)
    return services.publish(
        factory.session, actor=factory.actor(user), offer_id=offer.id, attest=True
    )


def _count(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def snapshot(session: Session) -> dict[str, Any]:
    """Counts of offer rows, consents, gazette entries and audit events; every offer's state."""
    session.expire_all()
    offers = session.execute(
        select(Offer.id, Offer.status, Offer.version, Offer.terms_sha256, Offer.licence_count)
    ).all()
    return {
        "offers": sorted(json.dumps([str(v) for v in row]) for row in offers),
        "consents": _count(session, OfferConsent),
        "gazette": _count(session, GazetteEntry),
        "audit_events": _count(session, AuditEvent),
    }


@contextmanager
def unchanged(session: Session) -> Iterator[None]:
    """Asserts the block (a refused request) left offers, consents, gazette and audit as is."""
    before = snapshot(session)
    yield
    assert snapshot(session) == before


def refused(response: Any, status: int, *fields: str, code: str | None = None) -> None:
    """The error envelope with ``status`` naming each field (exactly or as a prefix)."""
    assert response.status_code == status, response.json
    body = response.json
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    named = {error["field"] for error in body["errors"]}
    for field in fields:
        assert any(name == field or name.startswith(field + ".") for name in named), (
            field,
            body,
        )


def events(session: Session, action: str, subject_id: Any = None) -> list[AuditEvent]:
    session.expire_all()
    statement = select(AuditEvent).where(AuditEvent.action == action)
    if subject_id is not None:
        statement = statement.where(AuditEvent.subject_id == str(subject_id))
    return list(session.scalars(statement.order_by(AuditEvent.seq)))


def days(n: int) -> date:
    return today() + timedelta(days=n)


# --- for the access matrix (tests/api/test_access_matrix.py) ---------------------------------


def owner_tto(factory: Factory, organisation_id: Any) -> User:
    """A TTO user of ``organisation_id`` (made for the occasion when it has none)."""
    from registry.accounts.models import Organisation
    from registry.core.actor import Role

    user = factory.session.scalar(
        select(User).where(User.organisation_id == organisation_id, User.role == Role.TTO)
    )
    if user is not None:
        return user
    organisation = factory.session.get(Organisation, organisation_id)
    assert organisation is not None
    return factory.user(organisation, "tto")


def _pay_fees(factory: Factory, patent: Patent) -> None:
    # The matrix rolls each call back under the session's feet: read the row afresh, or an
    # assignment equal to a rolled-back value would look like no change and never be written.
    factory.session.refresh(patent)
    patent.annual_fees_paid_through = date.fromisoformat(fees_paid_through())
    factory.session.flush()


def matrix_draft(factory: Factory, patent: Patent, *, consented: bool = False) -> Offer:
    """A draft on ``patent`` that passes every check: fees paid, and (``consented``) its sole
    owner's consent given, so an admin may publish it."""
    _pay_fees(factory, patent)
    offer = draft(factory, fast_admin(factory), patent)
    if consented:
        (owner,) = patent.owners
        consent(factory, owner_tto(factory, owner.organisation_id), offer)
    return offer


def matrix_published(factory: Factory, patent: Patent) -> Offer:
    """The patent's published offer, published by its owner's TTO."""
    existing = factory.session.scalar(
        select(Offer).where(Offer.patent_id == patent.id, Offer.status == "published")
    )
    if existing is not None:
        return existing
    _pay_fees(factory, patent)
    (owner,) = patent.owners
    return published(factory, owner_tto(factory, owner.organisation_id), patent)
