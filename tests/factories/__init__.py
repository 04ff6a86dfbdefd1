"""Factories that build valid registry state quickly for tests.

Users get a password hash computed once per run (argon2 is deliberately slow); everything
else goes through the services, so factory-made state obeys the same rules as real state.
"""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from registry.accounts.models import (
    EnterpriseSize,
    Organisation,
    OrganisationKind,
    User,
)
from registry.accounts.passwords import hash_password
from registry.accounts.services import actor_of, bootstrap_admin, create_token, now
from registry.core.actor import Actor, Role
from registry.core.identifiers import (
    USCC_ALPHABET,
    application_check_character,
    uscc_check_character,
)
from registry.patents import services as patent_services
from registry.patents.models import Patent

PASSWORD = "correct horse battery staple"
_serial = itertools.count(1)
_random = random.Random(20261126)  # noqa: S311 - test data, not secrets


@cache
def password_hash() -> str:
    return hash_password(PASSWORD)


def make_uscc() -> str:
    body = (
        "91"
        + "".join(_random.choice(USCC_ALPHABET[:10]) for _ in range(6))
        + "".join(_random.choice(USCC_ALPHABET) for _ in range(9))
    )
    return body + uscc_check_character(body)


def make_application_number(year: int = 2021, type_digit: str = "1") -> str:
    digits = f"{year}{type_digit}{next(_serial) + _random.randrange(10**6):07d}"
    return f"{digits}.{application_check_character(digits)}"


class Factory:
    def __init__(self, session: Session, app: Flask) -> None:
        self.session = session
        self.app = app
        self._admin: User | None = None

    # accounts
    def admin(self) -> User:
        if self._admin is None:
            self._admin = bootstrap_admin(
                self.session,
                email=f"admin{next(_serial)}@registry.test",
                name="Admin",
                password=PASSWORD,
            )
        return self._admin

    def organisation(
        self, kind: OrganisationKind | str = "university", **kwargs: Any
    ) -> Organisation:
        kind = OrganisationKind(kind)
        enterprise = kind is OrganisationKind.ENTERPRISE
        organisation = Organisation(
            name=kwargs.pop("name", f"测试{kind.value}{next(_serial)}"),
            name_en=kwargs.pop("name_en", None),
            kind=kind,
            uscc=kwargs.pop("uscc", make_uscc()),
            size=kwargs.pop("size", EnterpriseSize.SMALL if enterprise else None),
            is_sme=kwargs.pop("is_sme", enterprise),
            created_dt=now(),
            **kwargs,
        )
        self.session.add(organisation)
        self.session.flush()
        return organisation

    def user(self, organisation: Organisation, role: Role | str, **kwargs: Any) -> User:
        """A user; an auditor audits every organisation unless ``audits_all_organisations``
        says otherwise (most tests use an auditor as the regulator who reads everything;
        tests/api/test_auditor_scope.py makes narrower ones)."""
        if Role(role) is Role.AUDITOR:
            kwargs.setdefault("audits_all_organisations", True)
        user = User(
            organisation_id=organisation.id,
            email=kwargs.pop("email", f"user{next(_serial)}@example.test"),
            name=kwargs.pop("name", "测试用户"),
            role=Role(role),
            password_hash=password_hash(),
            is_active=True,
            created_dt=now(),
            **kwargs,
        )
        self.session.add(user)
        self.session.flush()
        return user

    def token(self, user: User, ttl: timedelta = timedelta(days=1)) -> str:
        token, _ = create_token(self.session, user=user, ttl=ttl)
        self.session.flush()
        return token

    def actor(self, user: User) -> Actor:
        return actor_of(user)

    # patents
    def patent_data(self, **overrides: Any) -> dict[str, Any]:
        patent_type = overrides.pop("patent_type", "invention")
        digit = {"invention": "1", "utility_model": "2", "design": "3"}[patent_type]
        filing = overrides.pop("filing_date", date(2021, 3, 15))
        data = {
            "application_number": make_application_number(filing.year, digit),
            "patent_type": patent_type,
            "title": "一种锂离子电池负极材料及其制备方法",
            "filing_date": filing.isoformat(),
            "grant_date": (filing + timedelta(days=700)).isoformat(),
            "ipc": ["H01M 4/587"],
        }
        data.update(overrides)
        return data

    def patent(self, owner_user: User, **overrides: Any) -> Patent:
        from registry.patents.schemas import PatentCreateSchema

        data = PatentCreateSchema().load(self.patent_data(**overrides))
        return patent_services.create_patent(self.session, actor=actor_of(owner_user), data=data)

    def share(self, value: str) -> Decimal:
        return Decimal(value)

    def new_id(self) -> uuid.UUID:
        return uuid.uuid4()
