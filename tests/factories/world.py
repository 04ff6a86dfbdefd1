"""A small registry with one user of every role, for authorisation and audit tests.

Organisations: the clearing house (admin), university A (TTO A), university B (TTO B),
an SME (licensee) and an audit body (auditor). Each of A, B and the SME owns one patent with
one pledge recorded on it. Every user has a live bearer token.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from unittest import mock

from registry.accounts import services as account_services
from registry.accounts.models import Organisation, User
from registry.patents import encumbrances
from registry.patents.models import Encumbrance, EncumbranceKind, Patent
from tests.factories import PASSWORD, Factory, password_hash


@dataclass
class Member:
    user: User
    token: str

    @property
    def organisation_id(self) -> uuid.UUID:
        return self.user.organisation_id


@dataclass
class World:
    admin: Member
    tto: Member  # TTO staff of university A
    other_tto: Member  # TTO staff of university B
    licensee: Member  # an SME's user
    auditor: Member  # an audit body's auditor
    clearing_house: Organisation
    university: Organisation  # A
    other_university: Organisation  # B
    enterprise: Organisation
    audit_body: Organisation
    patents: dict[uuid.UUID, Patent]  # by owning organisation
    pledges: dict[uuid.UUID, Encumbrance]  # by patent


def _cached_hash(password: str) -> str:
    assert password == PASSWORD
    return password_hash()


def build_world(factory: Factory) -> World:
    # bootstrap_admin hashes the password with argon2 (~0.2 s); reuse the run's one hash.
    with mock.patch.object(account_services, "hash_password", _cached_hash):
        admin_user = factory.admin()
    session = factory.session
    clearing_house = session.get_one(Organisation, admin_user.organisation_id)
    university = factory.organisation("university", name="甲大学")
    other_university = factory.organisation("university", name="乙大学")
    enterprise = factory.organisation("enterprise", name="丙科技有限公司")
    audit_body = factory.organisation("audit_body", name="丁审计事务所")

    def member(organisation: Organisation | None, role: str) -> Member:
        user = admin_user if organisation is None else factory.user(organisation, role)
        return Member(user, factory.token(user))

    admin = member(None, "admin")
    tto = member(university, "tto")
    other_tto = member(other_university, "tto")
    licensee = member(enterprise, "licensee")
    auditor = member(audit_body, "auditor")  # audits every organisation (Factory.user)
    patents = {
        university.id: factory.patent(tto.user),
        other_university.id: factory.patent(other_tto.user),
        enterprise.id: factory.patent(admin.user, owner_organisation_id=str(enterprise.id)),
    }
    pledges = {}
    for patent in patents.values():
        pledges[patent.id] = encumbrances.add_encumbrance(
            session,
            actor=factory.actor(admin.user),
            patent_id=patent.id,
            data={
                "kind": EncumbranceKind.PLEDGE,
                "start_date": date(2024, 1, 1),
                "pledgee_consent": True,
                "reference": f"质押登记-{patent.application_number}",
            },
        )
    session.flush()
    return World(
        admin=admin,
        tto=tto,
        other_tto=other_tto,
        licensee=licensee,
        auditor=auditor,
        clearing_house=clearing_house,
        university=university,
        other_university=other_university,
        enterprise=enterprise,
        audit_body=audit_body,
        patents=patents,
        pledges=pledges,
    )
