"""``flask --app wsgi clearing true-ups [--date D]``."""

from __future__ import annotations

from datetime import datetime

import click
from flask.cli import with_appcontext

from registry.clearing import true_ups
from registry.core import clock
from registry.core.http import get_db
from registry.core.money import format_money, from_fen


@click.command("true-ups")
@with_appcontext
@click.option(
    "--date",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="as of this day, not after today (default: today in Beijing)",
)
def true_ups_command(on: datetime | None) -> None:
    """Issue the minimum true-up statement of every licence year that has ended (once)."""
    day = on.date() if on else clock.today()
    if day > clock.today():
        # A year has not ended before it has: billing its minimum early would be wrong.
        raise click.BadParameter("a day after today", param_hint="--date")
    with get_db().transaction() as session:
        issued = true_ups.issue_true_ups(session, on=day)
        lines = [
            f"issued {s.number} CNY {format_money(from_fen(s.amount_due))} for licence "
            f"{s.licence_id} (year ending {s.period_end})"
            for s in issued
        ]
    for line in lines:
        click.echo(line)
    click.echo(f"{len(lines)} true-up statements issued as of {day.isoformat()}")


COMMANDS = [true_ups_command]
