"""``flask restore PATH``: a backup made by ``flask backup`` into an EMPTY database.

Before anything is written the backup is checked whole — every part against the SHA-256 the
manifest records, every contract file against its own name, nothing missing, nothing extra —
and the configured database must be empty (no tables, views, sequences or functions of its
own). A backup or a target that fails is refused and nothing is changed.

Then the contract files go into the configured blob store first (content-addressed: a file
already there with the same bytes is left as it is), and the database after them, so the
database never names a file that is not there (the order the service itself keeps):
SQLite through the online backup API into the configured file, PostgreSQL through
``pg_restore --single-transaction --exit-on-error`` (all or nothing). Owners and privileges are
not restored: the objects belong to the role that restores them.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import text

from registry.config import Settings
from registry.core.blobs import DIGEST, BlobStore
from registry.core.db import Database
from registry.ops.backup import BLOBS, DATABASE_FILES, FORMAT, FORMAT_VERSION, MANIFEST
from registry.ops.dumps import (
    BackupError,
    pg_conninfo,
    read_snapshot,
    run_tool,
    sha256_file,
    sqlite_path,
)
from registry.ops.invariants import Check

SHOWN = 5

# Objects of the database's own, outside PostgreSQL's system schemas.
PG_OBJECTS = text(
    """
    SELECT n.nspname || '.' || c.relname FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname NOT LIKE 'pg\\_toast%'
    UNION ALL
    SELECT n.nspname || '.' || p.proname || '()' FROM pg_proc p
      JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
    ORDER BY 1
    """
)


class Refused(RuntimeError):
    """The backup is unusable or the target is not empty; nothing was changed."""


def read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_dir():
        raise Refused(f"{path} is not a backup (a directory written by `flask backup`)")
    try:
        manifest: dict[str, Any] = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Refused(f"{path} has no {MANIFEST}: not a backup") from None
    except (OSError, ValueError) as exc:
        raise Refused(f"{path / MANIFEST} cannot be read: {exc}") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise Refused(f"{path / MANIFEST} is not a version {FORMAT_VERSION} registry backup")
    absent = [key for key in ("database", "blobs", "audit", "rows") if key not in manifest]
    if absent:
        raise Refused(f"{path / MANIFEST} is malformed: no {', '.join(absent)}")
    if manifest.get("backend") not in DATABASE_FILES:
        raise Refused(f"{path / MANIFEST} names an unknown database {manifest.get('backend')!r}")
    return manifest


def verify_backup(path: Path, manifest: dict[str, Any]) -> list[str]:
    """Every way the backup's files differ from its manifest (empty when they match)."""
    problems = []
    database = manifest["database"]
    dump = path / DATABASE_FILES[manifest["backend"]]
    if database.get("file") != dump.name:
        problems.append(f"the manifest names the database file {database.get('file')!r}")
    elif not dump.is_file():
        problems.append(f"{dump.name} is missing")
    elif sha256_file(dump) != database.get("sha256"):
        problems.append(f"{dump.name} does not match the SHA-256 in the manifest")
    listed = {item["sha256"]: item["bytes"] for item in manifest["blobs"]["files"]}
    found: set[str] = set()
    folder = path / BLOBS
    for file in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if not file.is_file():
            continue
        name = file.relative_to(folder).as_posix()
        data = file.read_bytes()
        if (
            not DIGEST.fullmatch(file.name)
            or name != f"{file.name[:2]}/{file.name[2:4]}/{file.name}"
        ):
            problems.append(f"{BLOBS}/{name} is not a contract file of this backup")
        elif file.name not in listed:
            problems.append(f"{BLOBS}/{name} is not listed in the manifest")
        elif hashlib.sha256(data).hexdigest() != file.name or len(data) != listed[file.name]:
            problems.append(f"{BLOBS}/{name}: its bytes do not hash to its name")
        found.add(file.name)
    missing = sorted(set(listed) - found)
    if missing:
        problems.append(
            f"{len(missing)} contract files listed but missing: {', '.join(missing[:SHOWN])}"
        )
    return problems


