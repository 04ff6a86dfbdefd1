"""``flask --app wsgi patents import FILE [--dry-run] --as EMAIL``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import select
from tqdm import tqdm

from registry.accounts.models import User
from registry.accounts.services import actor_of
from registry.core.cli import fail_on_registry_error
from registry.core.http import get_db
from registry.patents import importer

patents_cli = AppGroup("patents", help="Manage the patent registry.")


class _Bars:
    """One progress bar per stage of the import (checking every row, then saving)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bars: dict[str, Any] = {}

    def __call__(self, stage: str, count: int) -> None:
        if stage not in self.bars:
            for bar in self.bars.values():
                bar.close()
            self.bars[stage] = tqdm(total=self.total, unit="row", desc=stage, disable=None)
        self.bars[stage].update(count)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


@patents_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="check every row, save nothing")
@click.option("--as", "as_email", required=True, help="e-mail of the TTO or admin importing")
def import_command(file: Path, dry_run: bool, as_email: str) -> None:
    """Import patents from a CSV (UTF-8) or XLSX FILE; all rows or none.

    On errors, prints every bad row's errors (rows.<row>.<column>) and exits with status 1."""
    db = get_db()
    with fail_on_registry_error(), db.transaction() as session:
        user = session.scalar(select(User).where(User.email == as_email.strip().lower()))
        if user is None or not user.is_active:
            raise click.ClickException(f"no active user {as_email}")
        actor = actor_of(user)
        importer.services.require_registrar(actor)
        with file.open("rb") as stream:
            rows = importer.read_rows(file.name, stream)
        bars = _Bars(len(rows))
        try:
            report = importer.import_rows(
                session, actor=actor, rows=rows, dry_run=dry_run, progress=bars
            )
        finally:
            bars.close()
    verb = "would import" if dry_run else "imported"
    click.echo(f"{verb} {report.rows} patents from {file.name}")


def init_app(app: Flask) -> None:
    app.cli.add_command(patents_cli)
