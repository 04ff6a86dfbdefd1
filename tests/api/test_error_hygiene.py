"""No stack trace or SQL in any error, and no password or token in any log (ASVS 5.0 16.5.1,
16.2.5; reliability.md T26, T29).

Failures are provoked for real inside requests — an exception, a constraint the database refuses,
a statement it cannot run — on the test's database, and the answers are read for anything of
the failure. The logs of real sign-ins and authenticated requests are captured at DEBUG, with a
handler that logs every request's headers and body (the careless debugging line this guards
against), and searched for the secrets.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation, OrganisationKind, User
from registry.app import create_app
from registry.core.actor import Role
from registry.core.http import get_session
from tests.conftest import TransactionalDatabase
from tests.factories import PASSWORD, Factory, make_uscc

SECRET = "test-secret-" + "e" * 32
LEAKS = (
    "Traceback",
    "SELECT",
    "INSERT",
    "no_such_table",
    "secret_column",
    "sqlalchemy",
    "psycopg",
    "sqlite",
    "IntegrityError",
    "ProgrammingError",
    "OperationalError",
    "CHECK constraint",
    "violates",
    ".py",
)


def add_failing_routes(app: Flask) -> None:
    @app.post("/api/v1/test/bad-sql")
    def bad_sql() -> str:
        get_session().execute(text("SELECT secret_column FROM no_such_table"))
        return "unreachable"

    @app.post("/api/v1/test/refused-row")
    def refused_row() -> str:
        # An enterprise without a size: the database's CHECK constraint refuses the row.
        get_session().add(
            Organisation(
                name="坏数据有限公司",
                kind=OrganisationKind.ENTERPRISE,
                uscc=make_uscc(),
                size=None,
                is_sme=False,
                created_dt=datetime.now(UTC),
            )
        )
        get_session().flush()
        return "unreachable"

    @app.get("/api/v1/test/crash")
    def crash() -> str:
        raise ValueError(f"unexpected state in {Path(__file__)}")


@pytest.fixture
def failing_app(tmp_path: Path, db: TransactionalDatabase) -> Flask:
    return create_app(
        {"env": "testing", "instance_path": tmp_path, "secret_key": SECRET},
        database=db,
        configure=add_failing_routes,
    )


def organisations(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Organisation)) or 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/test/bad-sql"),
        ("post", "/api/v1/test/refused-row"),
        ("get", "/api/v1/test/crash"),
    ],
    ids=["database-error", "constraint-violation", "exception"],
)
def test_a_failure_answers_a_generic_500_with_an_error_id(
    failing_app: Flask,
    session: Session,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
) -> None:
    before = organisations(session)

    response = getattr(failing_app.test_client(), method)(path)

    assert response.status_code == 500, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"code", "status", "message", "errors"}
    assert (body["code"], body["status"], body["errors"]) == ("internal_error", 500, [])
    error_id = response.headers["X-Error-Id"]
    assert re.fullmatch(r"[0-9a-f]{16}", error_id)
    assert error_id in body["message"]
    answer = response.get_data(as_text=True) + str(response.headers)
    for leak in LEAKS:
        assert leak.lower() not in answer.lower(), leak
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # Nothing was kept; the operator finds the details under the error id.
    assert organisations(session) == before
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None


# Logs ----------------------------------------------------------------------------------------


def add_chatty_logging(app: Flask) -> None:
    chatty = logging.getLogger("tests.chatty")

    @app.before_request
    def log_everything() -> None:
        chatty.debug("request %s headers=%s", request.path, dict(request.headers))
        chatty.debug("request body %s", request.get_data(as_text=True))


@pytest.fixture
def chatty_app(tmp_path: Path, db: TransactionalDatabase) -> Flask:
    return create_app(
        {"env": "testing", "instance_path": tmp_path, "secret_key": SECRET},
        database=db,
        configure=add_chatty_logging,
    )


def test_no_password_or_token_reaches_the_log(
    chatty_app: Flask, factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    user: User = factory.user(factory.organisation("university"), Role.TTO)
    client = chatty_app.test_client()
    wrong = "Wrong-but-plausible-passphrase-42"

    refused = client.post("/api/v1/tokens", json={"email": user.email, "password": wrong})
    issued = client.post("/api/v1/tokens", json={"email": user.email, "password": PASSWORD})
    token = issued.get_json()["token"]
    listed = client.get("/api/v1/organisations", headers={"Authorization": f"Bearer {token}"})
    revoked = client.delete("/api/v1/tokens/current", headers={"Authorization": f"bearer {token}"})

    assert (refused.status_code, issued.status_code) == (401, 201)
    assert (listed.status_code, revoked.status_code) == (200, 204)
    logged = caplog.text
    # The chatty lines were written: the requests and their e-mail are in the log …
    assert "request /api/v1/tokens headers=" in logged
    assert "request /api/v1/organisations headers=" in logged
    assert user.email in logged
    assert "'Authorization': '[REDACTED]'" in logged
    assert '"password": [REDACTED]' in logged
    # … but not one secret.
    for secret in (wrong, PASSWORD, token, token.removeprefix("olr_")):
        assert secret not in logged, secret


def test_secrets_in_an_exception_are_kept_out_of_the_log(
    tmp_path: Path, db: TransactionalDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    def add_route(app: Flask) -> None:
        @app.post("/api/v1/test/leaky")
        def leaky() -> str:
            data: dict[str, Any] = request.get_json()
            raise RuntimeError(f"could not handle {data} with {request.headers['Authorization']}")

    app = create_app(
        {"env": "testing", "instance_path": tmp_path, "secret_key": SECRET},
        database=db,
        configure=add_route,
    )
    token = "olr_" + "S3cr3tT0k3nV4lu3" * 2
    response = app.test_client().post(
        "/api/v1/test/leaky",
        json={"email": "a@b.test", "password": "hunter2-hunter2"},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status_code == 500
    assert "could not handle" in caplog.text
    assert "a@b.test" in caplog.text
    for secret in ("hunter2-hunter2", "S3cr3tT0k3nV4lu3"):
        assert secret not in caplog.text
        assert secret not in response.get_data(as_text=True)


def test_every_log_record_is_cleaned_whoever_logs_it(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """Installed by the app factory (``app``) for the whole process: libraries' loggers too."""
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    logging.getLogger("some.library").info(
        "connecting to %s", "postgresql://registry:pg-Pa55word@db.internal/registry"
    )
    logging.getLogger("sqlalchemy.engine").info(
        "[parameters: ('x@y.test', '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA')]"
    )
    assert "pg-Pa55word" not in caplog.text
    assert "postgresql://registry:[REDACTED]@db.internal/registry" in caplog.text
    assert "aGFzaA" not in caplog.text
    assert "x@y.test" in caplog.text
