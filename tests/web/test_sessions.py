"""Signing in and out of the pages: server-side sessions apart from API tokens (ASVS 5.0 V7),
the shared sign-in rules (lockout, rate limits) and password changes that end sessions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from registry.accounts.models import User
from registry.app import create_app
from registry.audit.models import AuditEvent
from registry.core import clock
from registry.web.models import WebSession
from tests.conftest import TransactionalDatabase
from tests.factories import PASSWORD, Factory
from tests.web.conftest import Scene
from tests.web.pages import csrf_token, sign_in, text

NEW_PASSWORD = "a brand new passphrase 2026"


def sessions_of(session: Session, user: User) -> list[WebSession]:
    session.expire_all()
    return list(
        session.scalars(
            select(WebSession).where(WebSession.user_id == user.id).order_by(WebSession.created_dt)
        )
    )


def events(session: Session, action: str) -> int:
    return int(session.scalar(select(func.count()).where(AuditEvent.action == action)) or 0)


def signed_in(client: FlaskClient) -> bool:
    response = client.get("/licences")
    return response.status_code == 200


def test_sign_in_makes_a_new_session_each_time(
    client: FlaskClient, session: Session, scene: Scene
) -> None:
    first = sign_in(client, scene.sme.email)
    assert first.headers["Location"] == "/"
    assert signed_in(client)
    assert scene.sme.email in client.get("/").get_data(as_text=True)
    sign_in(client, scene.sme.email.upper())  # e-mail addresses are case-insensitive
    rows = sessions_of(session, scene.sme)
    assert len(rows) == 2
    assert rows[0].end_reason == "replaced"  # ASVS 7.2.4: a new id, the old one dead
    assert rows[1].ended_dt is None
    assert rows[0].token_hash != rows[1].token_hash
    assert all(len(row.token_hash) == 64 for row in rows)  # only the hash is stored
    assert events(session, "session.started") == 2


def test_wrong_password_is_refused_and_counted(
    client: FlaskClient, session: Session, scene: Scene
) -> None:
    token = csrf_token(client, "/login")
    response = client.post(
        "/login",
        data={"email": scene.sme.email, "password": "not it at all", "csrf_token": token},
    )
    assert response.status_code == 422
    assert "电子邮箱或密码错误" in text(response)
    assert "not it at all" not in response.get_data(as_text=True)
    session.refresh(scene.sme)
    assert scene.sme.failed_logins == 1  # committed although the answer is an error
    assert sessions_of(session, scene.sme) == []
    blank = client.post("/login?lang=en", data={"email": "", "password": "", "csrf_token": token})
    assert blank.status_code == 422
    html = blank.get_data(as_text=True)
    assert 'id="f-email-error"' in html
    assert 'id="f-password-error"' in html
    assert "autofocus" in html


def test_repeated_failures_lock_the_account_for_the_form_too(
    client: FlaskClient, session: Session, scene: Scene
) -> None:
    token = csrf_token(client, "/login")
    for _ in range(5):
        client.post(
            "/login", data={"email": scene.sme.email, "password": "x" * 12, "csrf_token": token}
        )
    locked = client.post(
        "/login", data={"email": scene.sme.email, "password": PASSWORD, "csrf_token": token}
    )
    assert locked.status_code == 422  # the same answer as a wrong password (no enumeration)
    session.refresh(scene.sme)
    assert scene.sme.locked_until_dt is not None


def test_sign_in_form_needs_its_csrf_token(
    client: FlaskClient, session: Session, scene: Scene
) -> None:
    response = client.post("/login", data={"email": scene.sme.email, "password": PASSWORD})
    assert response.status_code == 400
    assert 'data-error-code="csrf_failed"' in response.get_data(as_text=True)
    assert sessions_of(session, scene.sme) == []


def test_sign_out_ends_the_session_even_for_a_copied_cookie(
    app: Flask, client: FlaskClient, session: Session, scene: Scene
) -> None:
    sign_in(client, scene.sme.email)
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = client.get_cookie(name)
    assert cookie is not None
    copy = app.test_client()
    copy.set_cookie(name, cookie.value)
    assert signed_in(copy)
    out = client.post("/logout", data={"csrf_token": csrf_token(client)})
    assert out.status_code == 303
    assert not signed_in(client)
    assert not signed_in(copy)  # ASVS 7.4.1: the server-side session is gone
    assert sessions_of(session, scene.sme)[0].end_reason == "signed_out"
    assert events(session, "session.ended") == 1


def test_sign_out_needs_its_csrf_token(client: FlaskClient, scene: Scene) -> None:
    sign_in(client, scene.sme.email)
    assert client.post("/logout").status_code == 400
    assert signed_in(client)


def test_idle_and_absolute_limits_end_a_session(app: Flask, session: Session, scene: Scene) -> None:
    idle, absolute, fresh = (app.test_client() for _ in range(3))
    for browser in (idle, absolute, fresh):
        sign_in(browser, scene.sme.email)
    rows = sessions_of(session, scene.sme)
    now = clock.now()
    session.execute(
        update(WebSession)
        .where(WebSession.id == rows[0].id)
        .values(last_seen_dt=now - timedelta(minutes=31))  # idle past 30 minutes (ASVS 7.3.1)
    )
    session.execute(
        update(WebSession)
        .where(WebSession.id == rows[1].id)
        .values(expires_dt=now - timedelta(seconds=1))  # past 12 hours (ASVS 7.3.2)
    )
    session.execute(
        update(WebSession)
        .where(WebSession.id == rows[2].id)
        .values(last_seen_dt=now - timedelta(minutes=29))
    )
    session.flush()
    assert not signed_in(idle)
    assert not signed_in(absolute)
    assert signed_in(fresh)
    session.expire_all()
    touched = session.get_one(WebSession, rows[2].id)
    assert touched.last_seen_dt > now - timedelta(minutes=1)  # the request counted


def test_a_disabled_user_is_signed_out_at_once(
    client: FlaskClient, session: Session, scene: Scene
) -> None:
    sign_in(client, scene.sme.email)
    scene.sme.is_active = False
    session.flush()
    response = client.get("/licences")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/licences"


def test_sessions_and_tokens_are_separate_credentials(
    client: FlaskClient, factory: Factory, scene: Scene
) -> None:
    token = factory.token(scene.sme)
    page = client.get("/licences", headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == 302  # a bearer token opens no page
    sign_in(client, scene.sme.email)
    api = client.get("/api/v1/licences")
    assert api.status_code == 401  # a session cookie opens no API endpoint


def test_sign_in_brings_the_visitor_back_but_only_to_this_site(
    client: FlaskClient, scene: Scene
) -> None:
    away = client.get("/licences")
    assert away.status_code == 302
    assert away.headers["Location"] == "/login?next=/licences"
    token = csrf_token(client, "/login")
    data = {"email": scene.sme.email, "password": PASSWORD, "csrf_token": token}
    back = client.post("/login", data={**data, "next": "/licences"})
    assert back.headers["Location"] == "/licences"
    for evil in (
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "/api/v1/licences",
    ):
        token = csrf_token(client, "/login")
        response = client.post("/login", data={**data, "csrf_token": token, "next": evil})
        assert response.headers["Location"] == "/", evil


def test_password_change_ends_every_other_session_and_chosen_tokens(
    app: Flask, client: FlaskClient, session: Session, factory: Factory, scene: Scene
) -> None:
    token = factory.token(scene.sme)
    other = app.test_client()
    sign_in(other, scene.sme.email)
    sign_in(client, scene.sme.email)
    response = client.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
            "end_api_tokens": "yes",
            "csrf_token": csrf_token(client, "/account/password"),
        },
    )
    assert response.status_code == 303
    assert signed_in(client)  # this browser got a new session
    assert not signed_in(other)  # ASVS 7.4.3
    assert (
        client.get("/api/v1/licences", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    assert events(session, "user.password_changed") == 1
    old = client.post("/api/v1/tokens", json={"email": scene.sme.email, "password": PASSWORD})
    assert old.status_code == 401
    new = client.post("/api/v1/tokens", json={"email": scene.sme.email, "password": NEW_PASSWORD})
    assert new.status_code == 201


def test_password_change_mistakes_are_shown_next_to_their_fields(
    client: FlaskClient, session: Session, scene: Scene
) -> None:
    sign_in(client, scene.sme.email)
    before = scene.sme.password_hash

    def change(current: str, new: str, confirm: str) -> str:
        response = client.post(
            "/account/password",
            data={
                "current_password": current,
                "new_password": new,
                "confirm_password": confirm,
                "csrf_token": csrf_token(client, "/account/password"),
            },
        )
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert current not in html
        assert new not in html
        return html

    wrong = change("guess guess guess", NEW_PASSWORD, NEW_PASSWORD)
    assert 'id="f-current_password-error"' in wrong
    assert "密码错误" in wrong
    differ = change(PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!")
    assert 'id="f-confirm_password-error"' in differ
    short = change(PASSWORD, "short", "short")
    assert 'id="f-new_password-error"' in short
    assert "至少使用 12 个字符" in short
    session.refresh(scene.sme)
    assert scene.sme.password_hash == before
    assert scene.sme.failed_logins == 1  # the wrong current password counted
    assert signed_in(client)


def test_the_form_and_the_api_share_one_sign_in_budget(
    tmp_path: Path, db: TransactionalDatabase, scene: Scene
) -> None:
    app = create_app(
        {
            "env": "testing",
            "instance_path": tmp_path / "instance",
            "secret_key": "test-secret-" + "w" * 32,
            "ratelimit_tokens": "3/minute",
            "ratelimit_tokens_per_account": "1000/minute",
            "ratelimit_verify": "1000/minute",
        },
        database=db,
    )
    client = app.test_client()
    client.post("/api/v1/tokens", json={"email": scene.sme.email, "password": "nope"})
    token = csrf_token(client, "/login?lang=en")
    data = {"email": scene.sme.email, "password": "nope nope nope", "csrf_token": token}
    assert client.post("/login", data=data).status_code == 422
    assert client.post("/login", data=data).status_code == 422
    limited = client.post("/login", data=data)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert 'data-error-code="too_many_requests"' in limited.get_data(as_text=True)
