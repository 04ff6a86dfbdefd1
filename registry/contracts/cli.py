"""``flask --app wsgi contracts verify|rerender|issue|sweep|certificate``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from registry.contracts import services
from registry.contracts.issuing import office
from registry.contracts.signing import ca_certificate_pem
from registry.contracts.verification import UnreadablePdf
from registry.core.http import get_db
from registry.licences.models import Licence

contracts_cli = AppGroup("contracts", help="Issue, check and look after licence contracts.")

#: A blob younger than this may belong to a take-up still committing: never swept.
DEFAULT_GRACE_MINUTES = 60


@contracts_cli.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def verify_command(file: Path) -> None:
    """Check a contract PDF as POST /contracts/verify does. Exit 0 when valid, 1 when not,
    2 when the file is not a readable PDF."""
    with get_db().session(write=False) as session:
        try:
            verdict = services.verify(session, file.read_bytes())
        except UnreadablePdf as error:
            click.echo(f"not a readable PDF: {error.message}", err=True)
            raise SystemExit(2) from None
    click.echo(json.dumps(verdict, ensure_ascii=False, indent=2))
    raise SystemExit(0 if verdict["valid"] else 1)


@contracts_cli.command("rerender")
@click.argument("reference")
def rerender_command(reference: str) -> None:
    """Render licence REFERENCE's unsigned contract again and compare its SHA-256 with the
    recorded one. Exit 0 when they match, 1 when not."""
    with get_db().session(write=False) as session:
        contract = services.contract_by_reference(session, reference)
        if contract is None:
            raise click.ClickException(f"no issued contract for licence {reference}")
        result = services.rerender(contract)
    click.echo(f"recorded unsigned SHA-256: {result.recorded_sha256}")
    click.echo(f"rendered unsigned SHA-256: {result.rendered_sha256}")
    if result.matches:
        click.echo("match: the contract renders to the recorded bytes")
        return
    click.echo("MISMATCH", err=True)
    if result.template_changed:
        click.echo("  the template's files changed since the contract was issued", err=True)
    for name, (then, now) in result.renderer_changed.items():
        click.echo(f"  {name}: {then} then, {now} now", err=True)
    raise SystemExit(1)


@contracts_cli.command("issue")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
def issue_command(limit: int) -> None:
    """Issue the contracts of licences that have none yet (REGISTRY_CONTRACT_ISSUE=deferred),
    one transaction each; run it from a scheduler or a worker."""
    db = get_db()
    with db.session(write=False) as session:
        pending = [licence.id for licence in services.pending_licences(session, limit=limit)]
    issued = 0
    for licence_id in pending:
        with db.transaction() as session:
            licence = session.get_one(Licence, licence_id)
            contract = services.issue_or_raise(session, licence, actor=None, office_=office())
            click.echo(f"issued {licence.reference} {contract.signed_sha256}")
            issued += 1
    click.echo(f"{issued} contracts issued")


@contracts_cli.command("sweep")
@click.option(
    "--older-than",
    "minutes",
    type=click.IntRange(min=1),
    default=DEFAULT_GRACE_MINUTES,
    show_default=True,
    help="only blobs written at least this many minutes ago",
)
@click.option("--dry-run", is_flag=True, help="list the orphans, remove nothing")
def sweep_command(minutes: int, dry_run: bool) -> None:
    """Remove stored PDFs that no contract record names (left by a take-up that failed to
    commit)."""
    with get_db().session(write=False) as session:
        orphans = list(services.orphan_blobs(session, older_than_seconds=minutes * 60))
    store = office().store
    for blob in orphans:
        if not dry_run:
            store.delete(blob.digest)
        click.echo(f"{'would remove' if dry_run else 'removed'} {blob.digest} ({blob.size} bytes)")
    click.echo(f"{len(orphans)} orphan blobs {'found' if dry_run else 'removed'}")


@contracts_cli.command("certificate")
def certificate_command() -> None:
    """Print the CA certificate (PEM) contracts chain to, for ``pyhanko sign validate``."""
    click.echo(ca_certificate_pem(office().identity).decode("ascii"), nl=False)


def init_app(app: Flask) -> None:
    app.cli.add_command(contracts_cli)
