"""``flask --app wsgi clearing overdue [--date YYYY-MM-DD]`` and ``clearing send-mail``."""

from __future__ import annotations

from datetime import date, datetime

import click
from flask import current_app
from flask.cli import with_appcontext

from registry.clearing import outbox
from registry.clearing.overdue import run_overdue
from registry.config import Settings
from registry.core import clock
from registry.core.http import get_db


@click.command("overdue")
@with_appcontext
@click.option(
    "--date",
    "on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="treat this day as today (default: today in Beijing)",
)
def overdue_command(on: datetime | None) -> None:
    """Mark overdue statements, queue reminders (at most one per statement per 7 days) and
    suspend licences overdue beyond the grace period (CC Art. 873). Then run send-mail."""
    as_of: date = on.date() if on else clock.today()
    with get_db().transaction() as session:
        run = run_overdue(session, as_of=as_of)
    for number in run.marked:
        click.echo(f"overdue {number}")
    for number in run.reminded:
        click.echo(f"reminder queued for {number}")
    for reference in run.suspended:
        click.echo(f"suspended {reference}")
    click.echo(
        f"{len(run.marked)} statements newly overdue, {run.messages} reminders queued, "
        f"{len(run.suspended)} licences suspended as of {as_of.isoformat()}"
    )


@click.command("send-mail")
@with_appcontext
def send_mail_command() -> None:
    """Deliver the mail outbox: by SMTP when smtp_url is set, else as .eml files in
    <instance>/mail/. Sends nothing twice; exits 1 if a message could not be delivered."""
    settings: Settings = current_app.config["REGISTRY_SETTINGS"]
    try:
        delivery = outbox.send_pending(get_db(), settings)
    except outbox.MailUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    where = "SMTP" if delivery.transport == "smtp" else str(outbox.mail_folder(settings))
    click.echo(f"{len(delivery.sent)} messages sent via {where}")
    for message_id, error in delivery.failed.items():
        click.echo(f"not delivered {message_id}: {error}", err=True)
    if delivery.failed:
        raise SystemExit(1)


COMMANDS = [overdue_command, send_mail_command]
