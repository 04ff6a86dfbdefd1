"""The registry's gazette: publications and withdrawals, as JSON and as an Atom 1.0 feed.

The Atom feed also carries the audit log's signed checkpoints (issue 6 §1), so that anyone who
follows the gazette keeps them without asking: a kept checkpoint is what an auditor later holds
the log to (a consistency proof from it to any newer one).

IR Art. 107(13) has the patent gazette announce open-licence matters: the patent, patentee,
royalty method and standard, licence term and other matters; and their withdrawal (PL Art. 50).
Numbers count up per year without gaps (``2026-000123``, registry.core.sequences).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from feedgen.feed import FeedGenerator
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from registry.audit.models import AuditCheckpoint
from registry.core import clock
from registry.core.sequences import next_number
from registry.offers.models import GazetteEntry, GazetteKind, Offer
from registry.patents.models import PatentOwner

FEED_TITLE = "开放许可公告 · Open licence gazette"
KIND_ZH = {GazetteKind.PUBLICATION: "开放许可声明", GazetteKind.WITHDRAWAL: "开放许可声明撤回"}
KIND_EN = {GazetteKind.PUBLICATION: "open licence declared", GazetteKind.WITHDRAWAL: "withdrawn"}


def gazette_number(session: Session) -> str:
    """The next gazette number of this (Beijing) year, e.g. ``2026-000123``."""
    year = clock.today().year
    return f"{year}-{next_number(session, 'gazette', year):06d}"


def summary(offer: Offer, owners: Sequence[PatentOwner], **extra: Any) -> dict[str, Any]:
    """What the gazette announces (IR Art. 107(13)): patent, patentees, the terms."""
    patent = offer.patent
    terms = offer.terms
    announced = {
        "application_number": patent.application_number,
        "patent_type": patent.patent_type.value,
        "title": patent.title,
        "title_en": patent.title_en,
        "patentees": [o.organisation.name for o in owners],
        "royalty": terms["royalty"],
        "licensed_acts": terms["licensed_acts"],
        "field_of_use": terms.get("field_of_use"),
        "territory": terms["territory"],
        "terms_sha256": offer.terms_sha256,
    }
    for name in ("term_years", "term_end_date"):
        if name in terms:
            announced[name] = terms[name]
    return announced | extra


def announce(
    session: Session,
    *,
    offer: Offer,
    kind: GazetteKind,
    number: str,
    stamp: datetime,
    owners: Sequence[PatentOwner],
    **extra: Any,
) -> GazetteEntry:
    entry = GazetteEntry(
        number=number,
        kind=kind,
        offer_id=offer.id,
        announced_dt=stamp,
        summary=summary(offer, owners, **extra),
    )
    session.add(entry)
    return entry


def entries() -> Select[GazetteEntry]:
    """Newest first; the number breaks ties within one instant."""
    return select(GazetteEntry).order_by(
        GazetteEntry.announced_dt.desc(), GazetteEntry.number.desc()
    )


def _royalty_line(royalty: dict[str, Any]) -> str:
    parts = [royalty["kind"]]
    for name in ("amount", "entry_fee", "rate", "unit_amount", "free_months"):
        if name in royalty:
            parts.append(f"{name} {royalty[name]}")
    return ", ".join(parts)


def atom_feed(
    items: Sequence[GazetteEntry],
    *,
    feed_url: str,
    offer_url: str,
    checkpoints: Sequence[AuditCheckpoint] = (),
    checkpoint_url: str = "",
) -> bytes:
    """An Atom 1.0 document (RFC 4287) of ``items`` and ``checkpoints``, newest on top;
    ``offer_url`` has an ``{id}`` slot."""
    feed = FeedGenerator()
    feed.id(feed_url)
    feed.title(FEED_TITLE)
    feed.author({"name": "Open Licence Registry"})
    feed.link(href=feed_url, rel="self", type="application/atom+xml")
    feed.language("zh-CN")
    dated: list[tuple[datetime, GazetteEntry | AuditCheckpoint]] = [
        *((item.announced_dt, item) for item in items),
        *((checkpoint.created_dt, checkpoint) for checkpoint in checkpoints),
    ]
    dated.sort(key=lambda pair: pair[0])
    feed.updated(dated[-1][0] if dated else clock.now())
    # feedgen prepends, so add the oldest first to keep the newest on top.
    for _, found in dated:
        if isinstance(found, AuditCheckpoint):
            _checkpoint_entry(feed, found, checkpoint_url)
        else:
            _gazette_entry(feed, found, offer_url)
    document: bytes = feed.atom_str(pretty=True)
    return document


def _gazette_entry(feed: FeedGenerator, item: GazetteEntry, offer_url: str) -> None:
    announced = item.summary
    entry = feed.add_entry()
    entry.id(f"urn:uuid:{item.id}")
    entry.title(f"{item.number} {KIND_ZH[item.kind]} · {KIND_EN[item.kind]}: {announced['title']}")
    entry.updated(item.announced_dt)
    entry.published(item.announced_dt)
    entry.link(href=offer_url.format(id=item.offer_id), rel="alternate")
    lines = [
        f"{announced['application_number']} ({announced['patent_type']})",
        "专利权人 / patentees: " + "、".join(announced["patentees"]),
        "许可使用费 / royalty: " + _royalty_line(announced["royalty"]),
    ]
    if "term_years" in announced:
        lines.append(f"许可期限 / term: {announced['term_years']} years from take-up")
    elif "term_end_date" in announced:
        lines.append(f"许可期限 / term: until {announced['term_end_date']}")
    if announced.get("reason"):
        lines.append(f"撤回理由 / reason: {announced['reason']}")
    entry.summary("\n".join(lines))


def _checkpoint_entry(feed: FeedGenerator, checkpoint: AuditCheckpoint, url: str) -> None:
    """A signed checkpoint as an entry whose content is the note itself, byte for byte."""
    entry = feed.add_entry()
    entry.id(f"urn:uuid:{checkpoint.id}")
    entry.title(
        f"审计日志检查点 · Audit log checkpoint: {checkpoint.tree_size} events, "
        f"root {checkpoint.root_hash[:16]}…"
    )
    entry.updated(checkpoint.created_dt)
    entry.published(checkpoint.created_dt)
    entry.category(term="audit-checkpoint")
    entry.link(href=url, rel="related", type="text/plain")
    entry.content(checkpoint.note, type="text")
