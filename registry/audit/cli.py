"""``flask --app wsgi audit verify``: recompute the chain from the database;
``flask --app wsgi audit checkpoint``: sign a checkpoint (run it from a scheduler, hourly)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from registry.audit import checkpoints, services
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


@audit_cli.command("checkpoint")
def checkpoint_command() -> None:
    """Sign a checkpoint of every event so far and print its note (keep it: it is what the log
    must stay consistent with). On an idle log the latest checkpoint is printed instead."""
    with get_db().transaction() as session:
        issued = checkpoints.issue(session, actor=None, signer_=checkpoints.signer())
        checkpoint = issued.checkpoint
        size, text = checkpoint.tree_size, checkpoint.note
    if issued.created:
        click.echo(f"issued a checkpoint of {size} events", err=True)
    else:
        click.echo(f"nothing appended since the checkpoint of {size} events: unchanged", err=True)
    click.echo(text, nl=False)


def init_app(app: Flask) -> None:
    app.cli.add_command(audit_cli)
