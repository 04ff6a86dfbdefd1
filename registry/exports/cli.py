"""``flask --app wsgi export DIR``: the operator's export bundle for auditors (unscoped)."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext

from registry.audit import checkpoints
from registry.contracts.issuing import office
from registry.core.http import get_db
from registry.exports import bundle


@click.command("export")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@with_appcontext
def export_command(directory: Path) -> None:
    """Write every audit event, register and contract, a manifest and a fresh signed
    checkpoint into DIR (new or empty), for `python -m registry.audit.verify export DIR`."""
    try:
        written = bundle.write_bundle(
            directory, db=get_db(), signer=checkpoints.signer(), store=office().store
        )
    except bundle.BundleError as exc:
        raise click.ClickException(str(exc)) from None
    rows = ", ".join(f"{name} {count}" for name, count in written.rows.items())
    click.echo(f"exported to {written.directory}: {written.events} audit events; rows: {rows}")
    click.echo(f"{written.contracts} contracts; the checkpoint covering the export:")
    click.echo(written.checkpoint, nl=False)
