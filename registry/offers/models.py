"""Open-licence declarations (offers), owners' consents and the gazette.

An offer's terms are one canonical JSON document hashed with SHA-256: consents bind to that
hash, take-ups snapshot it, and once published it never changes (reference/law.md A2: there is
no procedure to amend a published declaration; a change is a withdrawal and a new one).
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.core.db import Base, created_dt, uuid_pk
from registry.core.types import Money, str_enum
from registry.patents.models import Patent


class OfferStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"  # the declared term or the patent's term ended
    LAPSED = "lapsed"  # the patent lapsed (fees unpaid, surrendered, invalidated)


class RoyaltyKind(enum.StrEnum):
    FREE = "free"
    LUMP_SUM = "lump_sum"
    RUNNING = "running"
    ENTRY_PLUS_RUNNING = "entry_plus_running"


class ConsentPurpose(enum.StrEnum):
    PUBLISH = "publish"
    WITHDRAW = "withdraw"


class GazetteKind(enum.StrEnum):
    PUBLICATION = "publication"
    WITHDRAWAL = "withdrawal"


class Offer(Base):
    __tablename__ = "offers"
    __table_args__ = (
        # One published declaration per patent at a time.
        Index(
            "uq_offers_published_patent",
            "patent_id",
            unique=True,
            sqlite_where=text("status = 'published'"),
            postgresql_where=text("status = 'published'"),
        ),
        CheckConstraint("licence_count >= 0", name="licence_count_non_negative"),
        CheckConstraint("upfront_amount >= 0", name="upfront_non_negative"),
    )

    id: Mapped[uuid_pk]
    patent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patents.id"), index=True)
    status: Mapped[OfferStatus] = mapped_column(
        str_enum(OfferStatus, "offer_status"), index=True, default=OfferStatus.DRAFT
    )
    terms: Mapped[dict[str, Any]] = mapped_column(JSON, comment="canonical terms document")
    terms_sha256: Mapped[str] = mapped_column(String(64), comment="SHA-256 of canonical terms")
    # Copies of single terms, kept for search filters (the terms document is the record).
    royalty_kind: Mapped[RoyaltyKind] = mapped_column(str_enum(RoyaltyKind, "royalty_kind"))
    upfront_amount: Mapped[Decimal] = mapped_column(
        Money, comment="lump sum or entry fee due at take-up, before any discount"
    )
    has_free_period: Mapped[bool] = mapped_column(comment="use first, pay later")
    field_of_use: Mapped[str | None] = mapped_column(Text)
    term_end_date: Mapped[date | None] = mapped_column(
        comment="the declared fixed last day of every licence, if any (else term_years)"
    )
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, default=list, comment="eligibility warnings recorded at publication"
    )
    version: Mapped[int] = mapped_column(
        default=1,
        comment="bumped by every change and every take-up; orders take-ups "
        "against the withdrawal (reliability.md §2.3)",
    )
    licence_count: Mapped[int] = mapped_column(default=0)
    gazette_number: Mapped[str | None] = mapped_column(String(16), unique=True)
    published_dt: Mapped[datetime | None]
    attested_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id"), comment="declarant who attested the truth of the material"
    )
    withdrawal_gazette_number: Mapped[str | None] = mapped_column(String(16), unique=True)
    withdrawn_dt: Mapped[datetime | None]
    withdrawn_version: Mapped[int | None] = mapped_column(
        comment="the version the withdrawal wrote; every licence has offer_version below it"
    )
    withdrawal_reason: Mapped[str | None] = mapped_column(Text)
    ended_date: Mapped[date | None] = mapped_column(comment="when it expired or lapsed")
    created_by_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_dt: Mapped[created_dt]
    updated_dt: Mapped[datetime]

    patent: Mapped[Patent] = relationship()
    consents: Mapped[list[OfferConsent]] = relationship(
        back_populates="offer", order_by="OfferConsent.created_dt"
    )

    def __repr__(self) -> str:
        return f"<Offer {self.id} {self.status} v{self.version}>"


class OfferConsent(Base):
    """An owner organisation's consent, by one of its TTO staff, to these exact terms."""

    __tablename__ = "offer_consents"
    __table_args__ = (UniqueConstraint("offer_id", "organisation_id", "purpose", "terms_sha256"),)

    id: Mapped[uuid_pk]
    offer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("offers.id"), index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    purpose: Mapped[ConsentPurpose] = mapped_column(str_enum(ConsentPurpose, "consent_purpose"))
    terms_sha256: Mapped[str] = mapped_column(String(64), comment="the terms consented to")
    reason: Mapped[str | None] = mapped_column(Text, comment="withdrawal reason")
    created_dt: Mapped[created_dt]

    offer: Mapped[Offer] = relationship(back_populates="consents")

    def __repr__(self) -> str:
        return f"<OfferConsent {self.purpose} {self.organisation_id}>"


class GazetteEntry(Base):
    """A publication or withdrawal as announced in the registry's gazette."""

    __tablename__ = "gazette_entries"

    id: Mapped[uuid_pk]
    number: Mapped[str] = mapped_column(String(16), unique=True, comment="YYYY-NNNNNN")
    kind: Mapped[GazetteKind] = mapped_column(str_enum(GazetteKind, "gazette_kind"))
    offer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("offers.id"), index=True)
    announced_dt: Mapped[datetime] = mapped_column(index=True)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, comment="terms summary as announced")

    offer: Mapped[Offer] = relationship()

    def __repr__(self) -> str:
        return f"<GazetteEntry {self.number} {self.kind}>"
