"""``flask --app wsgi backup PATH``, ``restore PATH`` and ``check``.

Exit codes: ``check`` and ``restore`` exit 0 when every check passes and 1 when one fails
(``restore`` then has restored the data: look at it before using it); ``restore`` exits 2 when
it refuses (an unusable backup or a non-empty database: nothing was changed); ``backup`` exits
1 when it cannot write a whole backup (nothing is left at PATH).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from registry.config import Settings
from registry.core.db import Database
from registry.ops import backup, invariants, restore
from registry.ops.dumps import BackupError
from registry.ops.invariants import Check, CheckpointKey

VKEY_HELP = (
    "the checkpoint public key to check signatures with: a verifier key, a PEM, or the JSON of "
    "GET /api/v1/audit/checkpoint-key, or a file holding one (default: the configured key)"
)


class RefusedExit(click.ClickException):
    exit_code = 2  # distinct from 1: nothing was changed


def _app() -> tuple[Flask, Database, Settings]:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return app, app.extensions["registry.db"], app.config["REGISTRY_SETTINGS"]


def _key(app: Flask, settings: Settings, vkey: str | None, recorded: Any = None) -> CheckpointKey:
    """``--vkey`` if given, else the instance's key, else the key a backup recorded."""
    if vkey:
        given = Path(vkey)
        text = given.read_text(encoding="utf-8") if given.is_file() else vkey
        return invariants.given_key(text, settings.checkpoint_origin, "the key given by --vkey")
    configured = invariants.configured_key(app)
    if configured.verifier is None and recorded:
        return invariants.given_key(
            recorded["vkey"], settings.checkpoint_origin, "the key recorded in the backup"
        )
    return configured


def _report(checks: list[Check], as_json: bool) -> None:
    if as_json:
        document = {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}
        click.echo(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        for line in invariants.render(checks):
            click.echo(line)
    if not all(check.ok for check in checks):
        raise SystemExit(1)


@click.command("check")
@click.option("--vkey", help=VKEY_HELP)
@click.option("--json", "as_json", is_flag=True, help="print the checks as JSON")
@with_appcontext  # also through app.cli (the test runner), not only `flask`
def check_command(vkey: str | None, as_json: bool) -> None:
    """Check the invariants: audit chain and latest checkpoint, ledger balanced, every contract
    file present with its hash. Exit 1 if any fails. Safe while the service runs."""
    app, db, settings = _app()
    _report(invariants.run_checks(db, settings, _key(app, settings, vkey)), as_json)


@click.command("backup")
@click.argument("path", type=click.Path(path_type=Path))
@with_appcontext  # also through app.cli (the test runner), not only `flask`
def backup_command(path: Path) -> None:
    """Write a consistent backup of the database and the contract files to PATH, a new
    directory; safe while the service runs. Private keys are NOT included."""
    app, db, settings = _app()
    key = invariants.configured_key(app)
    public = {"vkey": key.verifier.vkey} if key.verifier else None
    try:
        manifest = backup.create(db, settings, path, public_key=public)
    except (BackupError, OSError, SQLAlchemyError) as exc:
        raise click.ClickException(f"no backup written: {exc}") from None
    audit, database = manifest["audit"], manifest["database"]
    checkpoint = audit["latest_checkpoint"]
    click.echo(f"backup written to {path.absolute()} in {manifest['seconds']} s")
    click.echo(
        f"  database   {manifest['backend']} at revision {manifest['alembic_revision']}: "
        f"{database['file']}, {database['bytes']} bytes, sha256 {database['sha256']}"
    )
    click.echo(f"  rows       {sum(manifest['rows'].values())} in {len(manifest['rows'])} tables")
    click.echo(f"  audit log  {audit['size']} events, RFC 6962 root {audit['root_hash']}")
    click.echo(
        "  checkpoint "
        + (f"latest covers {checkpoint['tree_size']} events" if checkpoint else "none issued yet")
    )
    click.echo(f"  contracts  {len(manifest['blobs']['files'])} signed PDFs in blobs/")
    click.echo("NOT included, keep them separately: " + "; ".join(manifest["not_included"]))


@click.command("restore")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--vkey", help=VKEY_HELP + ", else the key the backup recorded")
@click.option("--json", "as_json", is_flag=True, help="print the checks as JSON")
@with_appcontext  # also through app.cli (the test runner), not only `flask`
def restore_command(path: Path, vkey: str | None, as_json: bool) -> None:
    """Restore the backup at PATH into the configured database, which must be empty, and the
    configured blob store; then run the invariant checks. Exit 2 when refused (nothing
    changed), 1 when a check fails."""
    app, db, settings = _app()
    try:
        manifest = restore.restore(db, settings, path)
    except restore.Refused as exc:
        raise RefusedExit(f"restore refused, nothing changed: {exc}") from None
    except SQLAlchemyError as exc:  # only the emptiness check talks to it before pg_restore
        reason = str(getattr(exc, "orig", None) or exc).strip()
        raise RefusedExit(
            f"restore refused, nothing changed: cannot read the database: {reason}"
        ) from None
    except (BackupError, OSError) as exc:
        raise click.ClickException(
            f"restore failed: {exc}\nthe database restore is all or nothing; contract files "
            "already copied are harmless (`flask contracts sweep` removes unreferenced ones)"
        ) from None
    if not as_json:
        click.echo(
            f"restored the {manifest['backend']} backup of {manifest['created_dt']} "
            f"({len(manifest['blobs']['files'])} contract files)"
        )
        click.echo("keys are not in backups: install the signing and checkpoint keys separately")
    recorded = manifest.get("checkpoint_public_key")
    checks = invariants.run_checks(db, settings, _key(app, settings, vkey, recorded))
    _report([*checks, *restore.compare(db, manifest)], as_json)


def init_app(app: Flask) -> None:
    for command in (check_command, backup_command, restore_command):
        app.cli.add_command(command)
