"""Bearer tokens: ``POST /api/v1/tokens`` and ``DELETE /api/v1/tokens/current``.

The promises a client relies on: a token is shown once and works until it expires or is
revoked; a wrong e-mail and a wrong password look the same (no account enumeration); the
database never holds a usable token (ASVS 6.5.2, reliability.md T29).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from registry.accounts.models import ApiToken, User
from registry.audit.models import AuditEvent
from registry.core.actor import Role
from tests.conftest import Api
from tests.factories import PASSWORD, Factory

PROTECTED = "/organisations"


def audit_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def token_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ApiToken)) or 0


@pytest.fixture
def user(factory: Factory) -> User:
    return factory.user(factory.organisation("university"), Role.TTO, email="tto@uni.test")


def sign_in(api: Api, email: str, password: str = PASSWORD) -> str:
    response = api.post("/tokens", json={"email": email, "password": password})
    assert response.status_code == 201, response.json
    token: str = response.json["token"]
    return token


def assert_unauthenticated(response: object) -> None:
    assert response.status_code == 401, response.json  # type: ignore[attr-defined]
    body = response.json  # type: ignore[attr-defined]
    assert body["code"] == "unauthenticated"
    assert body["status"] == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")  # type: ignore[attr-defined]


# Issuing ------------------------------------------------------------------------------------


def test_token_issued_with_expiry_and_works_as_bearer(api: Api, user: User) -> None:
    before = datetime.now(UTC)
    response = api.post("/tokens", json={"email": user.email, "password": PASSWORD})

    assert response.status_code == 201, response.json
    assert set(response.json) == {"token", "expires_dt"}
    token = response.json["token"]
    assert token.startswith("olr_")
    assert len(token) >= 40
    expires = datetime.fromisoformat(response.json["expires_dt"])
    assert expires.tzinfo is not None
    # The app fixture keeps the default lifetime of 30 days.
    assert before + timedelta(days=30) <= expires <= datetime.now(UTC) + timedelta(days=30)
    assert response.headers["Cache-Control"] == "no-store"

    listed = api.as_(token).get(PROTECTED)
    assert listed.status_code == 200, listed.json
    assert [org["id"] for org in listed.json] == [str(user.organisation_id)]


def test_email_is_matched_case_insensitively(api: Api, user: User) -> None:
    response = api.post("/tokens", json={"email": "  TTO@Uni.TEST ", "password": PASSWORD})
    assert response.status_code == 201, response.json


def test_each_sign_in_issues_a_new_token_and_an_audit_event(
    api: Api, user: User, session: Session
) -> None:
    events = audit_count(session)
    first, second = sign_in(api, user.email), sign_in(api, user.email)

    assert first != second
    assert audit_count(session) == events + 2
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert event is not None
    assert event.action == "token.issued"
    assert event.actor_id == user.id
    assert second not in event.payload  # the audit log never holds a usable token


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("tto@uni.test", "wrong password, long enough"),
        ("nobody@uni.test", PASSWORD),
        ("tto@uni.test", ""),
        ("", PASSWORD),
    ],
    ids=["wrong-password", "unknown-email", "empty-password", "empty-email"],
)
def test_bad_credentials_are_refused_alike(
    api: Api, user: User, session: Session, email: str, password: str
) -> None:
    events, tokens = audit_count(session), token_count(session)

    response = api.post("/tokens", json={"email": email, "password": password})

    assert_unauthenticated(response)
    assert response.json["message"] == "e-mail or password is wrong"
    assert "token" not in response.json
    assert (audit_count(session), token_count(session)) == (events, tokens)


def test_disabled_user_gets_no_token_and_loses_existing_ones(
    api: Api, user: User, factory: Factory, session: Session
) -> None:
    existing = factory.token(user)
    user.is_active = False
    session.flush()
    events, tokens = audit_count(session), token_count(session)

    response = api.post("/tokens", json={"email": user.email, "password": PASSWORD})

    assert_unauthenticated(response)
    assert response.json["message"] == "e-mail or password is wrong"
    assert_unauthenticated(api.as_(existing).get(PROTECTED))
    assert (audit_count(session), token_count(session)) == (events, tokens)


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({}, {"email", "password"}),
        ({"email": "tto@uni.test"}, {"password"}),
        ({"password": PASSWORD}, {"email"}),
    ],
)
def test_missing_fields_are_named(
    api: Api, user: User, session: Session, body: dict[str, str], missing: set[str]
) -> None:
    events = audit_count(session)

    response = api.post("/tokens", json=body)

    assert response.status_code == 422, response.json
    assert response.json["code"] == "validation_error"
    assert {error["field"] for error in response.json["errors"]} == missing
    assert audit_count(session) == events


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "tto@uni.test", "password": PASSWORD, "ttl_days": 3650}, "ttl_days"),
        ({"email": "tto@uni.test", "password": PASSWORD, "role": "admin"}, "role"),
        ({"email": ["tto@uni.test"], "password": PASSWORD}, "email"),
        ({"email": "tto@uni.test", "password": 12345678901234}, "password"),
        ({"email": "tto@uni.test", "password": None}, "password"),
        ({"email": "tto@uni.test", "password": "x" * 2000}, "password"),
    ],
    ids=["unknown-ttl", "unknown-role", "email-list", "password-number", "password-null", "long"],
)
def test_unknown_fields_and_wrong_types_are_named(
    api: Api, user: User, session: Session, body: dict[str, object], field: str
) -> None:
    tokens = token_count(session)

    response = api.post("/tokens", json=body)

    assert response.status_code == 422, response.json
    assert [error["field"] for error in response.json["errors"]] == [field]
    assert token_count(session) == tokens


def test_token_is_stored_only_as_its_sha256(api: Api, user: User, session: Session) -> None:
    token = sign_in(api, user.email)

    row = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(row.prefix)
    assert len(row.prefix) < len(token) // 2
    # No column of any api_tokens row holds the token, nor its random part.
    secret_part = token.removeprefix("olr_")
    for raw in session.execute(text("SELECT * FROM api_tokens")).all():
        for value in raw:
            assert secret_part not in str(value)


def test_token_in_query_string_is_not_accepted(api: Api, user: User) -> None:
    token = sign_in(api, user.email)
    assert_unauthenticated(api.get(f"{PROTECTED}?access_token={token}"))
    assert_unauthenticated(api.get(f"{PROTECTED}?token={token}"))


# Expiry and revocation ----------------------------------------------------------------------


def test_expired_token_is_refused(api: Api, user: User, factory: Factory) -> None:
    token = factory.token(user, ttl=timedelta(seconds=-1))
    assert_unauthenticated(api.as_(token).get(PROTECTED))


def test_token_stops_working_once_its_expiry_passes(
    api: Api, user: User, factory: Factory, session: Session
) -> None:
    token = factory.token(user)
    assert api.as_(token).get(PROTECTED).status_code == 200

    row = session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)).one()
    row.expires_dt = datetime.now(UTC) - timedelta(seconds=1)
    session.flush()

    assert_unauthenticated(api.as_(token).get(PROTECTED))


def test_revoking_the_current_token(
    api: Api, user: User, factory: Factory, session: Session
) -> None:
    other = factory.token(user)
    current = sign_in(api, user.email)
    events = audit_count(session)

    response = api.as_(current).delete("/tokens/current")

    assert response.status_code == 204
    assert response.get_data() == b""
    assert_unauthenticated(api.as_(current).get(PROTECTED))
    assert_unauthenticated(api.as_(current).delete("/tokens/current"))
    # Only the token used is revoked: the user's other sessions keep working.
    assert api.as_(other).get(PROTECTED).status_code == 200
    assert audit_count(session) == events + 1
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert event is not None
    assert event.action == "token.revoked"
    row = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == hashlib.sha256(current.encode()).hexdigest())
    ).one()
    assert row.revoked_dt is not None


def test_revoking_without_a_token_is_401(api: Api, session: Session) -> None:
    events = audit_count(session)
    assert_unauthenticated(api.delete("/tokens/current"))
    assert audit_count(session) == events


# Malformed Authorization headers -----------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Basic dHRvQHVuaS50ZXN0OnBhc3N3b3Jk",
        "Token {token}",
        "{token}",
        "Bearer {token}x",
        "Bearer x{token}",
        "Bearer {token} {token}",
        "Bearer olr_",
        "Bearer olr_" + "A" * 43,
        "Bearer not-a-registry-token",
        "Bearer " + "A" * 10_000,
        "Bearer olr_\u00e9\u00e8",
        "Bearer,{token}",
    ],
)
def test_malformed_authorization_is_401(
    api: Api, user: User, factory: Factory, header: str
) -> None:
    token = factory.token(user)
    response = api.client.get(
        "/api/v1" + PROTECTED, headers={"Authorization": header.format(token=token)}
    )
    assert_unauthenticated(response)


def test_bearer_scheme_is_case_insensitive(api: Api, user: User, factory: Factory) -> None:
    # RFC 9110 §11.1: the authentication scheme is a case-insensitive token.
    token = factory.token(user)
    response = api.client.get("/api/v1" + PROTECTED, headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200, response.json
