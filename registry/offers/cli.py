"""``flask --app wsgi offers expire``: persist the end of offers whose term or patent ended."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from registry.core import clock
from registry.core.cli import fail_on_registry_error
from registry.core.http import get_db
from registry.offers import services

offers_cli = AppGroup("offers", help="Manage open-licence offers.")


@offers_cli.command("expire")
def expire_command() -> None:
    """Mark published offers expired (term or patent term ended) or lapsed (patent lapsed).

    Reads already show the ended status; this stores it, with one audit event per offer."""
    db = get_db()
    with fail_on_registry_error(), db.transaction() as session:
        ended = services.expire_offers(session, today=clock.today())
        lines = [f"{o.gazette_number} {o.id} {o.status.value}" for o in ended]
    for line in lines:
        click.echo(line)
    click.echo(f"{len(lines)} offers ended")


def init_app(app: Flask) -> None:
    app.cli.add_command(offers_cli)
