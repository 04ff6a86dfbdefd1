"""``flask --app wsgi audit verify``: recompute the chain from the database."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from registry.audit import services
from registry.core.http import get_db

audit_cli = AppGroup("audit", help="Inspect and verify the audit log.")


@audit_cli.command("verify")
def verify_command() -> None:
    """Recompute every leaf and chain hash; exit 1 naming the first bad event."""
    session = get_db().session(write=False)
    try:
        verdict = services.verify(session)
    finally:
        session.close()
    if verdict.ok:
        click.echo(f"ok: {verdict.size} events, chain head {verdict.chain_hash}")
        return
    where = f" at event {verdict.first_bad_seq}" if verdict.first_bad_seq else ""
    click.echo(f"BROKEN{where}: {verdict.problem}", err=True)
    click.echo(f"the first {verdict.size} events verify", err=True)
    raise SystemExit(1)


def init_app(app: Flask) -> None:
    app.cli.add_command(audit_cli)
