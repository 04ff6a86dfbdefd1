"""Patents, their owners and income beneficiaries, inventors, and encumbrances.

Ownership, income rights and inventor shares are *versioned*, not overwritten: a change
supersedes the current rows and adds new ones, because settlement splits each payment by the
shares in force on the payment date (DESIGN.md §2) and legal records are never deleted.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.accounts.models import Organisation
from registry.core.db import Base, created_dt, uuid_pk
from registry.core.types import Percent, str_enum


class PatentType(enum.StrEnum):
    INVENTION = "invention"
    UTILITY_MODEL = "utility_model"
    DESIGN = "design"


class LegalStatus(enum.StrEnum):
    PENDING = "pending"  # filed, not yet granted
    VALID = "valid"
    LAPSED_FEES = "lapsed_fees"  # annual fees unpaid after the grace period (PL Art. 44)
    SURRENDERED = "surrendered"
    INVALIDATED = "invalidated"


class EvaluationConclusion(enum.StrEnum):
    NO_DEFECT = "no_defect"
    DEFECTS_FOUND = "defects_found"


class ConsentRule(enum.StrEnum):
    UNANIMOUS = "unanimous"
    ANY_OWNER = "any_owner"
    MAJORITY_TITLE_SHARE = "majority_title_share"


class OwnershipBasis(enum.StrEnum):
    SERVICE_INVENTION = "service_invention"
    COOPERATION_AGREEMENT = "cooperation_agreement"
    COMMISSIONED_DEVELOPMENT = "commissioned_development"
    ASSIGNMENT = "assignment"
    RESEARCHER_OWNERSHIP_PILOT = "researcher_ownership_pilot"


class ClauseSet(enum.StrEnum):
    """The three clause sets of the CNIPA guidelines on IP terms in cooperation agreements."""

    UNIVERSITY_OWNS = "university_owns"  # set 1
    ENTERPRISE_OWNS = "enterprise_owns"  # set 2
    JOINT = "joint"  # set 3


class BeneficiaryBasis(enum.StrEnum):
    INCOME_RIGHT_TRANSFER = "income_right_transfer"
    RESEARCHER_OWNERSHIP_PILOT = "researcher_ownership_pilot"
    THIRD_PARTY = "third_party"


class EncumbranceKind(enum.StrEnum):
    EXCLUSIVE_LICENCE = "exclusive_licence"
    SOLE_LICENCE = "sole_licence"
    PLEDGE = "pledge"
    DISPUTE_SUSPENSION = "dispute_suspension"
    PRESERVATION_ORDER = "preservation_order"


class Patent(Base):
    __tablename__ = "patents"
    __table_args__ = (
        CheckConstraint(
            "grant_date IS NULL OR grant_date >= filing_date", name="grant_after_filing"
        ),
        CheckConstraint("expiry_date > filing_date", name="expiry_after_filing"),
    )

    id: Mapped[uuid_pk]
    application_number: Mapped[str] = mapped_column(
        String(16), unique=True, comment="canonical YYYYTNNNNNNN.C"
    )
    patent_type: Mapped[PatentType] = mapped_column(str_enum(PatentType, "patent_type"))
    title: Mapped[str] = mapped_column(String(300), comment="title in Chinese")
    title_en: Mapped[str | None] = mapped_column(String(500))
    abstract: Mapped[str | None] = mapped_column(Text)
    ipc: Mapped[list[str]] = mapped_column(JSON, comment="IPC codes, canonical form")
    filing_date: Mapped[date]
    grant_date: Mapped[date | None] = mapped_column(comment="grant announcement date")
    expiry_date: Mapped[date] = mapped_column(index=True, comment="last day of the term")
    legal_status: Mapped[LegalStatus] = mapped_column(str_enum(LegalStatus, "legal_status"))
    annual_fees_paid_through: Mapped[date | None]
    evaluation_report_number: Mapped[str | None] = mapped_column(String(64))
    evaluation_report_date: Mapped[date | None]
    evaluation_report_conclusion: Mapped[EvaluationConclusion | None] = mapped_column(
        str_enum(EvaluationConclusion, "evaluation_conclusion")
    )
    # Who must consent to what (PL Art. 14: agreement first, else unanimity for these).
    consent_open_licence: Mapped[ConsentRule] = mapped_column(
        str_enum(ConsentRule, "consent_open_licence"), default=ConsentRule.UNANIMOUS
    )
    consent_ordinary_licence: Mapped[ConsentRule] = mapped_column(
        str_enum(ConsentRule, "consent_ordinary_licence"), default=ConsentRule.ANY_OWNER
    )
    consent_exclusive_licence: Mapped[ConsentRule] = mapped_column(
        str_enum(ConsentRule, "consent_exclusive_licence"), default=ConsentRule.UNANIMOUS
    )
    consent_assignment: Mapped[ConsentRule] = mapped_column(
        str_enum(ConsentRule, "consent_assignment"), default=ConsentRule.UNANIMOUS
    )
    version: Mapped[int] = mapped_column(default=1, comment="bumped on every change; the ETag")
    created_dt: Mapped[created_dt]
    updated_dt: Mapped[datetime]

    owners: Mapped[list[PatentOwner]] = relationship(
        primaryjoin="and_(Patent.id == PatentOwner.patent_id, PatentOwner.superseded_dt.is_(None))",
        order_by="PatentOwner.position",
        viewonly=True,
    )
    beneficiaries: Mapped[list[IncomeBeneficiary]] = relationship(
        primaryjoin=(
            "and_(Patent.id == IncomeBeneficiary.patent_id, "
            "IncomeBeneficiary.superseded_dt.is_(None))"
        ),
        order_by="IncomeBeneficiary.position",
        viewonly=True,
    )
    inventors: Mapped[list[Inventor]] = relationship(
        primaryjoin="and_(Patent.id == Inventor.patent_id, Inventor.superseded_dt.is_(None))",
        order_by="Inventor.position",
        viewonly=True,
    )
    encumbrances: Mapped[list[Encumbrance]] = relationship(
        back_populates="patent", order_by="Encumbrance.created_dt"
    )

    def __repr__(self) -> str:
        return f"<Patent {self.application_number} {self.patent_type}>"


class _Versioned:
    """Columns of a row that is superseded, never updated in place or deleted."""

    effective_from_dt: Mapped[datetime] = mapped_column(comment="in force from")
    superseded_dt: Mapped[datetime | None] = mapped_column(comment="replaced at; null if current")
    position: Mapped[int] = mapped_column(comment="order as entered")


class PatentOwner(_Versioned, Base):
    __tablename__ = "patent_owners"
    __table_args__ = (
        Index(
            "uq_patent_owners_current",
            "patent_id",
            "organisation_id",
            unique=True,
            sqlite_where=text("superseded_dt IS NULL"),
            postgresql_where=text("superseded_dt IS NULL"),
        ),
        CheckConstraint("title_share > 0 AND title_share <= 10000", name="title_share_range"),
        CheckConstraint("income_share >= 0 AND income_share <= 10000", name="income_share_range"),
    )

    id: Mapped[uuid_pk]
    patent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patents.id"), index=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    title_share: Mapped[Decimal] = mapped_column(Percent, comment="percent of title")
    income_share: Mapped[Decimal] = mapped_column(Percent, comment="percent of licence income")
    basis: Mapped[OwnershipBasis] = mapped_column(str_enum(OwnershipBasis, "ownership_basis"))
    clause_set: Mapped[ClauseSet | None] = mapped_column(str_enum(ClauseSet, "clause_set"))
    agreement_ref: Mapped[str | None] = mapped_column(String(200))

    # The current-rows collections on Patent are view-only, so this side stands alone.
    patent: Mapped[Patent] = relationship()
    organisation: Mapped[Organisation] = relationship()

    @property
    def organisation_name(self) -> str:
        return self.organisation.name

    def __repr__(self) -> str:
        return f"<PatentOwner {self.organisation_id} title={self.title_share}%>"


class IncomeBeneficiary(_Versioned, Base):
    """Someone who holds part of the licence income without holding title (收益权让渡, 赋权)."""

    __tablename__ = "income_beneficiaries"
    __table_args__ = (
        CheckConstraint("income_share > 0 AND income_share <= 10000", name="income_share_range"),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_range"),
    )

    id: Mapped[uuid_pk]
    patent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patents.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    basis: Mapped[BeneficiaryBasis] = mapped_column(str_enum(BeneficiaryBasis, "beneficiary_basis"))
    income_share: Mapped[Decimal] = mapped_column(Percent)
    valid_from: Mapped[date]
    valid_to: Mapped[date | None]
    agreement_ref: Mapped[str | None] = mapped_column(String(200))

    patent: Mapped[Patent] = relationship()

    def __repr__(self) -> str:
        return f"<IncomeBeneficiary {self.name} {self.income_share}%>"


class Inventor(_Versioned, Base):
    __tablename__ = "inventors"
    __table_args__ = (CheckConstraint("share > 0 AND share <= 10000", name="share_range"),)

    id: Mapped[uuid_pk]
    patent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patents.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    share: Mapped[Decimal] = mapped_column(Percent, comment="percent contribution")

    patent: Mapped[Patent] = relationship()

    def __repr__(self) -> str:
        return f"<Inventor {self.name} {self.share}%>"


class Encumbrance(Base):
    """A right or order weighing on the patent; released, never deleted."""

    __tablename__ = "encumbrances"
    __table_args__ = (
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="date_range"),
        CheckConstraint("kind = 'pledge' OR pledgee_consent IS NULL", name="consent_only_pledge"),
    )

    id: Mapped[uuid_pk]
    patent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patents.id"), index=True)
    kind: Mapped[EncumbranceKind] = mapped_column(str_enum(EncumbranceKind, "encumbrance_kind"))
    start_date: Mapped[date]
    end_date: Mapped[date | None]
    pledgee_consent: Mapped[bool | None] = mapped_column(
        Boolean, comment="pledges: the pledgee consents to licensing (CC Art. 444)"
    )
    holder: Mapped[str | None] = mapped_column(String(200), comment="licensee, pledgee or court")
    reference: Mapped[str] = mapped_column(String(200), comment="registration or case number")
    created_dt: Mapped[created_dt]
    released_dt: Mapped[datetime | None]
    release_reason: Mapped[str | None] = mapped_column(String(300))

    patent: Mapped[Patent] = relationship(back_populates="encumbrances")

    def in_force_on(self, day: date) -> bool:
        if self.released_dt is not None or day < self.start_date:
            return False
        return self.end_date is None or day <= self.end_date

    def __repr__(self) -> str:
        return f"<Encumbrance {self.kind} {self.reference}>"
