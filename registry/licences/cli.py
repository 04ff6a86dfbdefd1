"""``flask --app wsgi licences expire [--date YYYY-MM-DD]``."""

from __future__ import annotations

from datetime import date, datetime

import click
from flask import Flask
from flask.cli import AppGroup

from registry.core import clock
from registry.core.http import get_db
from registry.licences import services

licences_cli = AppGroup("licences", help="Manage licences taken on open-licence offers.")


@licences_cli.command("expire")
@click.option(
    "--date",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="treat this day as today (default: today in Beijing)",
)
def expire_command(on: datetime | None) -> None:
    """Mark live licences whose end date has passed as expired (one audit event each)."""
    today: date = on.date() if on else clock.today()
    with get_db().transaction() as session:
        expired = services.expire_licences(session, today=today)
        references = [licence.reference for licence in expired]
    for reference in references:
        click.echo(f"expired {reference}")
    click.echo(f"{len(references)} licences expired as of {today.isoformat()}")


def init_app(app: Flask) -> None:
    app.cli.add_command(licences_cli)
