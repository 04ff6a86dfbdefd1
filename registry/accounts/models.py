"""Organisations, their users, API tokens and each organisation's inventor-reward policy."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.core.actor import Role
from registry.core.db import Base, created_dt, uuid_pk
from registry.core.types import Percent, str_enum


class OrganisationKind(enum.StrEnum):
    UNIVERSITY = "university"
    INSTITUTE = "institute"
    ENTERPRISE = "enterprise"
    CLEARING_HOUSE = "clearing_house"
    AUDIT_BODY = "audit_body"


class EnterpriseSize(enum.StrEnum):
    LARGE = "large"
    MEDIUM = "medium"
    SMALL = "small"
    MICRO = "micro"


class Organisation(Base):
    __tablename__ = "organisations"
    __table_args__ = (
        # Only the clearing house may exist before its USCC is known (bootstrap).
        CheckConstraint("uscc IS NOT NULL OR kind = 'clearing_house'", name="uscc_required"),
        CheckConstraint(
            "(kind = 'enterprise') = (size IS NOT NULL)", name="size_only_for_enterprises"
        ),
        CheckConstraint("kind = 'enterprise' OR NOT is_sme", name="sme_only_for_enterprises"),
    )

    id: Mapped[uuid_pk]
    name: Mapped[str] = mapped_column(String(200), comment="legal name in Chinese")
    name_en: Mapped[str | None] = mapped_column(String(300), comment="English name, optional")
    kind: Mapped[OrganisationKind] = mapped_column(str_enum(OrganisationKind, "kind"))
    uscc: Mapped[str | None] = mapped_column(
        String(18), unique=True, comment="unified social credit code, GB 32100"
    )
    size: Mapped[EnterpriseSize | None] = mapped_column(
        str_enum(EnterpriseSize, "size"), comment="enterprises only"
    )
    is_sme: Mapped[bool] = mapped_column(Boolean, default=False, comment="SME flag (enterprises)")
    address: Mapped[str | None] = mapped_column(String(300), comment="registered address")
    created_dt: Mapped[created_dt]

    users: Mapped[list[User]] = relationship(back_populates="organisation")
    reward_policy: Mapped[RewardPolicy | None] = relationship(back_populates="organisation")

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.kind} {self.name}>"


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid_pk]
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, comment="lower-cased")
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"))
    password_hash: Mapped[str] = mapped_column(String(200), comment="argon2id")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Sign-in throttling (registry/accounts/lockout.py, ASVS 5.0 6.3.1).
    failed_logins: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", comment="failed sign-ins since the last success"
    )
    locked_until_dt: Mapped[datetime | None] = mapped_column(
        comment="sign-in refused until then (back-off after repeated failures)"
    )
    audits_all_organisations: Mapped[bool] = mapped_column(
        Boolean,
        default=False,
        server_default=false(),
        comment="auditors: every organisation is in scope (admin grant)",
    )
    created_dt: Mapped[created_dt]

    organisation: Mapped[Organisation] = relationship(back_populates="users")
    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")
    audit_grants: Mapped[list[AuditorGrant]] = relationship(
        foreign_keys="AuditorGrant.user_id", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored, so a database leak yields no usable token."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid_pk]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, comment="sha256 hex")
    prefix: Mapped[str] = mapped_column(String(12), comment="first characters, for display")
    created_dt: Mapped[created_dt]
    expires_dt: Mapped[datetime]
    revoked_dt: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")

    def __repr__(self) -> str:
        return f"<ApiToken {self.prefix}… user={self.user_id}>"


class AuditorGrant(Base):
    """An organisation whose records an auditor may read, granted by an admin.

    An auditor always reads its own organisation's records (a university's audit office); an
    audit body or a funder reads only what it was granted. Grants and their removal are audit
    events (``user.audit_scope_changed``).
    """

    __tablename__ = "auditor_grants"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id"), primary_key=True, index=True
    )
    granted_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    granted_dt: Mapped[datetime]

    def __repr__(self) -> str:
        return f"<AuditorGrant user={self.user_id} organisation={self.organisation_id}>"


class RewardPolicy(Base):
    """How an organisation shares net licence income with inventors (STL Art. 45).

    Without a published policy of its own, at least 50 % of net income goes to the inventors;
    a lower ``inventor_share`` is accepted only with ``policy_reference`` to that policy.
    """

    __tablename__ = "reward_policies"
    __table_args__ = (
        CheckConstraint(
            "inventor_share >= 0 AND inventor_share <= 10000", name="inventor_share_range"
        ),
        CheckConstraint(
            "inventor_share >= 5000 OR policy_reference IS NOT NULL",
            name="low_share_needs_policy",
        ),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id"), primary_key=True
    )
    inventor_share: Mapped[Decimal] = mapped_column(
        Percent, comment="percent of net licence income for inventors"
    )
    policy_reference: Mapped[str | None] = mapped_column(
        String(300), comment="the organisation's own published reward policy"
    )
    deductions: Mapped[list[str]] = mapped_column(
        JSON, comment="costs deducted from gross income before the split"
    )
    remainder_split: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON, comment="split of the institution's part: [{recipient, share}]"
    )
    updated_dt: Mapped[datetime]

    organisation: Mapped[Organisation] = relationship(back_populates="reward_policy")

    def __repr__(self) -> str:
        return f"<RewardPolicy {self.organisation_id} inventors={self.inventor_share}%>"
