"""Rate limits on sign-in and contract verification (ASVS 5.0 2.4.1, 4.1.3, 6.3.1; T28).

Each test builds an app of its own with small limits (the shared test app's are generous, as
the suite signs in hundreds of times from one address), on the test's rolled-back database.
Requests come from chosen client addresses (``REMOTE_ADDR``), with or without forged
``X-Forwarded-For`` headers.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.accounts.models import ApiToken, User
from registry.app import create_app
from registry.audit.models import AuditEvent
from registry.config import ConfigError
from registry.core.actor import Role
from registry.core.ratelimit import sign_in_limited
from tests.conftest import TransactionalDatabase
from tests.factories import PASSWORD, Factory

SECRET = "test-secret-" + "r" * 32
WRONG = "not the password at all"


@pytest.fixture
def limited_app(tmp_path: Path, db: TransactionalDatabase) -> Callable[..., Flask]:
    """Apps on this test's database with the limits given (generous for the rest)."""

    def build(configure: Callable[[Flask], None] | None = None, **limits: Any) -> Flask:
        settings = {
            "env": "testing",
            "instance_path": tmp_path / "instance",
            "secret_key": SECRET,
            "ratelimit_tokens": "1000/minute",
            "ratelimit_tokens_per_account": "1000/minute",
            "ratelimit_verify": "1000/minute",
            **limits,
        }
        return create_app(settings, database=db, configure=configure)

    return build


@pytest.fixture
def user(factory: Factory) -> User:
    return factory.user(factory.organisation("university"), Role.TTO, email="tto@limits.test")


def sign_in(
    client: FlaskClient, email: str, password: str, address: str = "203.0.113.7", **headers: str
) -> Any:
    return client.post(
        "/api/v1/tokens",
        json={"email": email, "password": password},
        headers=headers,
        environ_base={"REMOTE_ADDR": address},
    )


def assert_too_many(response: Any, longest: int) -> int:
    """A 429 in the error envelope (or, for a page address, the error page made of it) with a
    usable Retry-After; returns its seconds."""
    assert response.status_code == 429, response.get_data(as_text=True)[:300]
    seconds = int(response.headers["Retry-After"])
    assert 1 <= seconds <= longest
    if response.request.path.startswith("/api/"):
        body = response.get_json()
        assert set(body) == {"code", "status", "message", "errors"}
        assert (body["code"], body["status"], body["errors"]) == ("too_many_requests", 429, [])
        assert str(seconds) in body["message"]
    # It is a response like any other: the security headers are on it too.
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    if response.request.path.startswith("/api/"):
        assert response.headers["Cache-Control"] == "no-store"
    return seconds


def written(session: Session) -> tuple[int, int]:
    return (
        session.scalar(select(func.count()).select_from(ApiToken)) or 0,
        session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
    )


# Per client address ---------------------------------------------------------------------------


def test_sign_in_is_limited_per_client_address(
    limited_app: Callable[..., Flask], user: User, session: Session
) -> None:
    client = limited_app(ratelimit_tokens="3/minute").test_client()
    for _ in range(3):
        assert sign_in(client, "nobody@limits.test", WRONG).status_code == 401
    before = written(session)

    # Past the limit even the right password is not tried: nothing is issued or recorded.
    refused = sign_in(client, user.email, PASSWORD)

    assert_too_many(refused, 60)
    assert written(session) == before
    # Another client address has its own budget.
    assert sign_in(client, user.email, PASSWORD, address="198.51.100.1").status_code == 201


def test_forged_x_forwarded_for_does_not_reset_the_count(
    limited_app: Callable[..., Flask], user: User
) -> None:
    """No trusted proxy configured: X-Forwarded-For is the client's own claim (ASVS 4.1.3)."""
    client = limited_app(ratelimit_tokens="3/minute").test_client()
    answers = [
        sign_in(client, user.email, WRONG, **{"X-Forwarded-For": f"192.0.2.{n}"}).status_code
        for n in range(1, 31)
    ]
    assert answers[:3] == [401, 401, 401]
    assert set(answers[3:]) == {429}


