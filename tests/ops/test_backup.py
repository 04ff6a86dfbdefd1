"""``flask backup``, ``flask restore`` and ``flask check`` on committed databases (issue 6 §5;
reliability.md §6, T40/T41), on SQLite and, with REGISTRY_TEST_DATABASE_URL, PostgreSQL.

The source holds licences with signed contracts, statements, payments (so ledger entries) and
a signed checkpoint followed by more events. A backup restores into a fresh empty database
with every invariant holding and the same rows and audit root; a non-empty database is
refused and left as it was; a damaged backup is refused before anything is written; and data
changed behind the service's back is named by the check that guards it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask
from sqlalchemy import text

from registry.app import FEATURES, create_app
from registry.audit import checkpoints
from registry.audit.note import Verifier, raw_public_key
from registry.core.blobs import BlobStore
from registry.core.db import make_engine
from registry.core.http import get_db
from registry.ops.dumps import Snapshot, read_snapshot, sha256_file
from registry.ops.restore import database_objects
from tests.api.test_clearing_payments import LUMP_SUM, upfront_statements
from tests.conftest import migrate_fresh
from tests.factories import Factory
from tests.factories import clearing as cf
from tests.factories import licences as lf
from tests.factories.databases import BACKENDS, empty_database

SECRET = "backup-secret-" + "q8Wm3Kx7Pz2Rv6Ty" * 2
CHECKS = ["schema", "audit_chain", "audit_checkpoint", "ledger_balanced", "contract_blobs"]


@dataclass
class Source:
    backend: str
    url: str
    folder: Path
    app: Flask
    backup: Path
    output: str

    @property
    def manifest(self) -> dict[str, Any]:
        manifest: dict[str, Any] = json.loads((self.backup / "manifest.json").read_text())
        return manifest


def make_app(url: str, instance: Path, **settings: Any) -> Flask:
    return create_app(
        {
            "env": "testing",
            "database_url": url,
            "instance_path": instance,
            "secret_key": SECRET,
            **settings,
        }
    )


def invoke(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=list(args))


def snapshot(url: str) -> Snapshot:
    engine = make_engine(url, pool=False)
    try:
        with engine.connect() as connection, connection.begin():
            return read_snapshot(connection)
    finally:
        engine.dispose()


def blobs(app: Flask) -> list[str]:
    return [blob.digest for blob in BlobStore(app.config["REGISTRY_SETTINGS"].blob_root)]


def _seed(app: Flask) -> None:
    """Two lump-sum licences with contracts and statements, one paid in part and one in full;
    a checkpoint; then a third licence, so the log runs past the checkpoint."""
    with app.app_context(), get_db().transaction() as session:
        factory = Factory(session, app)
        tto = factory.user(factory.organisation("university"), "tto")
        _, user, _ = lf.enterprise_licensee(factory, is_sme=False)
        admin = factory.admin()
        for paid in (400_000, 1_000_000):
            licence = lf.take_up(factory, user, lf.published_offer(factory, tto, royalty=LUMP_SUM))
            cf.pay(factory, admin, upfront_statements(factory, licence)[0], paid)
    with app.app_context(), get_db().transaction() as session:
        checkpoints.issue(session, actor=None, signer_=checkpoints.signer())
    with app.app_context(), get_db().transaction() as session:
        factory = Factory(session, app)
        tto = factory.user(factory.organisation("university"), "tto")
        _, user, _ = lf.enterprise_licensee(factory)
        lf.take_up(factory, user, lf.published_offer(factory, tto))


@pytest.fixture(scope="module", params=BACKENDS)
def source(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Source]:
    folder = tmp_path_factory.mktemp(f"backup-{request.param}")
    with empty_database(request.param, folder, "source") as url:
        migrate_fresh(url).dispose()
        app = make_app(url, folder / "instance")
        try:
            _seed(app)
            result = invoke(app, "backup", str(folder / "backup"))
            assert result.exit_code == 0, result.output
            yield Source(request.param, url, folder, app, folder / "backup", result.output)
        finally:
            app.extensions["registry.db"].engine.dispose()


@contextmanager
def target(source: Source, folder: Path, name: str, **settings: Any) -> Iterator[Flask]:
    """A fresh empty database and instance folder on the source's backend."""
    with empty_database(source.backend, folder, name) as url:
        app = make_app(url, folder / f"instance-{name}", **settings)
        try:
            yield app
        finally:
            app.extensions["registry.db"].engine.dispose()


