"""``flask --app wsgi create-admin EMAIL``: the bootstrap a new operator runs first.

It creates the clearing-house organisation once and an admin user in it, reading the password
from ``REGISTRY_ADMIN_PASSWORD`` or a prompt; a refused run creates nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation, OrganisationKind, User
from registry.accounts.passwords import verify_password
from registry.app import create_app
from registry.audit.models import AuditEvent
from registry.core.actor import Role
from registry.core.identifiers import uscc_check_character
from tests.conftest import Api, TransactionalDatabase
from tests.factories import Factory, make_uscc

ADMIN_PASSWORD = "operator pass phrase 2026"


def make_app(
    db: TransactionalDatabase, database_url: str, instance_path: Path, **overrides: Any
) -> Flask:
    """An app sharing the test's rolled-back database, with its own settings."""
    return create_app(
        {
            "env": "testing",
            "database_url": database_url,
            "instance_path": instance_path,
            "secret_key": "cli-secret-" + "q" * 32,
            **overrides,
        },
        database=db,
    )


@pytest.fixture
def cli_app(db: TransactionalDatabase, database_url: str, instance_path: Path) -> Flask:
    return make_app(db, database_url, instance_path, admin_password=ADMIN_PASSWORD)


def run(app: Flask, *args: str, input: str | None = None) -> Result:
    return app.test_cli_runner().invoke(args=list(args), input=input)


def counts(session: Session) -> tuple[int, int, int]:
    return (
        session.scalar(select(func.count()).select_from(Organisation)) or 0,
        session.scalar(select(func.count()).select_from(User)) or 0,
        session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
    )


def houses(session: Session) -> list[Organisation]:
    return list(
        session.scalars(
            select(Organisation).where(Organisation.kind == OrganisationKind.CLEARING_HOUSE)
        )
    )


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email))


def test_first_run_creates_the_clearing_house_and_an_admin(
    cli_app: Flask, session: Session
) -> None:
    before = counts(session)

    result = run(cli_app, "create-admin", "Ops@Registry.example", "--name", "运营管理员")

    assert result.exit_code == 0, result.output
    assert "admin Ops@Registry.example created" in result.output
    assert ADMIN_PASSWORD not in result.output
    [house] = houses(session)
    assert house.uscc is None
    assert house.name
    admin = user_by_email(session, "ops@registry.example")
    assert admin is not None
    assert (admin.role, admin.organisation_id, admin.name) == (Role.ADMIN, house.id, "运营管理员")
    assert admin.is_active
    assert verify_password(admin.password_hash, ADMIN_PASSWORD)
    assert ADMIN_PASSWORD not in admin.password_hash
    assert counts(session) == (before[0] + 1, before[1] + 1, before[2] + 2)
    actions = session.scalars(
        select(AuditEvent.action).order_by(AuditEvent.seq.desc()).limit(2)
    ).all()
    assert list(actions) == ["user.created", "organisation.created"]


def test_created_admin_can_sign_in_and_create_organisations(
    cli_app: Flask, api: Api, session: Session
) -> None:
    assert run(cli_app, "create-admin", "ops@registry.example").exit_code == 0

    token = api.post("/tokens", json={"email": "ops@registry.example", "password": ADMIN_PASSWORD})
    assert token.status_code == 201, token.json
    created = api.as_(token.json["token"]).post(
        "/organisations", json={"name": "某某大学", "kind": "university", "uscc": make_uscc()}
    )
    assert created.status_code == 201, created.json


def test_second_admin_reuses_the_clearing_house(cli_app: Flask, session: Session) -> None:
    assert run(cli_app, "create-admin", "first@registry.example").exit_code == 0
    before = counts(session)

    result = run(cli_app, "create-admin", "second@registry.example")

    assert result.exit_code == 0, result.output
    [house] = houses(session)
    first = user_by_email(session, "first@registry.example")
    second = user_by_email(session, "second@registry.example")
    assert first is not None
    assert second is not None
    assert first.organisation_id == second.organisation_id == house.id
    assert counts(session) == (before[0], before[1] + 1, before[2] + 1)


def test_password_from_the_prompt(
    db: TransactionalDatabase, database_url: str, instance_path: Path, session: Session
) -> None:
    app = make_app(db, database_url, instance_path)  # no REGISTRY_ADMIN_PASSWORD
    assert app.config["REGISTRY_SETTINGS"].admin_password is None

    result = run(app, "create-admin", "prompted@registry.example", input=f"{ADMIN_PASSWORD}\n" * 2)

    assert result.exit_code == 0, result.output
    assert ADMIN_PASSWORD not in result.output  # hidden input is not echoed
    admin = user_by_email(session, "prompted@registry.example")
    assert admin is not None
    assert verify_password(admin.password_hash, ADMIN_PASSWORD)