def test_behind_a_trusted_proxy_the_forwarded_address_counts(
    limited_app: Callable[..., Flask], user: User
) -> None:
    """With one trusted proxy the address it appended is the client; what the client put in
    front of it is still ignored."""
    client = limited_app(ratelimit_tokens="2/minute", trusted_proxies=1).test_client()
    proxy = "10.0.0.2"

    def via_proxy(forwarded: str) -> int:
        response = sign_in(client, user.email, WRONG, proxy, **{"X-Forwarded-For": forwarded})
        return int(response.status_code)

    assert [via_proxy("192.0.2.10") for _ in range(3)] == [401, 401, 429]
    # A different client behind the same proxy is not blocked by the first one's attempts.
    assert via_proxy("192.0.2.11") == 401
    # Forging an earlier hop changes nothing: the proxy's own entry is the last one.
    assert via_proxy("198.51.100.99, 192.0.2.10") == 429


# Per e-mail address ---------------------------------------------------------------------------


def test_sign_in_is_limited_per_email_across_addresses(
    limited_app: Callable[..., Flask], user: User, session: Session
) -> None:
    """Guesses at one account spread over many addresses still meet a limit; spellings of the
    address count as one, and an unregistered address is limited alike (no oracle)."""
    client = limited_app(ratelimit_tokens_per_account="3/minute").test_client()
    spellings = [user.email, "  TTO@Limits.Test ", user.email.upper()]
    for n, email in enumerate(spellings):
        assert sign_in(client, email, WRONG, address=f"192.0.2.{n}").status_code == 401
    before = written(session)

    assert_too_many(sign_in(client, user.email, PASSWORD, address="192.0.2.200"), 60)
    assert written(session) == before

    for n in range(3):
        ghost = sign_in(client, "ghost@limits.test", WRONG, address=f"198.51.100.{n}")
        assert ghost.status_code == 401
    assert_too_many(sign_in(client, "ghost@limits.test", WRONG, address="198.51.100.9"), 60)
    # Other accounts are untouched.
    other = sign_in(client, "someone.else@limits.test", WRONG, address="192.0.2.200")
    assert other.status_code == 401


def test_the_limit_recovers_after_retry_after(
    limited_app: Callable[..., Flask], user: User
) -> None:
    """Retry-After tells the truth: waiting that long is enough, and not waiting is not."""
    client = limited_app(ratelimit_tokens="2 per 2 seconds").test_client()
    assert sign_in(client, user.email, WRONG).status_code == 401
    assert sign_in(client, user.email, WRONG).status_code == 401
    seconds = assert_too_many(sign_in(client, user.email, PASSWORD), 2)

    time.sleep(seconds + 0.2)

    assert sign_in(client, user.email, PASSWORD).status_code == 201


def test_web_sign_in_shares_the_sign_in_budget(
    limited_app: Callable[..., Flask], user: User
) -> None:
    """``sign_in_limited`` on another handler (the web sign-in form of issue 7) counts against
    the same budgets as POST /api/v1/tokens: an attacker gains nothing by switching."""

    def add_form(app: Flask) -> None:
        @sign_in_limited
        def web_sign_in() -> tuple[str, int]:
            return f"form for {request.form.get('email', '')!r}", 200

        app.add_url_rule("/sign-in", view_func=web_sign_in, methods=["POST"])

    app = limited_app(
        add_form, ratelimit_tokens="3/minute", ratelimit_tokens_per_account="4/minute"
    )
    client = app.test_client()
    form = {"email": user.email, "password": WRONG}
    address = {"REMOTE_ADDR": "203.0.113.50"}
    assert client.post("/sign-in", data=form, environ_base=address).status_code == 200
    assert sign_in(client, user.email, WRONG, "203.0.113.50").status_code == 401
    assert client.post("/sign-in", data=form, environ_base=address).status_code == 200
    assert_too_many(sign_in(client, user.email, PASSWORD, "203.0.113.50"), 60)
    assert_too_many(client.post("/sign-in", data=form, environ_base=address), 60)

    # The per-account budget reads the form's e-mail field as it reads the JSON body's: three
    # attempts so far (those refused by the address limit were not counted), a fourth from
    # elsewhere, and the fifth is refused from any address.
    elsewhere = {"REMOTE_ADDR": "192.0.2.60"}
    assert client.post("/sign-in", data=form, environ_base=elsewhere).status_code == 200
    assert_too_many(sign_in(client, user.email, PASSWORD, "192.0.2.99"), 60)
    assert_too_many(
        client.post("/sign-in", data=form, environ_base={"REMOTE_ADDR": "192.0.2.98"}), 60
    )


