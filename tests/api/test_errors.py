"""The HTTP edge: one error envelope for every 4xx and 5xx, probes, headers, OpenAPI and docs.

Clients parse one shape, ``{"code", "status", "message", "errors": [{"field", "messages"}]}``,
whoever raised the error: a service, marshmallow, flask-smorest or Flask itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation, OrganisationKind
from registry.app import create_app
from registry.audit.models import AuditEvent
from registry.core.actor import Role
from registry.core.http import get_session
from registry.ops.migrations import alembic_config
from tests.conftest import Api, TransactionalDatabase
from tests.factories import Factory, make_uscc

ENVELOPE_KEYS = {"code", "status", "message", "errors"}
SECRET = "test-secret-" + "y" * 32


def assert_envelope(
    response: Any, status: int, code: str, fields: set[str] | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body: dict[str, Any] = response.get_json()
    assert set(body) == ENVELOPE_KEYS
    assert body["status"] == status
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    for error in body["errors"]:
        assert set(error) == {"field", "messages"}
        assert isinstance(error["field"], str)
        assert error["messages"]
        assert all(isinstance(m, str) for m in error["messages"])
    if fields is not None:
        assert {error["field"] for error in body["errors"]} == fields
    return body


def counts(session: Session) -> tuple[int, int]:
    return (
        session.scalar(select(func.count()).select_from(Organisation)) or 0,
        session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
    )


@pytest.fixture
def fresh_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build throw-away apps on a temporary SQLite database; their engines are disposed after."""
    owned: list[Flask] = []

    def build(overrides: dict[str, Any] | None = None, **kwargs: Any) -> Flask:
        settings = {
            "env": "testing",
            "instance_path": tmp_path / "instance",
            "database_url": f"sqlite:///{tmp_path / 'fresh.db'}",
            "secret_key": SECRET,
            **(overrides or {}),
        }
        app = create_app(settings, **kwargs)
        if "database" not in kwargs:  # an injected database belongs to the caller
            owned.append(app)
        return app

    yield build
    for app in owned:
        app.extensions["registry.db"].engine.dispose()


# Routing errors raised by Flask itself ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/organisations/x/y/z", "/api"])
def test_unknown_url_is_404_envelope(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert_envelope(response, 404, "not_found", set())
    # Outside the API the same envelope is a page (tests/web), unless JSON is asked for.
    asked = client.get("/nope", headers={"Accept": "application/json"})
    assert_envelope(asked, 404, "not_found", set())


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("delete", "/api/v1/tokens", {"POST"}),
        ("get", "/api/v1/tokens", {"POST"}),
        ("post", "/api/v1/tokens/current", {"DELETE"}),
        ("put", "/healthz", {"GET"}),
        ("post", "/api/v1/openapi.json", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow(
    client: FlaskClient, method: str, path: str, allowed: set[str]
) -> None:
    response = getattr(client, method)(path)
    assert_envelope(response, 405, "method_not_allowed", set())
    offered = {m.strip() for m in response.headers["Allow"].split(",")}
    assert allowed <= offered
    assert method.upper() not in offered


# Bodies --------------------------------------------------------------------------------------


def test_ten_megabyte_body_is_413(client: FlaskClient, session: Session) -> None:
    before = counts(session)
    response = client.post(
        "/api/v1/tokens", data=b" " * (10 * 1024 * 1024), content_type="application/json"
    )
    assert_envelope(response, 413, "payload_too_large")
    assert counts(session) == before


@pytest.mark.parametrize(
    "body",
    [b"{bad", b'{"email": "a@b.test",}', b"\xff\xfe{}", b"\xef\xbb\xbf{}", b"null x"],
    ids=["truncated", "trailing-comma", "not-utf8", "bom", "garbage"],
)
def test_malformed_json_is_400(client: FlaskClient, body: bytes) -> None:
    response = client.post("/api/v1/tokens", data=body, content_type="application/json")
    assert_envelope(response, 400, "bad_request")


def test_empty_body_is_422_naming_the_required_fields(client: FlaskClient) -> None:
    response = client.post("/api/v1/tokens", data=b"", content_type="application/json")
    assert_envelope(response, 422, "validation_error", {"email", "password"})


@pytest.mark.parametrize("depth", [5_000, 200_000])
def test_deeply_nested_json_is_400_not_500(client: FlaskClient, depth: int) -> None:
    for body in (b"[" * depth, b'{"a":' * depth):
        response = client.post("/api/v1/tokens", data=body, content_type="application/json")
        assert_envelope(response, 400, "bad_request")


@pytest.mark.parametrize(
    "body", [b"[]", b'"text"', b"42", b"null", b"true"], ids=["list", "str", "int", "null", "bool"]
)
def test_json_that_is_not_an_object_is_422(client: FlaskClient, body: bytes) -> None:
    response = client.post("/api/v1/tokens", data=body, content_type="application/json")
    assert_envelope(response, 422, "validation_error", {"_schema"})


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b"email=a%40b.test&password=x", "application/x-www-form-urlencoded"),
        (b'{"email": "a@b.test", "password": "x"}', "text/plain"),
        (b"<token><email>a@b.test</email></token>", "application/xml"),
    ],
    ids=["form", "text", "xml"],
)
def test_body_that_is_not_json_is_415(
    client: FlaskClient, session: Session, data: bytes, content_type: str
) -> None:
    before = counts(session)
    response = client.post("/api/v1/tokens", data=data, content_type=content_type)
    body = assert_envelope(response, 415, "unsupported_media_type")
    assert "application/json" in body["message"]
    assert counts(session) == before


