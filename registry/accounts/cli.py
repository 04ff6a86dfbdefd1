"""``flask --app wsgi create-admin EMAIL``: bootstrap the clearing house and its first admin;
``flask --app wsgi unlock-user EMAIL``: lift a sign-in lock (registry/accounts/lockout.py)."""

from __future__ import annotations

import click
import marshmallow as ma
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from registry.accounts import lockout, services
from registry.accounts.models import User
from registry.core.cli import fail_on_registry_error
from registry.core.http import get_db
from registry.core.identifiers import IdentifierError, validate_uscc

MAX_NAME_LENGTH = 200  # users.name
_email = ma.validate.Email()


@click.command("create-admin")
@click.argument("email")
@click.option("--name", default="Administrator", show_default=True, help="the admin's name")
@click.option("--uscc", default=None, help="the clearing house's USCC (can be left for later)")
@with_appcontext  # also when invoked through app.cli (test runner), not only the flask command
def create_admin(email: str, name: str, uscc: str | None) -> None:
    """Create the clearing-house organisation (once) and an admin user EMAIL.

    The password comes from REGISTRY_ADMIN_PASSWORD, or is asked for at the prompt. A USCC
    given when the clearing house exists without one is recorded on it.
    """
    # Checked before the password prompt, so a typo does not cost the operator a retype.
    try:
        _email(email.strip())
    except ma.ValidationError:
        raise click.BadParameter("not a valid e-mail address", param_hint="EMAIL") from None
    if not name.strip() or len(name.strip()) > MAX_NAME_LENGTH:
        raise click.BadParameter(f"use 1 to {MAX_NAME_LENGTH} characters", param_hint="--name")
    if uscc:
        try:
            uscc = validate_uscc(uscc)
        except IdentifierError as exc:
            raise click.BadParameter(str(exc), param_hint="--uscc") from None
    password = current_app.config["REGISTRY_SETTINGS"].admin_password
    if not password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with fail_on_registry_error(), get_db().transaction() as session:
        user = services.bootstrap_admin(
            session, email=email.strip(), name=name.strip(), password=password, uscc=uscc
        )
        user_id = user.id
    click.echo(f"admin {email.strip()} created ({user_id})")


@click.command("unlock-user")
@click.argument("email")
@with_appcontext
def unlock_user(email: str) -> None:
    """Let EMAIL sign in again after failed attempts locked the account (an audit event)."""
    with get_db().transaction() as session:
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise click.BadParameter("no user has this e-mail address", param_hint="EMAIL")
        failures = user.failed_logins
        lockout.unlock(session, user)
    click.echo(f"{email.strip().lower()} unlocked ({failures} failed sign-ins cleared)")


def init_app(app: Flask) -> None:
    app.cli.add_command(create_admin)
    app.cli.add_command(unlock_user)
