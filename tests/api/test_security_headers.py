"""Security headers on every response, and the session cookie's flags (ASVS 5.0 3.3.1-3.3.4,
3.4.1-3.4.6, 14.3.2; reliability.md T24, T26).

The walk visits every URL rule of the app with each of its methods and one it does not allow,
anonymously and with an admin's and a licensee's token, so successes, 401/403/404/405/422s and
static files are all covered; 413 and 500 are provoked separately. Path arguments get
placeholder values (a random UUID, a file name), which is enough: the headers must be on the
answer whatever it is.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, session
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage
from werkzeug.routing import Rule
from werkzeug.test import encode_multipart

from registry.app import create_app
from registry.config import load_settings
from tests.conftest import TransactionalDatabase
from tests.factories import Factory
from tests.factories.world import build_world

SECRET = "test-secret-" + "h" * 32
# Files that exist, so the walk sees a served static file and not only a 404.
FILES = {"apidocs.vendor": "swagger-ui.css", "apidocs.own": "init.js"}
SAFE_REFERRER_POLICIES = {
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
}
YEAR = 31_536_000


def csp_directives(header: str) -> dict[str, str]:
    directives = {}
    for part in header.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            directives[name] = value.strip()
    return directives


def header_problems(response: Any, *, hsts: bool) -> list[str]:
    headers = response.headers
    problems = []
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("no X-Content-Type-Options: nosniff")
    csp = csp_directives(headers.get("Content-Security-Policy", ""))
    scripts = csp.get("script-src", csp.get("default-src", ""))
    expected = {
        "default-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "frame-ancestors": "'none'",
    }
    for directive, value in expected.items():
        if csp.get(directive) != value:
            problems.append(f"CSP {directive} is {csp.get(directive)!r}, not {value}")
    if not scripts or "'unsafe-inline'" in scripts or "'unsafe-eval'" in scripts or "*" in scripts:
        problems.append(f"CSP lets scripts run from {scripts!r}")
    if headers.get("Referrer-Policy") not in SAFE_REFERRER_POLICIES:
        problems.append(f"Referrer-Policy {headers.get('Referrer-Policy')!r}")
    if "camera=()" not in headers.get("Permissions-Policy", ""):
        problems.append("no Permissions-Policy")
    sts = headers.get("Strict-Transport-Security")
    if hsts:
        max_age = re.search(r"max-age=(\d+)", sts or "")
        if not max_age or int(max_age.group(1)) < YEAR or "includeSubDomains" not in (sts or ""):
            problems.append(f"HSTS {sts!r}")
    elif sts is not None:
        problems.append("HSTS without TLS (it would pin a plain-HTTP host)")
    if response.request.path.startswith("/api/v1/") and "no-store" not in headers.get(
        "Cache-Control", ""
    ):
        problems.append(f"API answer cacheable: Cache-Control {headers.get('Cache-Control')!r}")
    if response.status_code >= 500:
        problems.append(f"server error {response.status_code}")
    return problems


def concrete_path(rule: Rule) -> str:
    values: dict[str, Any] = {}
    for argument in rule.arguments:
        converter = type(rule._converters[argument]).__name__
        if converter == "UUIDConverter":
            values[argument] = uuid.uuid4()
        elif converter == "PathConverter":
            values[argument] = FILES.get(rule.endpoint, "no-such-file.css")
        else:
            values[argument] = "x"
    built = rule.build(values, append_unknown=False)
    assert built is not None
    return built[1]


def every_request(app: Flask) -> Iterator[tuple[str, str]]:
    requests = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        path = concrete_path(rule)
        methods = set(rule.methods or ())
        refused = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in methods)
        requests += [(method, path) for method in sorted(methods | {refused})]
    # Signing out revokes the caller's token: last, so the rest of the walk is authenticated.
    yield from sorted(requests, key=lambda r: r == ("DELETE", "/api/v1/tokens/current"))


def walk(client: FlaskClient, app: Flask, token: str | None, *, hsts: bool) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    problems = []
    count = 0
    for method, path in every_request(app):
        body = {} if method in ("POST", "PUT", "PATCH") else None
        response = client.open(path, method=method, headers=headers, json=body)
        count += 1
        problems += [
            f"{method} {path} → {response.status_code}: {p}"
            for p in header_problems(response, hsts=hsts)
        ]
        response.close()
    assert count > 100  # every rule was walked, with several methods each
    return problems


def test_every_route_answers_with_the_security_headers(
    app: Flask, client: FlaskClient, factory: Factory
) -> None:
    world = build_world(factory)
    problems = []
    for caller in (None, world.admin.token, world.licensee.token):
        problems += walk(client, app, caller, hsts=False)
    assert not problems, "\n".join(problems)


def test_with_tls_every_response_carries_hsts(tmp_path: Path, db: TransactionalDatabase) -> None:
    app = create_app(
        {
            "env": "testing",
            "instance_path": tmp_path,
            "secret_key": SECRET,
            "session_cookie_secure": True,
        },
        database=db,
    )
    problems = walk(app.test_client(), app, None, hsts=True)
    assert not problems, "\n".join(problems)


def test_oversize_and_failing_requests_carry_the_headers(
    tmp_path: Path, db: TransactionalDatabase, factory: Factory
) -> None:
    def add_failure(app: Flask) -> None:
        @app.get("/api/v1/explode")
        def explode() -> str:
            raise RuntimeError("boom")

    app = create_app(
        {"env": "testing", "instance_path": tmp_path, "secret_key": SECRET},
        database=db,
        configure=add_failure,
    )
    client = app.test_client()
    token = factory.token(factory.admin())
    # Encoded in memory: the test client would spool a large upload to a file it never closes.
    upload = FileStorage(io.BytesIO(b"x" * (9 * 1024 * 1024)), filename="patents.csv")
    boundary, body = encode_multipart({"file": upload})
    huge = client.post(
        "/api/v1/patents/import",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers={"Authorization": f"Bearer {token}"},
    )
    failed = client.get("/api/v1/explode")

    assert huge.status_code == 413
    assert header_problems(huge, hsts=False) == []
    assert failed.status_code == 500
    assert header_problems(failed, hsts=False) == ["server error 500"]


# Session cookie ------------------------------------------------------------------------------


def cookie_app(tmp_path: Path, db: TransactionalDatabase, **overrides: Any) -> Flask:
    def add_route(app: Flask) -> None:
        @app.post("/cookie-probe")
        def probe() -> str:
            session["signed_in"] = True
            return "ok"

    settings = {"env": "testing", "instance_path": tmp_path, "secret_key": SECRET, **overrides}
    return create_app(settings, database=db, configure=add_route)


def set_cookie(app: Flask) -> dict[str, str | bool]:
    response = app.test_client().post("/cookie-probe")
    (header,) = response.headers.getlist("Set-Cookie")
    name_value, *attributes = (part.strip() for part in header.split(";"))
    cookie: dict[str, str | bool] = {"name": name_value.split("=", 1)[0]}
    for attribute in attributes:
        key, _, value = attribute.partition("=")
        cookie[key.lower()] = value or True
    return cookie


def test_session_cookie_over_tls_is_host_bound_secure_and_hidden_from_scripts(
    tmp_path: Path, db: TransactionalDatabase
) -> None:
    cookie = set_cookie(cookie_app(tmp_path, db, session_cookie_secure=True))
    assert cookie["name"] == "__Host-session"
    # The __Host- prefix is honoured only with Secure, Path=/ and no Domain (RFC 6265bis §4.1.3.2).
    assert cookie["secure"] is True
    assert cookie["path"] == "/"
    assert "domain" not in cookie
    assert cookie["httponly"] is True
    assert str(cookie["samesite"]).lower() in ("lax", "strict")


def test_session_cookie_in_development_is_httponly_and_samesite(
    tmp_path: Path, db: TransactionalDatabase
) -> None:
    cookie = set_cookie(cookie_app(tmp_path, db))
    # Plain HTTP: no Secure flag, so no __Host- prefix (a browser would drop the cookie).
    assert cookie["name"] == "session"
    assert "secure" not in cookie
    assert cookie["httponly"] is True
    assert str(cookie["samesite"]).lower() in ("lax", "strict")


def test_production_uses_secure_host_cookies(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "REGISTRY_ENV": "production",
            "REGISTRY_INSTANCE_PATH": str(tmp_path),
            "REGISTRY_SECRET_KEY": "Kq8-vT2pZ_" * 4,
            "REGISTRY_SIGNING_P12": str(tmp_path / "signer.p12"),
        }
    )
    config = settings.flask_config()
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SESSION_COOKIE_NAME"] == "__Host-session"
    assert config["SESSION_COOKIE_HTTPONLY"] is True
    assert config["SESSION_COOKIE_SAMESITE"] in ("Lax", "Strict")
    assert config["DEBUG"] is False


@pytest.mark.parametrize("path", ["/console", "/api/console", "/api/v1/console"])
def test_no_debugger_console(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404
