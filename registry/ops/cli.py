"""``flask --app wsgi db upgrade|downgrade|current|history``: Alembic for the app's database."""

from __future__ import annotations

import click
from alembic import command
from alembic.config import Config
from flask import Flask, current_app
from flask.cli import AppGroup

from registry.ops.migrations import alembic_config

db_cli = AppGroup("db", help="Database migrations (Alembic).")


def _config() -> Config:
    return alembic_config(current_app.config["REGISTRY_SETTINGS"].database_url)


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Bring the database to REVISION (default: the latest)."""
    command.upgrade(_config(), revision)
    click.echo(f"database at {revision}")


@db_cli.command("downgrade")
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Step the database back to REVISION (e.g. -1, or base)."""
    command.downgrade(_config(), revision)


@db_cli.command("current")
def current() -> None:
    """Show the revision the database is at."""
    command.current(_config(), verbose=False)


@db_cli.command("history")
def history() -> None:
    """List the migrations."""
    command.history(_config())


def init_app(app: Flask) -> None:
    from registry.ops import commands  # backup, restore, check

    app.cli.add_command(db_cli)
    commands.init_app(app)