def statuses(output: str) -> dict[str, str]:
    """``{check name: "PASS"|"FAIL"}`` from the checks' output lines."""
    found = {}
    for line in output.splitlines():
        word, _, rest = line.partition(" ")
        if word in ("PASS", "FAIL"):
            found[rest.split()[0]] = word
    return found


def line_of(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if line.split()[1:2] == [name])


# Checking a live database ---------------------------------------------------------------------


def test_check_passes_on_the_live_database(source: Source) -> None:
    result = invoke(source.app, "check")
    assert result.exit_code == 0, result.output
    assert all(statuses(result.output)[name] == "PASS" for name in CHECKS), result.output
    assert "all" in result.output.splitlines()[-1]
    checkpoint = line_of(result.output, "audit_checkpoint")
    assert "verify with the configured checkpoint key" in checkpoint
    assert "3 contracts: each PDF present" in line_of(result.output, "contract_blobs")
    as_json = json.loads(invoke(source.app, "check", "--json").output)
    assert as_json["ok"] is True
    assert [c["name"] for c in as_json["checks"] if c["name"] in CHECKS] == CHECKS


# The backup -----------------------------------------------------------------------------------


def test_backup_holds_the_database_and_the_contracts_but_no_keys(source: Source) -> None:
    manifest = source.manifest
    live = snapshot(source.url)
    dump = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}[source.backend]
    assert sorted(p.name for p in source.backup.iterdir()) == sorted(
        ["README.txt", "blobs", dump, "manifest.json"]
    )
    assert manifest["backend"] == source.backend
    assert manifest["database"]["file"] == dump
    assert manifest["alembic_revision"] == live.revision
    assert manifest["rows"] == live.rows  # nothing was written since
    assert manifest["audit"]["root_hash"] == live.audit["root_hash"]
    assert manifest["audit"]["size"] > manifest["audit"]["latest_checkpoint"]["tree_size"] > 0
    assert sorted(f["sha256"] for f in manifest["blobs"]["files"]) == sorted(
        digest for digest, _ in live.contracts
    )
    assert len(live.contracts) == 3
    verifier = checkpoints.signer(source.app).verifier
    assert manifest["checkpoint_public_key"] == {"vkey": verifier.vkey}
    # No private key in any file; the README and the command say so.
    for path in source.backup.rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path
            assert path.suffix not in (".p12", ".pfx", ".key", ".pem"), path
    assert any("checkpoint private key" in item for item in manifest["not_included"])
    assert any("signing key" in item for item in manifest["not_included"])
    assert "NOT included" in (source.backup / "README.txt").read_text()
    assert "NOT included" in source.output
    assert not [p for p in source.folder.iterdir() if ".partial-" in p.name]


def test_backup_never_overwrites(source: Source, tmp_path: Path) -> None:
    existing = tmp_path / "taken"
    existing.mkdir()
    result = invoke(source.app, "backup", str(existing))
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert list(existing.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]  # no partial copy left behind


# Restoring ------------------------------------------------------------------------------------


def test_a_restored_backup_passes_every_check_and_equals_the_source(
    source: Source, tmp_path: Path
) -> None:
    with target(source, tmp_path, "restored") as app:
        result = invoke(app, "restore", str(source.backup))
        assert result.exit_code == 0, result.output
        found = statuses(result.output)
        assert all(found[name] == "PASS" for name in [*CHECKS, "backup_rows", "backup_audit"])
        # The new instance has no key of its own: the signature is checked with the recorded one.
        assert "with the key recorded in the backup" in line_of(result.output, "audit_checkpoint")
        url = app.config["REGISTRY_SETTINGS"].database_url
        assert snapshot(url) == snapshot(source.url)
        assert blobs(app) == blobs(source.app)

        # Without the recorded key, the instance must be told the published one.
        unkeyed = invoke(app, "check")
        assert unkeyed.exit_code == 1
        assert "no checkpoint key is configured" in line_of(unkeyed.output, "audit_checkpoint")
        published = checkpoints.signer(source.app).verifier.vkey
        assert invoke(app, "check", "--vkey", published).exit_code == 0
        stranger = Verifier(
            published.split("+")[0], raw_public_key(Ed25519PrivateKey.generate().public_key())
        )
        wrong = invoke(app, "check", "--vkey", stranger.vkey)
        assert wrong.exit_code == 1
        assert "made with another key" in line_of(wrong.output, "audit_checkpoint")