def test_json_with_charset_parameter_is_accepted(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/tokens",
        data=b'{"email": "nobody@example.test", "password": "whatever it is"}',
        content_type="application/json; charset=utf-8",
    )
    assert_envelope(response, 401, "unauthenticated")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"email": "a\\u0000b@example.test", "password": "x"}', "email"),
        (b'{"email": "a@example.test", "password": "p\\ud800q"}', "password"),
        (b'{"email": "a@example.test", "password": "x", "\\udfff": 1}', "_schema"),
    ],
    ids=["nul", "lone-surrogate", "surrogate-key"],
)
def test_text_no_database_can_store_is_422(
    client: FlaskClient, session: Session, raw: bytes, field: str
) -> None:
    # PostgreSQL refuses NUL in text and lone surrogates are not UTF-8: both used to be a 500.
    before = counts(session)
    response = client.post("/api/v1/tokens", data=raw, content_type="application/json")
    assert_envelope(response, 422, "validation_error", {field})
    assert counts(session) == before


def test_nul_in_nested_field_and_query_is_named(api: Api, factory: Factory) -> None:
    admin = api.as_(factory.token(factory.admin()))
    response = admin.post(
        "/organisations",
        data=(
            b'{"name": "\\u6e05\\u0000", "kind": "university", "uscc": "x",'
            b' "extra": ["ok", "\\u0000"]}'
        ),
        content_type="application/json",
    )
    assert_envelope(response, 422, "validation_error", {"name", "extra.1"})
    listed = admin.get("/organisations?page=1&q=%00")
    assert_envelope(listed, 422, "validation_error", {"q"})


# Errors raised by the services and schemas --------------------------------------------------


def test_401_403_409_envelopes(api: Api, factory: Factory, session: Session) -> None:
    university = factory.organisation("university")
    tto = factory.user(university, Role.TTO)
    admin = api.as_(factory.token(factory.admin()))

    assert_envelope(api.get("/organisations"), 401, "unauthenticated", set())
    assert_envelope(api.as_("olr_wrong").get("/organisations"), 401, "unauthenticated", set())

    body = {"name": "某大学", "kind": "university", "uscc": make_uscc()}
    forbidden = api.as_(factory.token(tto)).post("/organisations", json=body)
    assert_envelope(forbidden, 403, "forbidden", set())

    before = counts(session)
    duplicate = admin.post("/organisations", json={**body, "uscc": university.uscc})
    assert_envelope(duplicate, 409, "duplicate", {"uscc"})
    assert counts(session) == before


def test_422_names_nested_fields_with_flat_paths(
    api: Api, factory: Factory, session: Session
) -> None:
    university = factory.organisation("university")
    partner = factory.organisation("enterprise")
    tto = factory.user(university, Role.TTO)
    patent = factory.patent(tto)
    caller = api.as_(factory.token(tto))
    before = counts(session)

    response = caller.put(
        f"/patents/{patent.id}/owners",
        json={
            "owners": [
                {"organisation_id": str(university.id), "title_share": "-5", "income_share": "50"},
                {
                    "organisation_id": str(partner.id),
                    "title_share": "50",
                    "income_share": 0.5,
                    "colour": "blue",
                },
            ]
        },
    )

    body = assert_envelope(
        response,
        422,
        "validation_error",
        {"owners.0.title_share", "owners.1.income_share", "owners.1.colour"},
    )
    assert body["message"] == "invalid input"
    assert counts(session) == before


