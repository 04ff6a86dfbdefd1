"""``flask --app wsgi settle --period 2026-Q1`` (or ``--from 2026-01-01 --to 2026-03-31``).

Settles every payment received in the period and not settled yet, as
``POST /api/v1/settlements`` does, in one transaction. Periods: a quarter ``2026-Q1``, a month
``2026-03`` or a year ``2026``. With nothing left to settle it says so and exits 0, so a
scheduler may run it again safely; any other refusal prints the reasons and exits 1.
"""

from __future__ import annotations

import calendar
import re
from datetime import date

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from registry.accounts.models import User
from registry.accounts.services import actor_of
from registry.clearing import settlement, settlement_views
from registry.config import Settings
from registry.core.actor import Actor
from registry.core.cli import fail_on_registry_error
from registry.core.http import get_db
from registry.core.money import format_money, from_fen

PERIOD = re.compile(r"^(\d{4})(?:-(Q[1-4]|\d{2}))?$")


def parse_period(text: str) -> tuple[date, date]:
    """``2026-Q1`` → 2026-01-01..2026-03-31; ``2026-03`` → the month; ``2026`` → the year."""
    match = PERIOD.match(text.strip().upper())
    if match is None:
        raise click.BadParameter("a period is YYYY-Qn, YYYY-MM or YYYY, e.g. 2026-Q1")
    year, part = int(match.group(1)), match.group(2)
    if part is None:
        return date(year, 1, 1), date(year, 12, 31)
    if part.startswith("Q"):
        first = 3 * (int(part[1]) - 1) + 1
        return date(year, first, 1), date(year, first + 2, _last_day(year, first + 2))
    month = int(part)
    if not 1 <= month <= 12:
        raise click.BadParameter(f"no month {month}")
    return date(year, month, 1), date(year, month, _last_day(year, month))


def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _money(fen: int | None) -> str:
    return format_money(from_fen(fen or 0))


@click.command("settle")
@with_appcontext
@click.option("--period", help="YYYY-Qn, YYYY-MM or YYYY")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="first day")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="last day")
@click.option("--as", "as_email", help="e-mail of the admin running it (default: the operator)")
def settle_command(period: str | None, start: object, end: object, as_email: str | None) -> None:
    """Settle the payments received in a period to co-owners, beneficiaries and inventors."""
    if period and (start or end):
        raise click.UsageError("give --period, or --from and --to, not both")
    if period:
        period_start, period_end = parse_period(period)
    elif start and end:
        period_start, period_end = start.date(), end.date()  # type: ignore[attr-defined]
    else:
        raise click.UsageError("give --period YYYY-Qn, or --from and --to")
    settings: Settings = current_app.config["REGISTRY_SETTINGS"]
    with fail_on_registry_error(), get_db().transaction() as session:
        actor: Actor | None = None
        if as_email:
            user = session.scalar(select(User).where(User.email == as_email.strip().lower()))
            if user is None or not user.is_active:
                raise click.ClickException(f"no active user {as_email}")
            actor = actor_of(user)
        try:
            run = settlement.run_settlement(
                session,
                actor=actor,
                period_start=period_start,
                period_end=period_end,
                fee_rate=settings.settlement_fee_rate,
                minimum_payout=settings.minimum_payout,
            )
        except settlement.NothingToSettle as refusal:
            click.echo(refusal.message)
            for error in refusal.errors:
                click.echo(f"  held {error.field}: {'; '.join(error.messages)}")
            return
        view = settlement_views.run_event(session, run.id)
    click.echo(
        f"{run.number}: {view['payments']} payments {period_start}..{period_end}, "
        f"received {_money(run.total_received)}, fees {_money(run.total_fees)}, "
        f"distributed {_money(run.total_distributed)}"
    )
    paid = sum(p["paid"] for p in view["payouts"])
    carried = sum(p["carried_out"] for p in view["payouts"])
    click.echo(f"paid out {_money(paid)} to payees, carried forward {_money(carried)}")
    for held in view["held"]:
        click.echo(f"held payment {held['payment_id']}: {held['reason']}")


COMMANDS = [settle_command]