def test_restore_refuses_a_database_that_is_not_empty(source: Source, tmp_path: Path) -> None:
    before, stored = snapshot(source.url), blobs(source.app)
    result = invoke(source.app, "restore", str(source.backup))
    assert result.exit_code == 2, result.output
    assert "restore refused, nothing changed" in result.output
    assert "is not empty" in result.output
    assert snapshot(source.url) == before
    assert blobs(source.app) == stored

    # A database with the schema and no rows is not empty either.
    with target(source, tmp_path, "schema_only") as app:
        url = app.config["REGISTRY_SETTINGS"].database_url
        migrate_fresh(url).dispose()
        schema = snapshot(url)
        result = invoke(app, "restore", str(source.backup))
        assert result.exit_code == 2, result.output
        assert "alembic_version" in result.output
        assert snapshot(url) == schema
        assert blobs(app) == []


def _flip(path: Path, at: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def _first_blob(backup: Path) -> Path:
    return next(p for p in sorted((backup / "blobs").rglob("*")) if p.is_file())


def _edit_manifest(backup: Path, edit: Any) -> None:
    manifest = json.loads((backup / "manifest.json").read_text())
    edit(manifest)
    (backup / "manifest.json").write_text(json.dumps(manifest))


def _dump(backup: Path) -> Path:
    return next(backup.glob("database.*"))


TAMPERING = {
    "a contract byte flipped": (lambda b: _flip(_first_blob(b)), "do not hash to its name"),
    "a database byte flipped": (lambda b: _flip(_dump(b), 2000), "does not match the SHA-256"),
    "the manifest's database hash edited": (
        lambda b: _edit_manifest(b, lambda m: m["database"].update(sha256="0" * 64)),
        "does not match the SHA-256",
    ),
    "a contract removed": (lambda b: _first_blob(b).unlink(), "listed but missing"),
    "a contract unlisted": (
        lambda b: _edit_manifest(b, lambda m: m["blobs"]["files"].pop(0)),
        "is not listed in the manifest",
    ),
    "the manifest's row counts removed": (
        lambda b: _edit_manifest(b, lambda m: m.pop("rows")),
        "is malformed: no rows",
    ),
    "the manifest's file list mangled": (
        lambda b: _edit_manifest(b, lambda m: m["blobs"].update(files=[{"name": "x"}])),
        "is malformed",
    ),
    "not a backup": (lambda b: (b / "manifest.json").unlink(), "has no manifest.json"),
}


@pytest.mark.parametrize("tamper", TAMPERING)
def test_a_damaged_backup_is_refused_before_anything_is_written(
    source: Source, tmp_path: Path, tamper: str
) -> None:
    damage, words = TAMPERING[tamper]
    copy = tmp_path / "copy"
    shutil.copytree(source.backup, copy)
    damage(copy)
    with target(source, tmp_path, "damaged") as app:
        result = invoke(app, "restore", str(copy))
        assert result.exit_code == 2, result.output
        assert words in result.output
        assert (
            database_objects(app.extensions["registry.db"], app.config["REGISTRY_SETTINGS"]) == []
        )
        assert blobs(app) == []


# Data changed behind the service's back --------------------------------------------------------


def _lift_guard(connection: Any, table: str) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {table}_no_update")
    else:
        connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")


def _sql(table: str, statements: str) -> Any:
    def change(connection: Any) -> None:
        _lift_guard(connection, table)
        for statement in statements.split(";"):
            connection.execute(text(statement))

    return change


DOCTORING = {
    "a ledger entry's amount": (
        _sql(
            "journal_entries",
            "UPDATE journal_entries SET amount = amount + 1 WHERE id = "
            "(SELECT id FROM journal_entries WHERE amount > 0 ORDER BY id LIMIT 1)",
        ),
        "ledger_balanced",
        "do not sum to zero",
    ),
    "1 fen moved between two transactions": (
        _sql(
            "journal_entries",
            "UPDATE journal_entries SET amount = amount + 1 WHERE id = "
            "(SELECT id FROM journal_entries WHERE amount > 0 ORDER BY id LIMIT 1);"
            "UPDATE journal_entries SET amount = amount - 1 WHERE id = "
            "(SELECT id FROM journal_entries WHERE amount < 0 AND transaction_id <> "
            "(SELECT transaction_id FROM journal_entries WHERE amount > 0 ORDER BY id LIMIT 1) "
            "ORDER BY id LIMIT 1)",
        ),
        "ledger_balanced",
        "2 journal transactions do not sum to zero",
    ),
    "an audit event's payload": (
        _sql("audit_events", "UPDATE audit_events SET payload = '{}' WHERE seq = 2"),
        "audit_chain",
        "event 2",
    ),
    "a checkpoint's root": (
        _sql("audit_checkpoints", f"UPDATE audit_checkpoints SET root_hash = '{'ab' * 32}'"),  # noqa: S608
        "audit_checkpoint",
        "differs from its signed note",
    ),
    "a contract's recorded hash": (
        _sql(
            "contracts",
            f"UPDATE contracts SET signed_sha256 = '{'cd' * 32}' WHERE id = "  # noqa: S608
            "(SELECT id FROM contracts ORDER BY id LIMIT 1)",
        ),
        "contract_blobs",
        "1 missing",
    ),
}


@pytest.mark.parametrize("doctored", DOCTORING)
def test_check_names_data_changed_behind_the_service(
    source: Source, tmp_path: Path, doctored: str
) -> None:
    change, check, words = DOCTORING[doctored]
    with target(source, tmp_path, "doctored") as app:
        assert invoke(app, "restore", str(source.backup)).exit_code == 0
        url = app.config["REGISTRY_SETTINGS"].database_url
        engine = make_engine(url, pool=False)
        with engine.begin() as connection:
            change(connection)
        engine.dispose()
        result = invoke(app, "check", "--vkey", source.manifest["checkpoint_public_key"]["vkey"])
        assert result.exit_code == 1, result.output
        assert statuses(result.output)[check] == "FAIL", result.output
        assert words in line_of(result.output, check)
        assert "FAILED" in result.output.splitlines()[-1]


@pytest.mark.parametrize("damage", ["flipped", "removed"])
def test_check_names_a_damaged_or_missing_contract_file(
    source: Source, tmp_path: Path, damage: str
) -> None:
    with target(source, tmp_path, "blobs") as app:
        assert invoke(app, "restore", str(source.backup)).exit_code == 0
        store = BlobStore(app.config["REGISTRY_SETTINGS"].blob_root)
        path = store.path(blobs(app)[0])
        path.chmod(0o644)
        _flip(path) if damage == "flipped" else path.unlink()
        result = invoke(app, "check", "--vkey", source.manifest["checkpoint_public_key"]["vkey"])
        assert result.exit_code == 1
        words = "1 damaged" if damage == "flipped" else "1 missing"
        assert words in line_of(result.output, "contract_blobs")
        # A backup of a store that lost a file is refused whole: it would not restore.
        refused = invoke(app, "backup", str(tmp_path / "second"))
        assert refused.exit_code == 1
        assert "no backup written" in refused.output
        assert not (tmp_path / "second").exists()


# SQLite only: a pg_dump custom-format file is compressed, so the PostgreSQL side of this is
# test_check_names_data_changed_behind_the_service on a restored copy.
@pytest.mark.parametrize("source", ["sqlite"], indirect=True)
def test_a_ledger_entry_edited_in_a_sqlite_dump_fails_the_restore(
    source: Source, tmp_path: Path
) -> None:
    """Even with the manifest's hash made to match, the invariants catch an edited ledger."""
    copy = tmp_path / "copy"
    shutil.copytree(source.backup, copy)
    engine = make_engine(f"sqlite:///{copy / 'database.sqlite3'}", pool=False)
    with engine.begin() as connection:
        DOCTORING["a ledger entry's amount"][0](connection)
    engine.dispose()
    _edit_manifest(
        copy, lambda m: m["database"].update(sha256=sha256_file(copy / "database.sqlite3"))
    )
    with target(source, tmp_path, "edited") as app:
        result = invoke(app, "restore", str(copy))
        assert result.exit_code == 1, result.output
        assert statuses(result.output)["ledger_balanced"] == "FAIL"
        assert statuses(result.output)["audit_chain"] == "PASS"


def test_ops_imports_no_later_feature() -> None:
    """ops is first in FEATURES: its backup, restore and check modules load without the rest."""
    later = [feature.__name__ for feature in FEATURES if feature.__name__ != "registry.ops"]
    code = (
        "import sys, registry.ops.commands\n"
        "found = [m for m in sys.modules if any(m == f or m.startswith(f + '.') "
        "for f in sys.argv[1:])]\n"
        "assert not found, found\n"
    )
    subprocess.run([sys.executable, "-c", code, *later], check=True)  # noqa: S603
