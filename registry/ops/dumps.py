"""What ``flask backup`` and ``flask restore`` share: reading a database's contents for the
manifest, finding the SQLite file or the libpq connection, running pg_dump/pg_restore, hashing
and flushing files."""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import func, inspect, select, table, text
from sqlalchemy.engine import URL, Connection, make_url

TOOL_TIMEOUT_S: Final = 3600


class BackupError(RuntimeError):
    """The backup could not be made (or read); nothing was left behind at the target."""


@dataclass(frozen=True)
class Snapshot:
    """What a database holds, as the manifest records it."""

    revision: str | None
    rows: dict[str, int]
    audit: dict[str, Any]
    contracts: list[tuple[str, int]]  # (signed SHA-256, size) of every issued contract


def read_snapshot(connection: Connection) -> Snapshot:
    """Row counts, the audit log's size and RFC 6962 root, the latest checkpoint and the
    contract files, read through ``connection`` (one transaction: one consistent view)."""
    # Imported here: ops comes first among the features and must not import audit at import
    # time; merkle itself is pure hashing.
    from registry.audit import merkle

    names = sorted(inspect(connection).get_table_names())
    rows = {
        name: int(connection.execute(select(func.count()).select_from(table(name))).scalar_one())
        for name in names
    }
    revision = (
        connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if "alembic_version" in names
        else None
    )
    head = connection.execute(text("SELECT size, chain_hash FROM audit_heads")).first()
    size, chain = (int(head[0]), head[1]) if head else (0, "00" * 32)
    leaves = connection.execute(
        text("SELECT leaf_hash FROM audit_events WHERE seq <= :size ORDER BY seq"), {"size": size}
    ).scalars()
    root = merkle.tree_root([bytes.fromhex(leaf) for leaf in leaves]).hex()
    latest = connection.execute(
        text(
            "SELECT tree_size, root_hash, note FROM audit_checkpoints "
            "ORDER BY tree_size DESC LIMIT 1"
        )
    ).first()
    contracts = [
        (digest, int(length))
        for digest, length in connection.execute(
            text("SELECT signed_sha256, size FROM contracts ORDER BY signed_sha256")
        )
    ]
    return Snapshot(
        revision=revision,
        rows=rows,
        audit={
            "size": size,
            "chain_hash": chain,
            "root_hash": root,
            "latest_checkpoint": (
                {"tree_size": int(latest[0]), "root_hash": latest[1], "note": latest[2]}
                if latest
                else None
            ),
        },
        contracts=contracts,
    )


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def pg_conninfo(url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI for pg_dump/pg_restore, and the environment carrying the password (kept
    off the command line, where ``ps`` would show it)."""
    parsed: URL = make_url(url)
    env = dict(os.environ)
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    conninfo = parsed.set(drivername="postgresql", password=None)
    return conninfo.render_as_string(hide_password=False), env


def run_tool(command: list[str], env: dict[str, str]) -> None:
    try:
        subprocess.run(  # noqa: S603 - fixed program, arguments we built
            command, env=env, check=True, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S
        )
    except FileNotFoundError:
        raise BackupError(
            f"{command[0]} not found: install the PostgreSQL client (Debian: postgresql-client)"
        ) from None
    except subprocess.CalledProcessError as exc:
        detail = "\n".join(exc.stderr.strip().splitlines()[-10:])
        raise BackupError(f"{command[0]} failed (exit {exc.returncode}):\n{detail}") from None


def tool_version(program: str) -> str:
    try:
        found = subprocess.run(  # noqa: S603
            [program, "--version"], check=True, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return program
    return found.stdout.strip()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
