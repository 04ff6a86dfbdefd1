"""Licences taken on an open-licence offer: one written notice, a snapshot of the terms.

A licence keeps the terms it was taken on (hashed), never recomputed from a later offer, and
the offer version it was taken against, which orders it before any withdrawal
(reliability.md §2.3–2.4). Licences are never deleted.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.accounts.models import Organisation
from registry.core.db import Base, created_dt, uuid_pk
from registry.core.types import str_enum
from registry.offers.models import Offer


class LicenceStatus(enum.StrEnum):
    PENDING_PAYMENT = "pending_payment"  # an upfront amount is due (PL Art. 51(1))
    ACTIVE = "active"
    SUSPENDED = "suspended"  # for non-payment after a grace period (CC Art. 873)
    EXPIRED = "expired"
    TERMINATED = "terminated"


LIVE_STATUSES = (LicenceStatus.PENDING_PAYMENT, LicenceStatus.ACTIVE, LicenceStatus.SUSPENDED)


class RecordationFiler(enum.StrEnum):
    LICENSOR = "licensor"
    LICENSEE = "licensee"


class Licence(Base):
    __tablename__ = "licences"
    __table_args__ = (
        # One live licence per licensee per offer.
        Index(
            "uq_licences_live_per_licensee",
            "offer_id",
            "licensee_organisation_id",
            unique=True,
            sqlite_where=text("status IN ('pending_payment', 'active', 'suspended')"),
            postgresql_where=text("status IN ('pending_payment', 'active', 'suspended')"),
        ),
        CheckConstraint("end_date >= effective_date", name="end_after_effective"),
    )

    id: Mapped[uuid_pk]
    reference: Mapped[str] = mapped_column(String(20), unique=True, comment="OL-YYYY-NNNNNN")
    offer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("offers.id"), index=True)
    offer_version: Mapped[int] = mapped_column(comment="offer version written by this take-up")
    patent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patents.id"), index=True)
    licensee_organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id"), index=True
    )
    licensee_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    terms: Mapped[dict[str, Any]] = mapped_column(JSON, comment="snapshot of the offer terms")
    terms_sha256: Mapped[str] = mapped_column(String(64))
    notice: Mapped[dict[str, Any]] = mapped_column(
        JSON, comment="the written notice verbatim, with time and client address"
    )
    notice_dt: Mapped[datetime] = mapped_column(comment="when the notice was received")
    status: Mapped[LicenceStatus] = mapped_column(
        str_enum(LicenceStatus, "licence_status"), index=True
    )
    effective_date: Mapped[date]
    end_date: Mapped[date] = mapped_column(comment="earlier of term end and patent expiry")
    recordation_due_date: Mapped[date] = mapped_column(comment="effective + 3 months (IR 87)")
    recordation_number: Mapped[str | None] = mapped_column(String(64))
    recordation_date: Mapped[date | None]
    recordation_filed_by: Mapped[RecordationFiler | None] = mapped_column(
        str_enum(RecordationFiler, "recordation_filer")
    )
    terminated_dt: Mapped[datetime | None]
    termination_reason: Mapped[str | None] = mapped_column(Text)
    created_dt: Mapped[created_dt]
    updated_dt: Mapped[datetime]

    offer: Mapped[Offer] = relationship()
    licensee: Mapped[Organisation] = relationship()

    def __repr__(self) -> str:
        return f"<Licence {self.reference} {self.status}>"
