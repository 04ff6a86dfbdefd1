"""The operator's export bundle (``flask --app wsgi export DIR``): the audit events, every
register, every contract, a manifest, and a signed checkpoint covering the export itself.

Layout and chain of trust: :mod:`registry.audit.export_format`; what the auditor's verifier
checks: :mod:`registry.audit.verify_export`.

Everything is read in one transaction holding the audit log's head lock, so no event can be
appended between reading the events and recording ``export.created``: that event is number
*n* + 1 after the *n* events written, and the checkpoint issued next covers exactly those
*n* + 1 (writers wait for the export). The files go to a private staging directory beside DIR
and are moved into place only after the commit, so a failed export leaves no bundle and a
bundle always has its ``export.created`` event in the log.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.audit import checkpoints
from registry.audit import export_format as fmt
from registry.audit import services as audit_services
from registry.audit.models import AuditEvent
from registry.contracts.models import Contract
from registry.core import clock
from registry.core.blobs import BlobError, BlobStore
from registry.core.canonical import format_instant
from registry.core.db import Database
from registry.exports import registers
from registry.exports.readme import readme
from registry.licences.models import Licence


class BundleError(RuntimeError):
    """The export cannot be written (a non-empty target, a missing contract blob)."""


@dataclass
class Written:
    directory: Path
    events: int = 0  # covered by the checkpoint, export.created included
    rows: dict[str, int] = field(default_factory=dict)
    contracts: int = 0
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    checkpoint: str = ""


def check_target(directory: Path) -> None:
    """DIR must be new or an empty directory: an export never mixes with other files."""
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BundleError(f"{directory} exists and is not an empty directory: choose a new one")


def write_bundle(
    directory: Path, *, db: Database, signer: checkpoints.CheckpointSigner, store: BlobStore
) -> Written:
    check_target(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        with db.transaction() as session:
            written = _fill(session, staging, signer, store)
        (staging / fmt.CHECKPOINT).write_text(written.checkpoint, encoding="utf-8")
        (staging / fmt.KEY).write_text(signer.verifier.vkey + "\n", encoding="utf-8")
        check_target(directory)  # still empty: nothing else wrote there meanwhile
        if directory.exists():
            directory.rmdir()
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    written.directory = directory
    return written


def _fill(
    session: Session, staging: Path, signer: checkpoints.CheckpointSigner, store: BlobStore
) -> Written:
    written = Written(staging)

    def put(relative: str, data: bytes) -> None:
        path = staging / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.files[relative] = {"sha256": fmt.sha256(data), "size": len(data)}

    with audit_services.batch(session):  # the head stays locked until the commit
        head = session.info[audit_services.HEAD_LOCK]
        size = head.size
        with (staging / fmt.EVENTS).open("w", encoding="utf-8", newline="\n") as out:
            _write_events(session, out, size)
        put(fmt.README, readme(signer.origin).encode("utf-8"))
        tables = {}
        for name in registers.REGISTERS:
            table = registers.table(session, registers.OPERATOR, name)
            put(f"{fmt.REGISTERS}/{name}.csv", table.csv())
            written.rows[name] = len(table.rows)
            tables[name] = {
                "file": f"{fmt.REGISTERS}/{name}.csv",
                "key": table.register.key,
                "columns": list(table.register.columns),
                "rows": table.row_hashes(),
            }
        contracts = []
        for contract, reference in session.execute(
            select(Contract, Licence.reference)
            .join(Licence, Licence.id == Contract.licence_id)
            .order_by(Licence.reference)
        ):
            try:
                data = store.get(contract.signed_sha256)
            except BlobError as exc:
                raise BundleError(f"the contract of licence {reference}: {exc}") from exc
            put(f"{fmt.CONTRACTS}/{reference}.pdf", data)
            contracts.append({"licence": reference, "sha256": contract.signed_sha256})
        written.contracts = len(contracts)
        manifest = fmt.manifest_bytes(
            {
                "format": fmt.FORMAT,
                "origin": signer.origin,
                "created_dt": format_instant(clock.now()),
                "events_before_export": size,
                "files": written.files,
                "registers": tables,
                "contracts": contracts,
            }
        )
        (staging / fmt.MANIFEST).write_bytes(manifest)
        event = audit_services.record(
            session,
            actor=None,
            action=fmt.EXPORT_ACTION,
            subject_type="export",
            subject_id=uuid.uuid4(),
            payload={
                "manifest_sha256": fmt.sha256(manifest),
                "events_before_export": size,
                "files": len(written.files),
                "rows": written.rows,
                "contracts": len(contracts),
            },
        )
    issued = checkpoints.issue(session, actor=None, signer_=signer)
    if issued.checkpoint.tree_size != event.seq:  # the lock makes this impossible: say so
        raise BundleError("the audit log moved during the export; run it again")
    with (staging / fmt.EVENTS).open("a", encoding="utf-8", newline="\n") as out:
        out.write(fmt.event_line(_event_document(event)) + "\n")
    written.events = event.seq
    written.checkpoint = issued.checkpoint.note
    return written


def _write_events(session: Session, out: TextIO, size: int) -> None:
    statement = (
        select(AuditEvent)
        .where(AuditEvent.seq <= size)
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=2000)
    )
    for event in session.scalars(statement):
        out.write(fmt.event_line(_event_document(event)) + "\n")


def _event_document(event: AuditEvent) -> dict[str, Any]:
    """The event as the leaf hash covers it (registry.audit.services.canonical_event), with the
    hashes the registry stored."""
    return {
        "seq": event.seq,
        "time": format_instant(event.event_dt),
        "actor": str(event.actor_id) if event.actor_id else None,
        "actor_organisation": (
            str(event.actor_organisation_id) if event.actor_organisation_id else None
        ),
        "action": event.action,
        "subject_type": event.subject_type,
        "subject_id": event.subject_id,
        "payload": json.loads(event.payload),
        "leaf_hash": event.leaf_hash,
        "chain_hash": event.chain_hash,
    }