def test_prompt_needs_matching_confirmation(
    db: TransactionalDatabase, database_url: str, instance_path: Path, session: Session
) -> None:
    app = make_app(db, database_url, instance_path)
    before = counts(session)
    result = run(
        app, "create-admin", "typo@registry.example", input=f"{ADMIN_PASSWORD}\nsomething else\n"
    )
    assert result.exit_code != 0
    assert "do not match" in result.output
    assert counts(session) == before


@pytest.mark.parametrize("password", ["short", "eleven char", "x" * 129, "weak@registry.example"])
def test_weak_password_creates_nothing(
    db: TransactionalDatabase,
    database_url: str,
    instance_path: Path,
    session: Session,
    password: str,
) -> None:
    app = make_app(db, database_url, instance_path, admin_password=password)
    before = counts(session)

    result = run(app, "create-admin", "weak@registry.example")

    assert result.exit_code != 0
    assert "Error:" in result.output
    assert "password" in result.output
    assert "Traceback" not in result.output
    assert counts(session) == before
    assert houses(session) == []


def test_duplicate_email_is_refused(cli_app: Flask, session: Session) -> None:
    assert run(cli_app, "create-admin", "ops@registry.example").exit_code == 0
    before = counts(session)

    result = run(cli_app, "create-admin", "OPS@registry.example")

    assert result.exit_code != 0
    assert "Error:" in result.output
    assert "email" in result.output
    assert counts(session) == before


@pytest.mark.parametrize(
    "email", ["not-an-email", "ops@", "@registry.example", "ops registry@example.test", ""]
)
def test_malformed_email_is_refused(cli_app: Flask, session: Session, email: str) -> None:
    before = counts(session)
    result = run(cli_app, "create-admin", email)
    assert result.exit_code != 0
    assert "EMAIL" in result.output or "e-mail" in result.output
    assert counts(session) == before


def test_overlong_name_is_refused(cli_app: Flask, session: Session) -> None:
    before = counts(session)
    result = run(cli_app, "create-admin", "ops@registry.example", "--name", "名" * 201)
    assert result.exit_code != 0
    assert "--name" in result.output
    assert counts(session) == before


def test_uscc_is_validated_and_stored(cli_app: Flask, session: Session) -> None:
    uscc = make_uscc()
    result = run(cli_app, "create-admin", "ops@registry.example", "--uscc", uscc.lower())
    assert result.exit_code == 0, result.output
    [house] = houses(session)
    assert house.uscc == uscc


@pytest.mark.parametrize("kind", ["check-character", "length", "letters"])
def test_invalid_uscc_is_refused(cli_app: Flask, session: Session, kind: str) -> None:
    uscc = make_uscc()
    bad = {
        "check-character": uscc[:17]
        + next(c for c in "0123456789" if c != uscc_check_character(uscc[:17])),
        "length": uscc[:-1],
        "letters": "91350100I000100Y43",
    }[kind]
    before = counts(session)

    result = run(cli_app, "create-admin", "ops@registry.example", "--uscc", bad)

    assert result.exit_code == 2, result.output
    assert "--uscc" in result.output
    assert counts(session) == before


def test_uscc_can_be_supplied_later(cli_app: Flask, session: Session) -> None:
    assert run(cli_app, "create-admin", "first@registry.example").exit_code == 0
    uscc = make_uscc()

    result = run(cli_app, "create-admin", "second@registry.example", "--uscc", uscc)

    assert result.exit_code == 0, result.output
    [house] = houses(session)
    assert house.uscc == uscc


def test_a_different_uscc_for_the_existing_clearing_house_is_refused(
    cli_app: Flask, session: Session
) -> None:
    uscc = make_uscc()
    assert run(cli_app, "create-admin", "first@registry.example", "--uscc", uscc).exit_code == 0
    before = counts(session)

    result = run(cli_app, "create-admin", "second@registry.example", "--uscc", make_uscc())

    assert result.exit_code != 0
    assert "uscc" in result.output
    assert counts(session) == before
    [house] = houses(session)
    assert house.uscc == uscc


def test_uscc_of_another_organisation_is_refused(
    cli_app: Flask, session: Session, factory: Factory
) -> None:
    university = factory.organisation("university")
    before = counts(session)
    result = run(cli_app, "create-admin", "ops@registry.example", "--uscc", university.uscc)
    assert result.exit_code != 0
    assert "uscc" in result.output
    assert counts(session) == before
