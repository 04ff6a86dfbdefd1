"""``flask backup PATH``: a consistent online backup of the database and the contract files.

PATH is a new directory holding::

    manifest.json       what the backup holds and the SHA-256 of every part (below)
    README.txt          the same in words, and what it does NOT hold
    database.sqlite3    SQLite: a copy made with the online backup API
    database.pgdump     PostgreSQL: ``pg_dump --format=custom``
    blobs/ab/cd/<sha256>  the signed contract PDFs, in the blob store's own layout

Consistency (reliability.md §6): SQLite's ``Connection.backup`` copies every page in one step,
inside one read transaction, so it is a snapshot while writers go on (WAL); PostgreSQL's
``pg_dump`` runs on a snapshot exported from a REPEATABLE READ transaction, and that same
transaction reads what the manifest records. The contract files are copied *after* the
snapshot: a blob is written before the commit that names it (core/blobs.py), so every contract
in the snapshot already has its file (T41: no dangling references by construction).

The backup is written to a temporary directory beside PATH and renamed into place once
complete and flushed, so PATH is either a whole backup or absent; an existing PATH is never
overwritten. Private keys are not included (see ``NOT_INCLUDED``).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from registry.config import Settings
from registry.core import clock
from registry.core.blobs import STAGING, BlobError, BlobStore
from registry.core.canonical import format_instant
from registry.core.db import Database
from registry.ops.dumps import (
    BackupError,
    Snapshot,
    fsync_file,
    pg_conninfo,
    read_snapshot,
    run_tool,
    sha256_file,
    sqlite_path,
    tool_version,
)

FORMAT: Final = "open-licence-registry-backup"
FORMAT_VERSION: Final = 1
MANIFEST: Final = "manifest.json"
README: Final = "README.txt"
BLOBS: Final = "blobs"
DATABASE_FILES: Final = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
NOT_INCLUDED: Final = (
    "the contract signing key and certificate chain (REGISTRY_SIGNING_P12, or the development "
    "CA in <instance>/signing/)",
    "the audit checkpoint private key (REGISTRY_CHECKPOINT_KEY, or <instance>/checkpoint.key); "
    "its public key is recorded in the manifest",
    "the secret key (REGISTRY_SECRET_KEY, or <instance>/secret_key)",
)


def create(
    db: Database, settings: Settings, target: Path, *, public_key: dict[str, str] | None
) -> dict[str, Any]:
    """Write a backup of the configured database and blob store to ``target`` (a new
    directory) and return its manifest. ``public_key`` is the checkpoint key to record."""
    target = target.absolute()
    if target.exists() or target.is_symlink():
        raise BackupError(f"{target} already exists: a backup never overwrites; choose a new path")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        started, taken = time.monotonic(), clock.now()
        backend = db.dialect
        dump = staging / DATABASE_FILES[backend]
        if backend == "sqlite":
            snapshot, tool = _sqlite_copy(settings.database_url, dump)
        else:
            snapshot, tool = _pg_dump(db, settings.database_url, dump)
        blobs = _copy_blobs(BlobStore(settings.blob_root), staging / BLOBS, snapshot.contracts)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_dt": format_instant(taken),
            "seconds": round(time.monotonic() - started, 3),
            "backend": backend,
            "alembic_revision": snapshot.revision,
            "database": {
                "file": dump.name,
                "sha256": sha256_file(dump),
                "bytes": dump.stat().st_size,
                "tool": tool,
            },
            "blobs": {"folder": BLOBS, "layout": "ab/cd/<sha256>", "files": blobs},
            "audit": snapshot.audit,
            "checkpoint_public_key": public_key,
            "rows": snapshot.rows,
            "not_included": list(NOT_INCLUDED),
        }
        _write(staging / README, _readme(manifest))
        _write(staging / MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
        _fsync_directory(staging)
        if target.exists():  # appeared while we worked: still never overwrite
            raise BackupError(f"{target} appeared during the backup; it was left alone")
        os.rename(staging, target)
        _fsync_directory(target.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _sqlite_copy(url: str, out: Path) -> tuple[Snapshot, str]:
    source_path = sqlite_path(url)
    if not source_path.is_file():
        raise BackupError(f"the SQLite database {source_path} does not exist")
    source = sqlite3.connect(source_path, timeout=10)  # only read from
    try:
        copy = sqlite3.connect(out)
        try:
            # pages=-1 (the default): every page in one step, under one read transaction, so
            # the copy is one consistent snapshot while writers carry on in WAL mode.
            source.backup(copy)
            # The copy is a single self-contained file, not a WAL database.
            copy.execute("PRAGMA journal_mode=DELETE")
            integrity = [row[0] for row in copy.execute("PRAGMA integrity_check")]
        finally:
            copy.close()
    finally:
        source.close()
    if integrity != ["ok"]:
        raise BackupError(f"the copy fails PRAGMA integrity_check: {'; '.join(integrity[:5])}")
    engine = create_engine(f"sqlite:///{out}", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            snapshot = read_snapshot(connection)
    finally:
        engine.dispose()
    fsync_file(out)
    return snapshot, f"sqlite3 online backup API (SQLite {sqlite3.sqlite_version})"


def _pg_dump(db: Database, url: str, out: Path) -> tuple[Snapshot, str]:
    conninfo, env = pg_conninfo(url)
    with db.engine.connect() as connection:
        reader = connection.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        with reader.begin():
            # pg_dump reads the snapshot this transaction exported, and this transaction reads
            # the manifest's counts and hashes from it: dump and manifest describe one state.
            snapshot_id = reader.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            run_tool(
                [
                    "pg_dump",
                    "--format=custom",
                    "--no-password",
                    f"--snapshot={snapshot_id}",
                    f"--file={out}",
                    f"--dbname={conninfo}",
                ],
                env,
            )
            snapshot = read_snapshot(reader)
    fsync_file(out)
    return snapshot, f"{tool_version('pg_dump')} --format=custom"


def _copy_blobs(
    source: BlobStore, folder: Path, contracts: list[tuple[str, int]]
) -> list[dict[str, Any]]:
    copies = BlobStore(folder)
    folder.mkdir()
    files = []
    for digest, _size in contracts:
        try:
            data = source.get(digest)  # checks the bytes still hash to the name
        except BlobError as exc:
            raise BackupError(
                f"{exc}: the blob store is damaged; `flask --app wsgi check` lists what is wrong"
            ) from None
        copies.put(data)  # temp file, fsync, link, fsync dir
        files.append({"sha256": digest, "bytes": len(data)})
    staging = folder / STAGING  # the store's scratch folder: empty once every put is done
    if staging.is_dir():
        staging.rmdir()
    return files


def _readme(manifest: dict[str, Any]) -> str:
    audit = manifest["audit"]
    checkpoint = audit["latest_checkpoint"]
    lines = [
        "Open Licence Registry backup",
        "",
        f"taken {manifest['created_dt']} from a {manifest['backend']} database at revision "
        f"{manifest['alembic_revision']}",
        f"database: {manifest['database']['file']} ({manifest['database']['tool']})",
        f"contract files: {len(manifest['blobs']['files'])} in {BLOBS}/ (named by SHA-256)",
        f"audit log: {audit['size']} events, RFC 6962 root {audit['root_hash']}",
        "latest checkpoint: "
        + (f"{checkpoint['tree_size']} events" if checkpoint else "none issued"),
        "",
        "NOT included (keep these separately and safely):",
        *[f"  - {item}" for item in manifest["not_included"]],
        "",
        "Restore into an EMPTY database and blob store configured as usual:",
        "  flask --app wsgi restore PATH",
        "It checks every file against manifest.json, refuses a non-empty database, and runs the",
        "invariant checks afterwards (exit 1 if any fails).",
        "",
    ]
    return "\n".join(lines)


def _write(path: Path, content: str) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_directory(directory: Path) -> None:
    # A rename is atomic but durable only once its directory is on disk (reliability.md §6).
    fsync_file(directory)
