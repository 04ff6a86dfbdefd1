"""Downloading a register as CSV: the caller's rows, and an audit event for every download."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from registry.audit.export_format import sha256
from registry.audit.services import record
from registry.core.actor import Actor
from registry.exports import registers

DOWNLOADED = "export.downloaded"


@dataclass(frozen=True)
class Download:
    data: bytes
    rows: int
    filename: str


def download_register(session: Session, *, actor: Actor, name: str) -> Download:
    """The register ``name`` as CSV, holding exactly the rows the caller's list endpoint for
    it shows. Every download is an audit event naming the register, the row count and the
    file's SHA-256 (issue 6 §4: every auditor read of an export is audited; so is anyone
    else's). Raises :class:`NotFound` for an unknown register and :class:`Forbidden` for a role
    the register's own list refuses (a licensee asking for patents or settlements)."""
    table = registers.table(session, actor, name)
    data = table.csv()
    record(
        session,
        actor=actor,
        action=DOWNLOADED,
        subject_type="register",
        subject_id=table.register.name,
        payload={"register": table.register.name, "rows": len(table.rows), "sha256": sha256(data)},
    )
    return Download(data, len(table.rows), f"{table.register.name}.csv")