def test_a_form_body_sent_to_the_json_endpoint_is_still_415(
    limited_app: Callable[..., Flask], user: User
) -> None:
    """Reading the e-mail for the limit must not swallow the body the endpoint checks."""
    client = limited_app().test_client()
    response = client.post(
        "/api/v1/tokens",
        data=f"email={user.email}&password={PASSWORD}",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 415, response.get_json()


# Contract verification ------------------------------------------------------------------------


def test_contract_verification_is_limited_per_client_address(
    limited_app: Callable[..., Flask],
) -> None:
    client = limited_app(ratelimit_verify="2/minute").test_client()

    def verify(address: str) -> Any:
        return client.post(
            "/api/v1/contracts/verify",
            data={"file": (io.BytesIO(b"not a pdf"), "contract.pdf")},
            content_type="multipart/form-data",
            environ_base={"REMOTE_ADDR": address},
        )

    assert [verify("203.0.113.9").status_code for _ in range(2)] == [422, 422]
    assert_too_many(verify("203.0.113.9"), 60)
    assert verify("203.0.113.10").status_code == 422
    # Signing in is a separate budget: verification did not use it up.
    assert sign_in(client, "nobody@limits.test", WRONG, "203.0.113.9").status_code == 401


# Configuration and documentation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("REGISTRY_RATELIMIT_TOKENS", "lots"),
        ("REGISTRY_RATELIMIT_TOKENS_PER_ACCOUNT", "0/minute"),
        ("REGISTRY_RATELIMIT_VERIFY", ""),
        ("REGISTRY_TRUSTED_PROXIES", "-1"),
    ],
)
def test_bad_limit_settings_refuse_to_start(tmp_path: Path, setting: str, value: str) -> None:
    from registry.config import load_settings

    with pytest.raises(ConfigError, match=setting):
        load_settings({"REGISTRY_INSTANCE_PATH": str(tmp_path), setting: value})


def test_an_unusable_storage_url_refuses_to_start(
    limited_app: Callable[..., Flask],
) -> None:
    with pytest.raises(ConfigError, match="REGISTRY_RATELIMIT_STORAGE_URL"):
        limited_app(ratelimit_storage_url="nosuchstore://127.0.0.1:1")


def test_defaults_are_realistic(tmp_path: Path) -> None:
    from limits import parse_many

    from registry.config import load_settings

    settings = load_settings({"REGISTRY_INSTANCE_PATH": str(tmp_path)})
    assert settings.ratelimit_storage_url == "memory://"
    assert settings.trusted_proxies == 0
    for rate, most_per_minute in (
        (settings.ratelimit_tokens, 10),
        (settings.ratelimit_tokens_per_account, 5),
        (settings.ratelimit_verify, 20),
    ):
        per_minute = [item.amount * 60 / item.get_expiry() for item in parse_many(rate)]
        assert min(per_minute) <= most_per_minute


def test_openapi_documents_the_429(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path in ("/api/v1/tokens", "/api/v1/contracts/verify"):
        assert "429" in paths[path]["post"]["responses"], path
        assert re.search("Retry-After", paths[path]["post"]["responses"]["429"]["description"])
