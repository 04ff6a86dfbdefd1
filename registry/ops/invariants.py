"""The invariants the registry's data must hold, checked on demand (``flask check``) and after a
restore (reliability.md §6 and T40/T41: ledger balanced, audit log consistent with the last
checkpoint, every contract file present with its hash).

* ``schema`` — the database is at the migrations' head revision.
* ``sqlite_integrity`` — ``PRAGMA integrity_check`` says ok (SQLite only).
* ``audit_chain`` — every event's leaf and chain hash recomputes (``audit.services.verify``).
* ``audit_checkpoint`` — the RFC 6962 root of the first *n* events equals the latest
  checkpoint's root, and every checkpoint's signed note matches its row and verifies with the
  checkpoint public key. No checkpoint yet is said, not failed.
* ``ledger_balanced`` — the trial balance is zero and every journal transaction's entries sum
  to zero (none is empty).
* ``contract_blobs`` — every issued contract's PDF is in the blob store and hashes to the
  record's signed SHA-256 (and has the recorded size).

Each check reads in its own session, so one that cannot run (a schema behind the code) does
not hide the others. The features checked come after ``ops`` in ``FEATURES``; they are imported
inside the functions, as ``/readyz`` does, so importing ``ops`` stays free of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask
from sqlalchemy import exists, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from registry.config import Settings
from registry.core.db import Database
from registry.core.errors import RegistryError
from registry.core.money import format_money, from_fen
from registry.ops.migrations import current_revision, head_revision

if TYPE_CHECKING:
    from registry.audit.note import Verifier

SHOWN = 5  # at most this many offending items are named in a detail


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class CheckpointKey:
    """The public key checkpoint signatures are checked with, and where it came from (or, when
    there is none, why)."""

    verifier: Verifier | None
    source: str


def configured_key(app: Flask) -> CheckpointKey:
    """The instance's checkpoint key (``REGISTRY_CHECKPOINT_KEY`` or ``<instance>/checkpoint.key``)
    when one exists. Never generates one: a new key would only make every signature fail."""
    from registry.audit.checkpoints import KEY_FILE, CheckpointKeyError, signer

    found = signer(app)
    if found.key_path is None and not (found.instance_path / KEY_FILE).is_file():
        return CheckpointKey(
            None,
            "no checkpoint key is configured (REGISTRY_CHECKPOINT_KEY) or in the instance "
            "folder; pass the published key with --vkey",
        )
    try:
        return CheckpointKey(found.verifier, "the configured checkpoint key")
    except CheckpointKeyError as exc:
        return CheckpointKey(None, str(exc))


def given_key(text: str, origin: str, source: str) -> CheckpointKey:
    """A key as ``GET /audit/checkpoint-key`` publishes it: a vkey, a PEM or that JSON."""
    from registry.audit.note import NoteError
    from registry.audit.verify import read_verifier

    try:
        return CheckpointKey(read_verifier(text, origin), source)
    except (NoteError, ValueError, KeyError) as exc:
        return CheckpointKey(None, f"{source} is not a checkpoint key: {exc}")


def run_checks(db: Database, settings: Settings, key: CheckpointKey) -> list[Check]:
    checks: list[tuple[str, Callable[[Session], Check]]] = [
        ("schema", lambda session: _schema(db, settings)),
    ]
    if db.dialect == "sqlite":
        checks.append(("sqlite_integrity", _sqlite_integrity))
    checks += [
        ("audit_chain", _audit_chain),
        ("audit_checkpoint", lambda session: _audit_checkpoint(session, key)),
        ("ledger_balanced", _ledger_balanced),
        ("contract_blobs", lambda session: _contract_blobs(session, settings.blob_root)),
    ]
    results = []
    for name, check in checks:
        session = db.session(write=False)
        try:
            results.append(check(session))
        except (SQLAlchemyError, RegistryError) as exc:
            message = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            results.append(Check(name, False, f"could not run: {type(exc).__name__}: {message}"))
        finally:
            session.rollback()
            session.close()
    return results


def render(checks: list[Check]) -> list[str]:
    width = max(len(check.name) for check in checks)
    lines = [f"{'PASS' if c.ok else 'FAIL'} {c.name:<{width}}  {c.detail}" for c in checks]
    failed = [check.name for check in checks if not check.ok]
    lines.append(
        f"{len(failed)} of {len(checks)} checks FAILED: {', '.join(failed)}"
        if failed
        else f"all {len(checks)} checks passed"
    )
    return lines


def _schema(db: Database, settings: Settings) -> Check:
    current, head = current_revision(db.engine), head_revision(settings.database_url)
    if current == head:
        return Check("schema", True, f"database at the head revision {head}")
    return Check(
        "schema",
        False,
        f"database at {current or 'no revision'}, the code's head is {head}: "
        "run `flask --app wsgi db upgrade`",
    )


def _sqlite_integrity(session: Session) -> Check:
    rows = [row[0] for row in session.execute(text("PRAGMA integrity_check"))]
    if rows == ["ok"]:
        return Check("sqlite_integrity", True, "PRAGMA integrity_check: ok")
    return Check("sqlite_integrity", False, "; ".join(rows[:SHOWN]))


def _audit_chain(session: Session) -> Check:
    from registry.audit import services

    verdict = services.verify(session)
    if verdict.ok:
        head = verdict.chain_hash[:16]
        return Check("audit_chain", True, f"{verdict.size} events verify, chain head {head}…")
    return Check(
        "audit_chain", False, f"{verdict.problem} (the first {verdict.size} events verify)"
    )


def _audit_checkpoint(session: Session, key: CheckpointKey) -> Check:
    from registry.audit import merkle, note, tree
    from registry.audit.models import AuditCheckpoint

    name = "audit_checkpoint"
    issued = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size)).all()
    if not issued:
        return Check(name, True, "no checkpoint issued yet: nothing to compare the log with")
    latest = issued[-1]
    if key.verifier is None:
        return Check(name, False, f"{len(issued)} checkpoints, none checkable: {key.source}")
    problems = []
    for checkpoint in issued:
        where = f"checkpoint of {checkpoint.tree_size} events"
        try:
            signed = note.open_checkpoint(checkpoint.note, key.verifier)
        except note.NoteError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if (signed.size, signed.root_hash.hex()) != (checkpoint.tree_size, checkpoint.root_hash):
            problems.append(f"{where}: its row differs from its signed note")
    root = merkle.tree_root(tree.read_leaves(session, latest.tree_size)).hex()
    if root != latest.root_hash:
        problems.append(
            f"the root of the first {latest.tree_size} events is {root[:16]}…, "
            f"the latest checkpoint signed {latest.root_hash[:16]}…"
        )
    if problems:
        return Check(name, False, "; ".join(problems[:SHOWN]))
    return Check(
        name,
        True,
        f"the root of the first {latest.tree_size} events equals the latest checkpoint's "
        f"({root[:16]}…); {len(issued)} checkpoint signatures verify with {key.source}",
    )


def _ledger_balanced(session: Session) -> Check:
    from registry.clearing import ledger
    from registry.clearing.models import JournalEntry, JournalTransaction

    name = "ledger_balanced"
    balance = ledger.trial_balance(session)
    total = func.sum(JournalEntry.amount)
    unbalanced = session.execute(
        select(JournalEntry.transaction_id, total)
        .group_by(JournalEntry.transaction_id)
        .having(total != 0)
    ).all()
    empty = session.scalars(
        select(JournalTransaction.id).where(
            ~exists().where(JournalEntry.transaction_id == JournalTransaction.id)
        )
    ).all()
    count = session.scalar(select(func.count()).select_from(JournalTransaction)) or 0
    debits = format_money(from_fen(balance["total_debits"]))
    credits = format_money(from_fen(balance["total_credits"]))
    problems = []
    if not balance["balanced"]:
        problems.append(f"the trial balance is off: debits {debits}, credits {credits} CNY")
    if unbalanced:
        shown = ", ".join(f"{tx} sums to {int(fen)} fen" for tx, fen in unbalanced[:SHOWN])
        problems.append(f"{len(unbalanced)} journal transactions do not sum to zero: {shown}")
    if empty:
        shown = ", ".join(str(tx) for tx in empty[:SHOWN])
        problems.append(f"{len(empty)} journal transactions have no entries: {shown}")
    if problems:
        return Check(name, False, "; ".join(problems))
    return Check(
        name,
        True,
        f"trial balance zero (debits = credits = {debits} CNY over "
        f"{len(balance['accounts'])} accounts); {count} journal transactions each sum to zero",
    )


def _contract_blobs(session: Session, blob_root: Path) -> Check:
    from registry.contracts.models import Contract
    from registry.core.blobs import BlobError, BlobMissing, BlobStore
    from registry.licences.models import Licence

    name = "contract_blobs"
    store = BlobStore(blob_root)
    rows = session.execute(
        select(Licence.reference, Contract.signed_sha256, Contract.size)
        .join(Licence, Licence.id == Contract.licence_id)
        .order_by(Licence.reference)
    ).all()
    missing: list[str] = []
    damaged: list[str] = []
    for reference, digest, size in rows:
        try:
            data = store.get(digest)  # reads the file and compares its SHA-256 with the record
        except BlobMissing:
            missing.append(f"{reference} ({digest[:12]}…)")
            continue
        except BlobError:
            damaged.append(f"{reference} ({digest[:12]}…): bytes do not hash to the record")
            continue
        if len(data) != size:
            damaged.append(f"{reference}: {len(data)} bytes, the record says {size}")
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing from {blob_root}: {', '.join(missing[:SHOWN])}")
    if damaged:
        problems.append(f"{len(damaged)} damaged: {', '.join(damaged[:SHOWN])}")
    if problems:
        return Check(name, False, "; ".join(problems))
    return Check(
        name, True, f"{len(rows)} contracts: each PDF present with its recorded SHA-256 and size"
    )
