"""The public registry: which offers a caller sees, found by words and filters.

Words match a substring of the title, English title, abstract or field of use, case-insensitive
(``LIKE`` with escaping). Chinese has no spaces between words, so a substring match is what
finds ``锂电池`` in ``一种锂电池隔膜及其制备方法``, on SQLite and PostgreSQL alike; several words
separated by spaces must all match.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, case, cast, exists, literal, or_, select
from sqlalchemy.orm import selectinload

from registry.core.actor import Actor, Role
from registry.offers.lifecycle import LAPSED_LEGAL_STATUSES
from registry.offers.models import Offer, OfferStatus
from registry.patents.models import Patent, PatentOwner
from registry.patents.services import owned_by_any

MAX_WORDS = 8
IPC_SUBCLASS = re.compile(r"^([A-H]\d\d[A-Z])\s*(\d.*)?$")


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def status_sql(today: date) -> ColumnElement[Any]:
    """The status a reader sees today, in SQL (mirrors lifecycle.effective_status)."""
    return case(
        (Offer.status != OfferStatus.PUBLISHED, Offer.status),
        (Patent.legal_status.in_(sorted(LAPSED_LEGAL_STATUSES)), literal(OfferStatus.LAPSED.value)),
        (
            or_(
                Patent.expiry_date < today,
                and_(Offer.term_end_date.is_not(None), Offer.term_end_date < today),
            ),
            literal(OfferStatus.EXPIRED.value),
        ),
        else_=literal(OfferStatus.PUBLISHED.value),
    )


def _owned_by(organisation_id: Any) -> ColumnElement[bool]:
    return exists().where(
        PatentOwner.patent_id == Offer.patent_id,
        PatentOwner.organisation_id == organisation_id,
        PatentOwner.superseded_dt.is_(None),
    )


def ipc_prefix(text: str) -> str:
    """``h01m4/5`` → ``H01M 4/5``: the stored canonical spelling's prefix."""
    compact = " ".join(text.upper().split())
    match = IPC_SUBCLASS.match(compact)
    if match and match.group(2):
        return f"{match.group(1)} {match.group(2)}"
    return compact


def visible_offers(actor: Actor | None, query: dict[str, Any], today: date) -> Select[Offer]:
    """Offers the caller may list, filtered and sorted as asked (published ones by default).

    Everyone sees published and ended offers; drafts appear for their owners' TTOs, admins and
    auditors with an owner in scope."""
    status = status_sql(today)
    statement = select(Offer).join(Patent, Patent.id == Offer.patent_id)
    if actor is None or actor.role is Role.LICENSEE:
        statement = statement.where(Offer.status != OfferStatus.DRAFT)
    elif actor.role is Role.TTO:
        statement = statement.where(
            or_(Offer.status != OfferStatus.DRAFT, _owned_by(actor.organisation_id))
        )
    elif actor.role is Role.AUDITOR and not actor.audits_all:
        in_scope = owned_by_any(Offer.patent_id, actor.audit_scope or ())
        statement = statement.where(or_(Offer.status != OfferStatus.DRAFT, in_scope))
    statement = statement.where(status == query["status"].value)
    for word in (query.get("q") or "").split()[:MAX_WORDS]:
        pattern = f"%{escape_like(word)}%"
        statement = statement.where(
            or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (
                        Patent.title,
                        Patent.title_en,
                        Patent.abstract,
                        Offer.field_of_use,
                    )
                )
            )
        )
    if query.get("ipc"):
        # The codes are a JSON array of canonical strings: an element starts after a quote.
        pattern = f'%"{escape_like(ipc_prefix(query["ipc"]))}%'
        statement = statement.where(cast(Patent.ipc, String).like(pattern, escape="\\"))
    if query.get("patent_type"):
        statement = statement.where(Patent.patent_type == query["patent_type"])
    if query.get("royalty_kind"):
        statement = statement.where(Offer.royalty_kind == query["royalty_kind"])
    if query.get("organisation"):
        statement = statement.where(_owned_by(query["organisation"]))
    if query.get("max_upfront") is not None:
        statement = statement.where(Offer.upfront_amount <= query["max_upfront"])
    if query.get("free_period") is not None:
        statement = statement.where(Offer.has_free_period.is_(query["free_period"]))
    sort = query.get("sort", "-published_dt")
    newest = (Offer.published_dt.desc().nulls_last(), Offer.created_dt.desc(), Offer.id)
    order = {
        "-published_dt": newest,
        "published_dt": (Offer.published_dt.asc().nulls_last(), Offer.created_dt, Offer.id),
        "upfront_amount": (Offer.upfront_amount.asc(), *newest),
        "-upfront_amount": (Offer.upfront_amount.desc(), *newest),
    }[sort]
    return statement.order_by(*order).options(
        selectinload(Offer.patent)
        .selectinload(Patent.owners)
        .selectinload(PatentOwner.organisation),
        selectinload(Offer.consents),
    )
