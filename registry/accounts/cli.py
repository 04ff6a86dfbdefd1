"""``flask --app wsgi create-admin EMAIL``: bootstrap the clearing house and its first admin."""

from __future__ import annotations

import click
from flask import Flask, current_app

from registry.accounts import services
from registry.core.cli import fail_on_registry_error
from registry.core.http import get_db
from registry.core.identifiers import IdentifierError, validate_uscc


@click.command("create-admin")
@click.argument("email")
@click.option("--name", default="Administrator", show_default=True, help="the admin's name")
@click.option("--uscc", default=None, help="the clearing house's USCC (can be left for later)")
def create_admin(email: str, name: str, uscc: str | None) -> None:
    """Create the clearing-house organisation (once) and an admin user EMAIL.

    The password comes from REGISTRY_ADMIN_PASSWORD, or is asked for at the prompt.
    """
    password = current_app.config["REGISTRY_SETTINGS"].admin_password
    if not password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if uscc:
        try:
            uscc = validate_uscc(uscc)
        except IdentifierError as exc:
            raise click.BadParameter(str(exc), param_hint="--uscc") from None
    with fail_on_registry_error(), get_db().transaction() as session:
        user = services.bootstrap_admin(
            session, email=email, name=name, password=password, uscc=uscc
        )
        user_id = user.id
    click.echo(f"admin {email} created ({user_id})")


def init_app(app: Flask) -> None:
    app.cli.add_command(create_admin)
