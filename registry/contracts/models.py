"""The record of a licence's signed contract; the PDF itself lives in the blob store.

One contract per licence, written once: the table is append-only in the database (migration
0003), so a contract is never re-issued over another. The record keeps what is needed to check
a copy (the signed SHA-256, which names the blob), to render the unsigned PDF again (the
template key, version and content hash, and ``inputs``, the plain data the contract was built
from, so a later change of an organisation's address cannot change a past contract), and who
signed it when (certificate fingerprint, signing time).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from registry.core.db import Base, created_dt, uuid_pk
from registry.licences.models import Licence


class Contract(Base):
    __tablename__ = "contracts"

    id: Mapped[uuid_pk]
    licence_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("licences.id"), unique=True)
    template_key: Mapped[str] = mapped_column(String(64))
    template_version: Mapped[str] = mapped_column(String(20))
    template_sha256: Mapped[str] = mapped_column(
        String(64), comment="SHA-256 over the template's files when the contract was made"
    )
    renderer: Mapped[dict[str, Any]] = mapped_column(
        JSON, comment="WeasyPrint version and the CJK font file's SHA-256"
    )
    inputs: Mapped[dict[str, Any]] = mapped_column(
        JSON, comment="plain data the contract was rendered from (for rerender)"
    )
    unsigned_sha256: Mapped[str] = mapped_column(String(64))
    signed_sha256: Mapped[str] = mapped_column(
        String(64), unique=True, comment="SHA-256 of the signed PDF; names the blob"
    )
    size: Mapped[int] = mapped_column(comment="bytes of the signed PDF")
    signed_dt: Mapped[datetime]
    certificate_sha256: Mapped[str] = mapped_column(
        String(64), comment="SHA-256 of the signing certificate (DER)"
    )
    created_dt: Mapped[created_dt]

    # The backref gives ``licence.contract`` (None until issued) without the licences
    # feature importing this one (DESIGN.md §3: licences ← contracts).
    licence: Mapped[Licence] = relationship(
        backref=backref("contract", uselist=False, lazy="selectin")
    )

    def __repr__(self) -> str:
        return f"<Contract {self.licence_id} {self.signed_sha256[:12]}>"
