"""When an offer ends, and what status a read shows (reference/law.md A2, A4).

An open-licence declaration stays in force until it is withdrawn, its declared term ends, or the
patent stops being in force: at the end of its term (PL Art. 42) or earlier when annual fees go
unpaid (PL Art. 44(1)(1)), the patentee surrenders it (PL Art. 44(1)(2)) or it is declared
invalid (PL Art. 47). Reads apply that at once; ``flask --app wsgi offers expire`` persists it.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from registry.offers.models import Offer, OfferStatus
from registry.patents.models import LegalStatus, Patent

# The patent is no longer in force, so neither is any declaration on it (PL Art. 44, 47).
LAPSED_LEGAL_STATUSES = frozenset(
    {LegalStatus.LAPSED_FEES, LegalStatus.SURRENDERED, LegalStatus.INVALIDATED}
)


def add_years(start: date, years: int) -> date:
    """``start`` moved ``years`` calendar years on; 29 February becomes 28 February."""
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February into a common year
        return start.replace(year=start.year + years, day=28)


def add_months(start: date, months: int) -> date:
    """``start`` moved ``months`` calendar months on, clamped to the month's last day."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    for day in (start.day, 30, 29, 28):
        try:
            return date(year, month, min(start.day, day))
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")  # pragma: no cover


def term_end(terms: dict[str, Any], effective_date: date) -> date | None:
    """Last day of the licence term the terms declare for a take-up on ``effective_date``.

    ``term_years`` counts from each take-up (the term is inclusive: a 3-year licence taken on
    15 January 2026 ends on 14 January 2029); ``term_end_date`` is one fixed last day.
    """
    fixed = terms.get("term_end_date")
    if fixed is not None:
        return date.fromisoformat(fixed) if isinstance(fixed, str) else fixed
    years = terms.get("term_years")
    if years is None:
        return None
    return add_years(effective_date, int(years)) - timedelta(days=1)


def offer_end_date(offer: Offer, effective_date: date) -> date:
    """End date of a licence taken on ``offer`` on ``effective_date``.

    The earlier of the declared term's end and the patent's expiry: no licence can outlast the
    patent right it licenses (PL Art. 42; reference/law.md A3).
    """
    expiry = offer.patent.expiry_date
    end = term_end(offer.terms, effective_date)
    return expiry if end is None else min(end, expiry)


def offer_last_day(offer: Offer) -> date:
    """The last day the declaration itself is in force: its fixed term end or patent expiry."""
    expiry = offer.patent.expiry_date
    return expiry if offer.term_end_date is None else min(offer.term_end_date, expiry)


def ended_status(offer: Offer, patent: Patent, today: date) -> OfferStatus | None:
    """``lapsed`` or ``expired`` when a published offer has ended by itself, else None."""
    if patent.legal_status in LAPSED_LEGAL_STATUSES:
        return OfferStatus.LAPSED
    if today > offer_last_day(offer):
        return OfferStatus.EXPIRED
    return None


def effective_status(offer: Offer, today: date) -> OfferStatus:
    """The status a reader sees on ``today``: a published offer past its end reads as ended.

    Drafts, withdrawn and already-ended offers keep their stored status; only a published
    declaration ends by itself (reference/law.md A4).
    """
    if offer.status != OfferStatus.PUBLISHED:
        return offer.status
    return ended_status(offer, offer.patent, today) or OfferStatus.PUBLISHED