def test_shares_not_summing_to_100_are_named(api: Api, factory: Factory, session: Session) -> None:
    university = factory.organisation("university")
    partner = factory.organisation("enterprise")
    tto = factory.user(university, Role.TTO)
    patent = factory.patent(tto)
    caller = api.as_(factory.token(tto))
    before = counts(session)
    response = caller.put(
        f"/patents/{patent.id}/owners",
        json={
            "owners": [
                {"organisation_id": str(university.id), "title_share": "50", "income_share": "50"},
                {"organisation_id": str(partner.id), "title_share": "49.99", "income_share": "50"},
            ]
        },
    )
    body = assert_envelope(response, 422, "validation_error")
    assert any(error["field"].startswith("owners") for error in body["errors"])
    assert counts(session) == before


# Unexpected failures ------------------------------------------------------------------------


def test_internal_error_is_500_envelope_without_details(
    fresh_app: Callable[..., Flask],
    db: TransactionalDatabase,
    session: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def add_failing_routes(app: Flask) -> None:
        @app.get("/api/v1/boom")
        def boom() -> str:
            raise RuntimeError("secret detail: password=hunter2 in /srv/registry/app.py")

        @app.post("/api/v1/half-done")
        def half_done() -> str:
            session = get_session()
            session.add(
                Organisation(
                    name="半途而废",
                    kind=OrganisationKind.UNIVERSITY,
                    uscc=make_uscc(),
                    is_sme=False,
                    created_dt=datetime.now(UTC),
                )
            )
            session.flush()
            raise KeyError("half_done")

    app = fresh_app(database=db, configure=add_failing_routes)
    client = app.test_client()
    before = counts(session)

    for response in (client.get("/api/v1/boom"), client.post("/api/v1/half-done", json={})):
        body = assert_envelope(response, 500, "internal_error", set())
        text = response.get_data(as_text=True)
        for leak in ("Traceback", "hunter2", "/srv/", "half_done", "RuntimeError", "KeyError"):
            assert leak not in text
        assert "internal" in body["message"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        # The answer names an error id; the operator's log has it beside the details.
        error_id = response.headers["X-Error-Id"]
        assert re.fullmatch(r"[0-9a-f]{16}", error_id)
        assert error_id in body["message"]
        assert error_id in caplog.text
    # The failed write left nothing behind; the log has the details, but not the password.
    assert counts(session) == before
    assert "/srv/registry/app.py" in caplog.text
    assert "half_done" in caplog.text
    assert "hunter2" not in caplog.text


# Headers -------------------------------------------------------------------------------------


def security_headers_ok(response: Any) -> None:
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"]
    csp = headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "object-src 'none'", "frame-ancestors 'none'"):
        assert directive in csp
    assert "base-uri 'none'" in csp


@pytest.mark.parametrize(
    "path", ["/api/v1/organisations", "/api/v1/nope", "/api/v1/openapi.json", "/healthz", "/nope"]
)
def test_security_headers_on_every_response(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    security_headers_ok(response)
    if path.startswith("/api/"):
        assert response.headers["Cache-Control"] == "no-store"
    # Development and tests run without TLS, so no HSTS (it would pin plain-HTTP hosts).
    assert "Strict-Transport-Security" not in response.headers


def test_successful_api_response_has_security_headers(api: Api, factory: Factory) -> None:
    response = api.as_(factory.token(factory.admin())).get("/organisations")
    assert response.status_code == 200
    security_headers_ok(response)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/json"


def test_hsts_when_cookies_are_secure(fresh_app: Callable[..., Flask]) -> None:
    app = fresh_app({"session_cookie_secure": True})
    response = app.test_client().get("/healthz")
    hsts = response.headers["Strict-Transport-Security"]
    max_age = int(re.search(r"max-age=(\d+)", hsts).group(1))  # type: ignore[union-attr]
    assert max_age >= 31_536_000
    assert "includeSubDomains" in hsts


# Probes --------------------------------------------------------------------------------------


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_on_migrated_database(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "status": "ready",
        "checks": {
            "database": "ok",
            "migrations": "ok",
            "contract_font": "ok",
            "signing_key": "ok",
            "blob_store": "ok",
        },
    }


def test_readyz_follows_the_migration_state(
    fresh_app: Callable[..., Flask], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    client = fresh_app().test_client()

    empty = client.get("/readyz")
    assert empty.status_code == 503
    assert empty.get_json()["status"] == "not ready"
    assert "head is" in empty.get_json()["checks"]["migrations"]

    command.upgrade(alembic_config(url), "head")
    assert client.get("/readyz").status_code == 200

    command.downgrade(alembic_config(url), "base")
    behind = client.get("/readyz")
    assert behind.status_code == 503
    assert behind.get_json()["checks"]["database"] == "ok"
    assert behind.get_json()["checks"]["migrations"] != "ok"
    assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_readyz_when_database_is_unreachable(
    fresh_app: Callable[..., Flask], tmp_path: Path
) -> None:
    app = fresh_app({"database_url": f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"].startswith("unreachable")


# OpenAPI and docs ----------------------------------------------------------------------------


def test_openapi_lists_every_api_route(app: Flask, client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    paths = set(spec["paths"])
    for expected in (
        "/api/v1/tokens",
        "/api/v1/tokens/current",
        "/api/v1/organisations",
        "/api/v1/organisations/{organisation_id}",
        "/api/v1/organisations/{organisation_id}/users",
        "/api/v1/organisations/{organisation_id}/reward-policy",
        "/api/v1/patents",
        "/api/v1/patents/{patent_id}/owners",
    ):
        assert expected in paths
    # No API route is missing from the document.
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/") and rule.endpoint != "api-docs.openapi_json":
            assert re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule) in paths, rule.rule
    assert "bearer" in spec["components"]["securitySchemes"]


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src", "div": "data-spec"}
        for name, value in attrs:
            if name == wanted.get(tag) and value:
                self.urls.append(value)


def test_docs_page_uses_only_assets_served_by_the_app(client: FlaskClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "http://" not in html
    assert "https://" not in html
    parser = _Assets()
    parser.feed(html)
    scripts = [url for url in parser.urls if url.endswith(".js")]
    assert len(scripts) >= 2
    assert any(url.endswith(".css") for url in parser.urls)
    assert "/api/v1/openapi.json" in parser.urls
    for url in parser.urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.get_data(), url
        asset.close()
    # The page loads no inline script, so the CSP needs no 'unsafe-inline' for scripts.
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None
    directives = dict(
        [*part.strip().split(None, 1), ""][:2]
        for part in page.headers["Content-Security-Policy"].split(";")
        if part.strip()
    )
    scripts_from = directives.get("script-src", directives["default-src"])
    assert "'unsafe-inline'" not in scripts_from
    assert "'unsafe-eval'" not in scripts_from


def test_docs_assets_do_not_escape_their_folder(client: FlaskClient) -> None:
    for url in (
        "/api/docs/vendor/../../../../etc/passwd",
        "/api/docs/vendor/%2e%2e/%2e%2e/etc/passwd",
        "/api/docs/own/..%2f..%2fhttp.py",
        "/api/docs/own/nope.js",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "root:" not in response.get_data(as_text=True)


def test_commit_that_fails_on_a_busy_database_is_503_and_keeps_nothing(
    api: Api, factory: Factory, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write whose commit hits a locked database answers 503 with Retry-After, not 500,
    and the organisation it would have created does not exist."""
    from sqlalchemy.exc import OperationalError

    admin_api = api.as_(factory.token(factory.admin()))
    uscc = make_uscc()

    def busy_commit(self: Session) -> None:
        raise OperationalError("COMMIT", {}, Exception("database is locked"))

    monkeypatch.setattr(Session, "commit", busy_commit)
    response = admin_api.post(
        "/organisations",
        json={
            "name": "繁忙大学",
            "kind": "university",
            "uscc": uscc,
        },
    )
    monkeypatch.undo()
    assert response.status_code == 503
    assert response.json["code"] == "unavailable"
    assert response.headers["Retry-After"] == "1"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert session.scalar(select(func.count()).where(Organisation.uscc == uscc)) == 0
