"""``flask --app wsgi clearing true-ups [--date D]``."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import with_appcontext

from registry.clearing import reports
from registry.core import clock
from registry.core.http import get_db


@click.command("true-ups")
@with_appcontext
@click.option(
    "--date",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="treat this day as today (default: today in Beijing)",
)
def true_ups_command(on: datetime | None) -> None:
    """Issue the minimum true-up statement of every licence year that has ended (once)."""
    day = on.date() if on else clock.today()
    with get_db().transaction() as session:
        issued = reports.issue_true_ups(session, on=day)
        lines = [f"issued {s.number} {s.amount_due} fen for licence {s.licence_id}" for s in issued]
    for line in lines:
        click.echo(line)
    click.echo(f"{len(lines)} true-up statements issued as of {day.isoformat()}")


COMMANDS = [true_ups_command]
