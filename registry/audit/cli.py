"""``flask --app wsgi audit verify``: recompute the chain from the database;
``flask --app wsgi audit checkpoint``: sign a checkpoint (run it from a scheduler, hourly);
``flask --app wsgi audit verify-export DIR``: check an export bundle as an auditor would
(the offline verifier's own code, :mod:`registry.audit.verify_export`)."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import click
from flask import Flask
from flask.cli import AppGroup

from registry.audit import checkpoints, services, verify_export
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


@audit_cli.command("verify-export")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--kept", type=click.File(encoding="utf-8"), help="an older checkpoint you kept")
@click.option(
    "--key",
    type=click.File(encoding="utf-8"),
    help="the log's key (default: this registry's checkpoint key, not the bundle's)",
)
def verify_export_command(directory: Path, kept: TextIO | None, key: TextIO | None) -> None:
    """Verify an export bundle: every event, the root and signature, the kept checkpoint's
    consistency, every file, register row and contract. Exit 1 naming every mismatch."""
    vkey = key.read() if key else checkpoints.signer().verifier.vkey
    report = verify_export.verify_bundle(directory, kept=kept.read() if kept else None, key=vkey)
    out, err = verify_export.render(report)
    for line in out:
        click.echo(line)
    for line in err:
        click.echo(line, err=True)
    if not report.ok:
        raise SystemExit(1)


def init_app(app: Flask) -> None:
    app.cli.add_command(audit_cli)
