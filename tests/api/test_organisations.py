"""Organisations, their users and reward policies through the HTTP API.

Admins register organisations; TTO staff add colleagues to their own organisation with roles no
higher than their own; other organisations are invisible (404, no existence oracle). Every
refused write leaves no row and no audit event behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation, OrganisationKind, RewardPolicy, User
from registry.audit.models import AuditEvent
from registry.core.actor import Role
from registry.core.identifiers import uscc_check_character
from tests.conftest import Api
from tests.factories import PASSWORD, Factory, make_uscc

NEW_PASSWORD = "a long enough passphrase"


def counts(session: Session) -> tuple[int, int, int, int]:
    """Rows that a refused write must not add: organisations, users, policies, audit events."""
    return tuple(  # type: ignore[return-value]
        session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Organisation, User, RewardPolicy, AuditEvent)
    )


@contextmanager
def unchanged(session: Session) -> Iterator[None]:
    before = counts(session)
    yield
    session.expire_all()
    assert counts(session) == before, "a refused request changed the database"


def fields_of(response: Any) -> set[str]:
    return {error["field"] for error in response.json["errors"]}


def assert_error(response: Any, status: int, code: str, fields: set[str] | None = None) -> None:
    assert response.status_code == status, response.json
    assert response.json["code"] == code
    assert response.json["status"] == status
    if fields is not None:
        assert fields_of(response) == fields


class World:
    """Two universities and an enterprise, each with staff, plus the admin and an auditor."""

    def __init__(self, factory: Factory, api: Api) -> None:
        self.factory = factory
        # Built like factory.admin() but with the cached password hash: argon2 is slow on purpose.
        self.house = factory.organisation("clearing_house", uscc=None)
        self.admin = factory.user(self.house, Role.ADMIN)
        self.uni = factory.organisation("university")
        self.other_uni = factory.organisation("university")
        self.enterprise = factory.organisation("enterprise")
        self.audit_body = factory.organisation("audit_body")
        self.tto = factory.user(self.uni, Role.TTO)
        self.other_tto = factory.user(self.other_uni, Role.TTO)
        self.enterprise_tto = factory.user(self.enterprise, Role.TTO)
        self.licensee = factory.user(self.enterprise, Role.LICENSEE)
        self.auditor = factory.user(self.audit_body, Role.AUDITOR)
        self.api = api

    def as_(self, user: User) -> Api:
        return self.api.as_(self.factory.token(user))


@pytest.fixture
def world(factory: Factory, api: Api) -> World:
    return World(factory, api)


def organisation_body(kind: str = "university", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "测试大学", "kind": kind, "uscc": make_uscc()}
    if kind == "enterprise":
        body["size"] = "small"
    body.update(overrides)
    return body


# Creating organisations -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "university", "name": "清华大学", "name_en": "Tsinghua University"},
        {"kind": "institute", "name": "中国科学院物理研究所"},
        {"kind": "enterprise", "name": "深圳某某科技有限公司", "size": "small", "is_sme": True},
        {"kind": "enterprise", "name": "某某集团有限公司", "size": "large", "is_sme": False},
        {"kind": "enterprise", "name": "某某微型企业", "size": "micro"},
        {"kind": "audit_body", "name": "某某会计师事务所"},
    ],
    ids=["university", "institute", "sme", "large", "micro", "audit-body"],
)
def test_admin_creates_organisations(world: World, session: Session, body: dict[str, Any]) -> None:
    uscc = make_uscc()
    events = counts(session)[3]

    response = world.as_(world.admin).post("/organisations", json={**body, "uscc": uscc})

    assert response.status_code == 201, response.json
    created = response.json
    assert created["kind"] == body["kind"]
    assert created["name"] == body["name"]
    assert created["uscc"] == uscc
    assert created["name_en"] == body.get("name_en")
    assert created["size"] == body.get("size")
    assert created["is_sme"] is body.get("is_sme", False)
    row = session.get(Organisation, uuid.UUID(created["id"]))
    assert row is not None
    assert row.uscc == uscc
    assert counts(session)[3] == events + 2  # the admin's token, then the organisation
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert event is not None
    assert (event.action, event.subject_id) == ("organisation.created", created["id"])
    assert event.actor_id == world.admin.id


def test_uscc_is_stored_in_canonical_form(world: World) -> None:
    uscc = make_uscc()
    spaced = f" {uscc[:6].lower()} {uscc[6:12]} {uscc[12:]} "
    response = world.as_(world.admin).post("/organisations", json=organisation_body(uscc=spaced))
    assert response.status_code == 201, response.json
    assert response.json["uscc"] == uscc


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (organisation_body("enterprise", size=None), {"size"}),
        ({"name": "某某公司", "kind": "enterprise", "uscc": make_uscc()}, {"size"}),
        (organisation_body("university", size="small"), {"size"}),
        (organisation_body("university", is_sme=True), {"is_sme"}),
        (organisation_body("audit_body", size="micro", is_sme=True), {"size"}),
        (organisation_body("enterprise", size="large", is_sme=True), {"is_sme"}),
        (organisation_body(size="huge", kind="enterprise"), {"size"}),
        (organisation_body(kind="government"), {"kind"}),
        (organisation_body(name="清"), {"name"}),
        (organisation_body(name="学" * 201), {"name"}),
        (organisation_body(is_sme="maybe"), {"is_sme"}),
        (organisation_body(id="7b0c8f2e-8f53-4b8a-9f5e-3f0b7cbdf9a1"), {"id"}),
        (organisation_body(created_dt="2020-01-01T00:00:00Z"), {"created_dt"}),
        (organisation_body(owner="me"), {"owner"}),
        ({"kind": "university"}, {"name", "uscc"}),
        ({}, {"name", "kind", "uscc"}),
    ],
    ids=[
        "enterprise-null-size",
        "enterprise-no-size",
        "university-size",
        "university-sme",
        "audit-body-size",
        "large-sme",
        "unknown-size",
        "unknown-kind",
        "short-name",
        "long-name",
        "bad-boolean",
        "server-owned-id",
        "server-owned-created",
        "unknown-field",
        "missing-two",
        "empty",
    ],
)
def test_invalid_organisation_is_422_naming_the_field(
    world: World, session: Session, body: dict[str, Any], fields: set[str]
) -> None:
    admin = world.as_(world.admin)
    with unchanged(session):
        response = admin.post("/organisations", json=body)
    assert_error(response, 422, "validation_error", fields)


@pytest.mark.parametrize(
    "uscc",
    ["91350100M000100Y4", "91350100M000100Y43X", "91350100I000100Y43", "", 913501000001004],
    ids=["short", "long", "letter-I", "empty", "number"],
)
def test_malformed_uscc_is_422(world: World, session: Session, uscc: object) -> None:
    admin = world.as_(world.admin)
    with unchanged(session):
        response = admin.post("/organisations", json=organisation_body(uscc=uscc))
    assert_error(response, 422, "validation_error", {"uscc"})


def test_uscc_with_wrong_check_character_is_422(world: World, session: Session) -> None:
    uscc = make_uscc()
    right = uscc_check_character(uscc[:17])
    wrong = next(ch for ch in "0123456789ABC" if ch != right)
    admin = world.as_(world.admin)
    with unchanged(session):
        response = admin.post("/organisations", json=organisation_body(uscc=uscc[:17] + wrong))
    assert_error(response, 422, "validation_error", {"uscc"})
    assert "check character" in response.json["errors"][0]["messages"][0]


def test_duplicate_uscc_is_409(world: World, session: Session) -> None:
    admin = world.as_(world.admin)
    with unchanged(session):
        response = admin.post("/organisations", json=organisation_body(uscc=world.uni.uscc))
    assert_error(response, 409, "duplicate", {"uscc"})


def test_second_clearing_house_is_409(world: World, session: Session) -> None:
    admin = world.as_(world.admin)
    with unchanged(session):
        response = admin.post("/organisations", json=organisation_body("clearing_house"))
    assert_error(response, 409, "rule_violation")


@pytest.mark.parametrize("who", ["tto", "licensee", "auditor", "enterprise_tto"])
def test_only_admins_create_organisations(world: World, session: Session, who: str) -> None:
    caller = world.as_(getattr(world, who))
    with unchanged(session):
        response = caller.post("/organisations", json=organisation_body())
    assert_error(response, 403, "forbidden")


def test_anonymous_create_is_401(world: World, session: Session) -> None:
    with unchanged(session):
        response = world.api.post("/organisations", json=organisation_body())
    assert_error(response, 401, "unauthenticated")


# Reading organisations ------------------------------------------------------------------------


def all_ids(api: Api, path: str = "/organisations") -> list[str]:
    response = api.get(f"{path}?page_size=100")
    assert response.status_code == 200, response.json
    return [item["id"] for item in response.json]


@pytest.mark.parametrize("who", ["admin", "auditor"])
def test_admins_and_auditors_list_every_organisation(world: World, who: str) -> None:
    ids = all_ids(world.as_(getattr(world, who)))
    expected = {world.house, world.uni, world.other_uni, world.enterprise, world.audit_body}
    assert {str(org.id) for org in expected} <= set(ids)
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("who", "own"), [("tto", "uni"), ("licensee", "enterprise"), ("enterprise_tto", "enterprise")]
)
def test_others_list_only_their_own_organisation(world: World, who: str, own: str) -> None:
    api = world.as_(getattr(world, who))
    response = api.get("/organisations")
    assert response.status_code == 200
    assert [item["id"] for item in response.json] == [str(getattr(world, own).id)]
    assert '"total": 1' in response.headers["X-Pagination"]


def test_organisation_list_is_paginated(world: World) -> None:
    admin = world.as_(world.admin)
    response = admin.get("/organisations?page=1&page_size=2")
    assert response.status_code == 200
    assert len(response.json) == 2
    assert "total_pages" in response.headers["X-Pagination"]
    second = admin.get("/organisations?page=2&page_size=2")
    assert {o["id"] for o in second.json}.isdisjoint({o["id"] for o in response.json})


@pytest.mark.parametrize(
    "query", ["page=0", "page=-1", "page=x", "page_size=0", "page_size=1000", "page_size=1.5"]
)
def test_bad_paging_is_422_naming_it(world: World, query: str) -> None:
    response = world.as_(world.admin).get(f"/organisations?{query}")
    assert_error(response, 422, "validation_error", {query.split("=")[0]})


def test_page_past_the_end_is_empty(world: World) -> None:
    api = world.as_(world.tto)
    for page in ("2", "99999999999999999999999"):
        response = api.get(f"/organisations?page={page}")
        assert response.status_code == 200, response.json
        assert response.json == []


def test_get_by_id_respects_scope(world: World) -> None:
    target = f"/organisations/{world.other_uni.id}"
    for user in (world.admin, world.auditor):
        response = world.as_(user).get(target)
        assert response.status_code == 200, response.json
        assert response.json["id"] == str(world.other_uni.id)
    # Another organisation looks exactly like one that does not exist.
    for user in (world.tto, world.licensee):
        assert_error(world.as_(user).get(target), 404, "not_found")
        missing = world.as_(user).get(f"/organisations/{world.factory.new_id()}")
        assert_error(missing, 404, "not_found")
        assert missing.json["message"] == world.as_(user).get(target).json["message"]
    own = world.as_(world.tto).get(f"/organisations/{world.uni.id}")
    assert own.status_code == 200
    assert own.json["uscc"] == world.uni.uscc


def test_malformed_organisation_id_is_404(world: World) -> None:
    response = world.as_(world.admin).get("/organisations/not-a-uuid")
    assert_error(response, 404, "not_found")


# Adding users ---------------------------------------------------------------------------------


def user_body(role: str = "tto", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": f"new.{role}@example.test",
        "name": "张三",
        "role": role,
        "password": NEW_PASSWORD,
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("organisation", "role"),
    [
        ("uni", "tto"),
        ("uni", "auditor"),
        ("enterprise", "licensee"),
        ("enterprise", "tto"),
        ("audit_body", "auditor"),
        ("house", "admin"),
        ("house", "auditor"),
    ],
)
def test_admin_adds_users_in_roles_that_suit_the_kind(
    world: World, session: Session, organisation: str, role: str
) -> None:
    org = getattr(world, organisation)
    response = world.as_(world.admin).post(f"/organisations/{org.id}/users", json=user_body(role))

    assert response.status_code == 201, response.json
    assert response.json["role"] == role
    assert response.json["organisation_id"] == str(org.id)
    assert response.json["is_active"] is True
    assert "password" not in response.json
    assert "password_hash" not in response.json
    user = session.get(User, uuid.UUID(response.json["id"]))
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
    assert NEW_PASSWORD not in user.password_hash
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert event is not None
    assert event.action == "user.created"
    assert NEW_PASSWORD not in event.payload


@pytest.mark.parametrize(
    ("organisation", "role"),
    [
        ("uni", "licensee"),
        ("uni", "admin"),
        ("enterprise", "auditor"),
        ("enterprise", "admin"),
        ("audit_body", "tto"),
        ("house", "tto"),
        ("house", "licensee"),
    ],
)
def test_role_that_does_not_suit_the_kind_is_422(
    world: World, session: Session, organisation: str, role: str
) -> None:
    org = getattr(world, organisation)
    admin = world.as_(world.admin)
    with unchanged(session):
        response = admin.post(f"/organisations/{org.id}/users", json=user_body(role))
    assert_error(response, 422, "validation_error", {"role"})


@pytest.mark.parametrize(
    ("who", "organisation", "role"),
    [
        ("tto", "uni", "tto"),
        ("enterprise_tto", "enterprise", "licensee"),
        ("enterprise_tto", "enterprise", "tto"),
    ],
)
def test_tto_adds_colleagues_to_own_organisation(
    world: World, who: str, organisation: str, role: str
) -> None:
    org = getattr(world, organisation)
    response = world.as_(getattr(world, who)).post(
        f"/organisations/{org.id}/users", json=user_body(role)
    )
    assert response.status_code == 201, response.json
    assert response.json["organisation_id"] == str(org.id)


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_tto_may_not_grant_higher_roles(world: World, session: Session, role: str) -> None:
    tto = world.as_(world.tto)
    with unchanged(session):
        response = tto.post(f"/organisations/{world.uni.id}/users", json=user_body(role))
    assert_error(response, 403, "forbidden")


@pytest.mark.parametrize("target", ["other_uni", "enterprise", "house"])
def test_tto_may_not_add_to_another_organisation(
    world: World, session: Session, target: str
) -> None:
    tto = world.as_(world.tto)
    org = getattr(world, target)
    with unchanged(session):
        response = tto.post(f"/organisations/{org.id}/users", json=user_body("tto"))
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    ("who", "target", "status"),
    [
        ("licensee", "enterprise", 403),
        ("licensee", "uni", 404),
        ("auditor", "audit_body", 403),
        ("auditor", "uni", 403),
    ],
)
def test_licensees_and_auditors_may_not_add_users(
    world: World, session: Session, who: str, target: str, status: int
) -> None:
    caller = world.as_(getattr(world, who))
    org = getattr(world, target)
    with unchanged(session):
        response = caller.post(f"/organisations/{org.id}/users", json=user_body("licensee"))
    assert response.status_code == status, response.json


def test_adding_to_an_unknown_organisation_is_404(world: World, session: Session) -> None:
    admin = world.as_(world.admin)
    with unchanged(session):
        response = admin.post(f"/organisations/{world.factory.new_id()}/users", json=user_body())
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    "spelling", ["Taken@Example.TEST", "taken@example.test", " TAKEN@example.test"]
)
def test_duplicate_email_is_409_whatever_the_case(
    world: World, session: Session, spelling: str
) -> None:
    world.factory.user(world.uni, Role.TTO, email="taken@example.test")
    admin = world.as_(world.admin)
    with unchanged(session):
        response = admin.post(
            f"/organisations/{world.other_uni.id}/users", json=user_body(email=spelling)
        )
    assert_error(response, 409, "duplicate", {"email"})


def test_email_is_stored_lower_case(world: World) -> None:
    response = world.as_(world.admin).post(
        f"/organisations/{world.uni.id}/users", json=user_body(email="Li.Si@Example.TEST")
    )
    assert response.status_code == 201, response.json
    assert response.json["email"] == "li.si@example.test"


@pytest.mark.parametrize(
    "password",
    ["short", "elevenchars", "x" * 129, "new.tto@example.test", "NEW.TTO@EXAMPLE.TEST"],
    ids=["short", "eleven", "too-long", "is-email", "is-email-upper"],
)
def test_weak_password_is_422_naming_password(
    world: World, session: Session, password: str
) -> None:
    admin = world.as_(world.admin)
    with unchanged(session):
        response = admin.post(
            f"/organisations/{world.uni.id}/users", json=user_body(password=password)
        )
    assert_error(response, 422, "validation_error", {"password"})


def test_every_problem_is_reported_at_once(world: World, session: Session) -> None:
    admin = world.as_(world.admin)
    with unchanged(session):
        response = admin.post(
            f"/organisations/{world.uni.id}/users", json=user_body("licensee", password="short")
        )
    assert_error(response, 422, "validation_error", {"role", "password"})


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (user_body(email="not-an-email"), {"email"}),
        (user_body(role="superuser"), {"role"}),
        (user_body(name=""), {"name"}),
        (user_body(is_active=False), {"is_active"}),
        (user_body(organisation_id="7b0c8f2e-8f53-4b8a-9f5e-3f0b7cbdf9a1"), {"organisation_id"}),
        (user_body(password_hash="$argon2id$..."), {"password_hash"}),
        ({"email": "x@example.test"}, {"name", "role", "password"}),
    ],
    ids=["email", "role", "name", "is-active", "organisation-id", "password-hash", "missing"],
)
def test_invalid_user_is_422_naming_the_field(
    world: World, session: Session, body: dict[str, Any], fields: set[str]
) -> None:
    admin = world.as_(world.admin)
    with unchanged(session):
        response = admin.post(f"/organisations/{world.uni.id}/users", json=body)
    assert_error(response, 422, "validation_error", fields)


def test_created_user_can_sign_in_and_acts_in_its_organisation(world: World) -> None:
    created = world.as_(world.tto).post(
        f"/organisations/{world.uni.id}/users", json=user_body(email="colleague@uni.test")
    )
    assert created.status_code == 201, created.json

    token = world.api.post(
        "/tokens", json={"email": "colleague@uni.test", "password": NEW_PASSWORD}
    )
    assert token.status_code == 201, token.json
    assert all_ids(world.api.as_(token.json["token"])) == [str(world.uni.id)]
    # The factory's password is not the new user's.
    refused = world.api.post("/tokens", json={"email": "colleague@uni.test", "password": PASSWORD})
    assert refused.status_code == 401


def test_listing_users_is_scoped(world: World) -> None:
    path = f"/organisations/{world.uni.id}/users"
    for user in (world.admin, world.auditor, world.tto):
        response = world.as_(user).get(path)
        assert response.status_code == 200, response.json
        assert str(world.tto.id) in {u["id"] for u in response.json}
        assert all("password_hash" not in u and "password" not in u for u in response.json)
    assert world.as_(world.other_tto).get(path).status_code == 404
    assert world.as_(world.licensee).get(path).status_code == 404
    own = world.as_(world.licensee).get(f"/organisations/{world.enterprise.id}/users")
    assert own.status_code == 403


# Reward policy --------------------------------------------------------------------------------


def policy_path(org: Organisation) -> str:
    return f"/organisations/{org.id}/reward-policy"


def test_default_reward_policy_is_the_statutory_half(world: World) -> None:
    response = world.as_(world.tto).get(policy_path(world.uni))
    assert response.status_code == 200, response.json
    assert response.json["inventor_share"] == "50.00"
    assert response.json["is_default"] is True
    assert response.json["policy_reference"] is None
    assert response.json["remainder_split"] == []


def test_tto_sets_own_reward_policy(world: World, session: Session) -> None:
    tto = world.as_(world.tto)
    events = counts(session)[3]
    body = {
        "inventor_share": "40",
        "policy_reference": "《某某大学科技成果转化管理办法》第十二条",
        "deductions": ["taxes", "maintenance_fees", "taxes"],
        "remainder_split": [
            {"recipient": "university", "share": "66.67"},
            {"recipient": "college", "share": "33.33"},
        ],
    }

    response = tto.put(policy_path(world.uni), json=body)

    assert response.status_code == 200, response.json
    assert response.json["inventor_share"] == "40.00"
    assert response.json["is_default"] is False
    assert response.json["deductions"] == ["maintenance_fees", "taxes"]
    assert tto.get(policy_path(world.uni)).json == response.json
    assert counts(session)[3] == events + 1
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert event is not None
    assert event.action == "reward_policy.set"
    # Another organisation's policy is untouched.
    other = world.as_(world.other_tto).get(policy_path(world.other_uni))
    assert other.json["is_default"] is True


def test_admin_sets_any_reward_policy(world: World) -> None:
    response = world.as_(world.admin).put(
        policy_path(world.enterprise), json={"inventor_share": "60"}
    )
    assert response.status_code == 200, response.json
    assert response.json["inventor_share"] == "60.00"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"inventor_share": "49.99"}, {"policy_reference"}),
        ({"inventor_share": "30", "policy_reference": "   "}, {"policy_reference"}),
        (
            {
                "inventor_share": "50",
                "remainder_split": [
                    {"recipient": "university", "share": "60"},
                    {"recipient": "college", "share": "39.99"},
                ],
            },
            {"remainder_split"},
        ),
        (
            {"inventor_share": "50", "remainder_split": [{"recipient": "a", "share": "100.01"}]},
            {"remainder_split.0.share"},
        ),
        (
            {"inventor_share": "50", "remainder_split": [{"recipient": "a", "share": "-1"}]},
            {"remainder_split.0.share"},
        ),
        (
            {
                "inventor_share": "50",
                "remainder_split": [
                    {"recipient": "college", "share": "50"},
                    {"recipient": "college", "share": "50"},
                ],
            },
            {"remainder_split.1.recipient"},
        ),
        ({"inventor_share": "100.01"}, {"inventor_share"}),
        ({"inventor_share": "-5"}, {"inventor_share"}),
        ({"inventor_share": "33.333"}, {"inventor_share"}),
        ({"inventor_share": 50.5}, {"inventor_share"}),
        ({"inventor_share": "fifty"}, {"inventor_share"}),
        ({"inventor_share": "50", "deductions": ["lunch"]}, {"deductions.0"}),
        ({"inventor_share": "50", "is_default": True}, {"is_default"}),
        ({}, {"inventor_share"}),
    ],
    ids=[
        "low-no-reference",
        "low-blank-reference",
        "split-99.99",
        "split-part-over-100",
        "split-negative",
        "split-recipient-twice",
        "over-100",
        "negative",
        "three-places",
        "float",
        "word",
        "unknown-deduction",
        "server-owned",
        "missing",
    ],
)
def test_invalid_reward_policy_is_422(
    world: World, session: Session, body: dict[str, Any], fields: set[str]
) -> None:
    tto = world.as_(world.tto)
    with unchanged(session):
        response = tto.put(policy_path(world.uni), json=body)
    assert_error(response, 422, "validation_error", fields)


def test_other_organisations_policy_is_404_to_tto(world: World, session: Session) -> None:
    tto = world.as_(world.tto)
    with unchanged(session):
        response = tto.put(policy_path(world.other_uni), json={"inventor_share": "60"})
    assert_error(response, 404, "not_found")
    assert_error(tto.get(policy_path(world.other_uni)), 404, "not_found")


@pytest.mark.parametrize(("who", "target"), [("licensee", "enterprise"), ("auditor", "uni")])
def test_licensees_and_auditors_may_not_set_policy(
    world: World, session: Session, who: str, target: str
) -> None:
    caller = world.as_(getattr(world, who))
    with unchanged(session):
        response = caller.put(policy_path(getattr(world, target)), json={"inventor_share": "60"})
    assert_error(response, 403, "forbidden")


@pytest.mark.parametrize("target", ["house", "audit_body"])
def test_non_patent_holders_have_no_policy_to_set(
    world: World, session: Session, target: str
) -> None:
    admin = world.as_(world.admin)
    with unchanged(session):
        response = admin.put(policy_path(getattr(world, target)), json={"inventor_share": "60"})
    assert_error(response, 409, "rule_violation")


def test_kind_enum_matches_the_api() -> None:
    # The API documents these five kinds; a renamed enum member would break clients.
    assert {kind.value for kind in OrganisationKind} == {
        "university",
        "institute",
        "enterprise",
        "clearing_house",
        "audit_body",
    }


# Odd values never reach the database as a 500 ----------------------------------------------

ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    2**70,
    1e308,
    "",
    "   ",
    "x" * 5000,
    "\u202e\u0645\ufeff",
    "nul\u0000inside",
    "'; DROP TABLE users; --",
    [],
    ["a", 1],
    {},
    {"nested": {"deeper": [1]}},
]


def test_odd_values_in_any_accounts_field_never_answer_500(world: World) -> None:
    admin = world.as_(world.admin)
    tto = world.as_(world.tto)
    cases: list[tuple[Api, str, str, dict[str, Any]]] = [
        (world.api, "post", "/tokens", {"email": world.tto.email, "password": PASSWORD}),
        (admin, "post", "/organisations", organisation_body("enterprise")),
        (admin, "post", f"/organisations/{world.uni.id}/users", user_body()),
        (tto, "put", policy_path(world.uni), {"inventor_share": "40", "policy_reference": "x"}),
        (
            tto,
            "put",
            policy_path(world.uni),
            {"inventor_share": "50", "remainder_split": [{"recipient": "a", "share": "100"}]},
        ),
    ]
    for caller, method, path, valid in cases:
        fields = list(valid) + ["remainder_split.0.share"] * ("remainder_split" in valid)
        for field in fields:
            for value in ODD_VALUES:
                body = dict(valid)
                if field.startswith("remainder_split.0."):
                    body["remainder_split"] = [{"recipient": "a", "share": value}]
                else:
                    body[field] = value
                response = getattr(caller, method)(path, json=body)
                # Some odd values are legitimate (a name may be "   x" or contain quotes);
                # none may crash the service.
                assert response.status_code < 500, (path, field, value, response.json)
                if response.status_code >= 400:
                    assert set(response.json) == {"code", "status", "message", "errors"}