def database_objects(db: Database, settings: Settings) -> list[str]:
    """What the configured database already holds (nothing: it may be restored into)."""
    if db.dialect == "sqlite":
        path = sqlite_path(settings.database_url)
        if not path.exists() or path.stat().st_size == 0:
            return []
        reader = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            rows = reader.execute(
                "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                "ORDER BY name"
            ).fetchall()
        finally:
            reader.close()
        return [row[0] for row in rows]
    with db.engine.connect() as connection:
        return list(connection.execute(PG_OBJECTS).scalars())


def restore(db: Database, settings: Settings, path: Path) -> dict[str, Any]:
    """Restore the backup at ``path``; :class:`Refused` (nothing changed) when it cannot be."""
    manifest = read_manifest(path)
    try:
        problems = verify_backup(path, manifest)
    except (KeyError, TypeError, AttributeError) as exc:
        raise Refused(f"{path / MANIFEST} is malformed ({type(exc).__name__}: {exc})") from None
    if problems:
        raise Refused("the backup does not match its manifest: " + "; ".join(problems[:SHOWN]))
    if manifest["backend"] != db.dialect:
        raise Refused(
            f"the backup is of a {manifest['backend']} database and the configured database "
            f"is {db.dialect}: restore into the same kind of database"
        )
    present = database_objects(db, settings)
    if present:
        raise Refused(
            f"the configured database is not empty ({len(present)} objects: "
            f"{', '.join(present[:SHOWN])}{', …' if len(present) > SHOWN else ''}); "
            "restore only into a new, empty database"
        )
    store = BlobStore(settings.blob_root)
    files = [item["sha256"] for item in manifest["blobs"]["files"]]
    for digest in files:
        existing = store.path(digest)
        if existing.is_file() and sha256_file(existing) != digest:
            raise Refused(f"the blob store holds a damaged {digest}: move it away first")
    # Files first, then the database that names them (the service's own order).
    for digest in files:
        store.put((path / BLOBS / digest[:2] / digest[2:4] / digest).read_bytes())
    dump = path / DATABASE_FILES[manifest["backend"]]
    if db.dialect == "sqlite":
        _sqlite_restore(db, settings, dump)
    else:
        _pg_restore(settings, dump)
    return manifest


def compare(db: Database, manifest: dict[str, Any]) -> list[Check]:
    """The restored database against what the manifest says was backed up."""
    with db.engine.connect() as connection, connection.begin():
        restored = read_snapshot(connection)
    rows, recorded = restored.rows, manifest["rows"]
    differing = sorted(
        f"{table}: {rows.get(table)} rows, backed up {recorded.get(table)}"
        for table in set(rows) | set(recorded)
        if rows.get(table) != recorded.get(table)
    )
    checks = [
        Check("backup_rows", False, "; ".join(differing[:SHOWN]))
        if differing
        else Check(
            "backup_rows", True, f"{sum(rows.values())} rows in {len(rows)} tables, as backed up"
        )
    ]
    keys = ("size", "chain_hash", "root_hash")
    audit, backed_up = restored.audit, manifest["audit"]
    if all(audit[key] == backed_up[key] for key in keys):
        checks.append(
            Check(
                "backup_audit",
                True,
                f"{audit['size']} events, RFC 6962 root {audit['root_hash'][:16]}… as backed up",
            )
        )
    else:
        checks.append(
            Check(
                "backup_audit",
                False,
                f"restored {audit['size']} events with root {audit['root_hash'][:16]}…, the "
                f"backup recorded {backed_up['size']} with {backed_up['root_hash'][:16]}…",
            )
        )
    return checks


def _sqlite_restore(db: Database, settings: Settings, dump: Path) -> None:
    db.engine.dispose()  # no pooled connection may hold the file while it is written
    target = sqlite_path(settings.database_url)
    target.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"{dump.absolute().as_uri()}?mode=ro", uri=True)
    try:
        destination = sqlite3.connect(target, timeout=10)
        try:
            source.backup(destination)  # one step: the target changes all at once or not at all
        finally:
            destination.close()
    except sqlite3.Error as exc:
        raise BackupError(f"the SQLite restore failed: {exc}") from None
    finally:
        source.close()


def _pg_restore(settings: Settings, dump: Path) -> None:
    conninfo, env = pg_conninfo(settings.database_url)
    run_tool(
        [
            "pg_restore",
            "--single-transaction",
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            "--no-password",
            f"--dbname={conninfo}",
            str(dump),
        ],
        env,
    )
