"""Issue a licence's contract: gather its data, render, sign, store the PDF, record it.

The order matters (reliability.md §0 rule 2): the signed PDF is written to the blob store
*before* the record that names it is flushed, in the caller's transaction; if that transaction
fails to commit, no record exists and the blob is an orphan for ``contracts sweep``. A record
therefore never points at a missing file, and a file is never overwritten (content-addressed).

The data the contract states is copied into the record (``inputs``) as plain values, so the
contract can be rendered again byte for byte even after an organisation changes its address.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation
from registry.audit.services import record
from registry.contracts.context import build_context
from registry.contracts.models import Contract
from registry.contracts.rendering import (
    TEMPLATE_KEY,
    TEMPLATE_VERSION,
    render_contract,
    renderer_fingerprint,
    template_sha256,
)
from registry.contracts.signing import SigningIdentity, load_identity, sign_pdf
from registry.core import clock
from registry.core.actor import Actor
from registry.core.blobs import BlobStore
from registry.core.canonical import format_instant
from registry.core.pdf import TemplateInfo
from registry.licences.models import Licence
from registry.patents.models import OwnershipBasis, Patent, PatentOwner

EXTENSION: Final = "registry.contracts"
# The contract states every party's domicile (CC Art. 845); an organisation registered without
# an address is named as such rather than left blank.
ADDRESS_NOT_ON_RECORD: Final = "（地址未登记）/ (address not on record)"


@dataclass
class ContractOffice:
    """What issuing needs, per app: the blob store, the signing identity (loaded on first use,
    generating development keys if need be) and the issue mode."""

    store: BlobStore
    instance_path: Path
    p12_path: str | None
    p12_passphrase: str | None = field(repr=False)
    timestamp_url: str | None
    mode: str
    _identity: SigningIdentity | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def identity(self) -> SigningIdentity:
        with self._lock:
            if self._identity is None:
                self._identity = load_identity(
                    instance_path=self.instance_path,
                    p12_path=self.p12_path,
                    p12_passphrase=self.p12_passphrase,
                )
            return self._identity


def office(app: Flask | None = None) -> ContractOffice:
    found: ContractOffice = (app or current_app).extensions[EXTENSION]
    return found


def _organisation(record_: Organisation, *, sme: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": record_.name,
        "name_en": record_.name_en,
        "uscc": record_.uscc,
        "address": record_.address or ADDRESS_NOT_ON_RECORD,
    }
    if sme:
        data["is_sme"] = record_.is_sme
    return data


def patent_parties(session: Session, patent_id: uuid.UUID) -> dict[str, Any]:
    """The patent as a contract states it and its current owners, the licensors (JSON-safe)."""
    patent = session.get_one(Patent, patent_id)
    owners = session.execute(
        select(PatentOwner, Organisation)
        .join(Organisation, Organisation.id == PatentOwner.organisation_id)
        .where(PatentOwner.patent_id == patent.id, PatentOwner.superseded_dt.is_(None))
        # The largest title holder first: its address is the place of the contract (context.py).
        .order_by(PatentOwner.title_share.desc(), Organisation.name)
    ).all()
    return {
        "licensors": [_organisation(organisation) for _, organisation in owners],
        "patent": {
            "title": patent.title,
            "title_en": patent.title_en,
            "application_number": patent.application_number,
            "patent_type": patent.patent_type.value,
            "filing_date": patent.filing_date.isoformat(),
            "grant_date": patent.grant_date.isoformat() if patent.grant_date else None,
            "expiry_date": patent.expiry_date.isoformat(),
            "service_invention": any(
                owner.basis is OwnershipBasis.SERVICE_INVENTION for owner, _ in owners
            ),
        },
    }


def contract_inputs(session: Session, licence: Licence) -> dict[str, Any]:
    """The plain data a licence's contract states, as of now (JSON-safe)."""
    offer = licence.offer
    # A take-up happens only on a published offer, which has both.
    assert offer.gazette_number is not None
    assert offer.published_dt is not None
    return {
        "licence": {
            "reference": licence.reference,
            "terms": licence.terms,
            "terms_sha256": licence.terms_sha256,
            "notice": licence.notice,
            "notice_dt": format_instant(licence.notice_dt),
            "effective_date": licence.effective_date.isoformat(),
            "end_date": licence.end_date.isoformat(),
            "recordation_due_date": licence.recordation_due_date.isoformat(),
            "recordation_number": licence.recordation_number,
            "offer_version": licence.offer_version,
        },
        **patent_parties(session, licence.patent_id),
        "licensee": _organisation(licence.licensee, sme=True),
        "declaration": {
            "gazette_number": offer.gazette_number,
            "announced_dt": format_instant(offer.published_dt),
        },
        "recordation_filer": "licensor",
    }


def render_unsigned(inputs: dict[str, Any], *, key: str, version: str) -> bytes:
    """The unsigned PDF from a record's inputs: what ``contracts rerender`` recomputes."""
    licence = inputs["licence"]
    context = build_context(**inputs)
    return render_contract(
        context,
        terms=licence["terms"],
        document_dt=datetime.fromisoformat(licence["notice_dt"]),
        key=key,
        version=version,
    )


def issue_contract(
    session: Session, licence: Licence, *, actor: Actor | None, office_: ContractOffice
) -> Contract:
    """Render, sign and store ``licence``'s contract and record it in the session's transaction.

    Raises :class:`~registry.core.pdf.RenderError` (no CJK font, a template fault),
    :class:`~registry.contracts.context.ContractDataError` (a field the contract must state is
    missing), :class:`~registry.contracts.signing.SigningConfigError` or
    :class:`~registry.contracts.signing.SigningFailed`; nothing is recorded then."""
    inputs = contract_inputs(session, licence)
    info = TemplateInfo.load(TEMPLATE_KEY, TEMPLATE_VERSION)
    unsigned = render_unsigned(inputs, key=info.key, version=info.version)
    identity = office_.identity
    signed = sign_pdf(unsigned, identity, timestamp_url=office_.timestamp_url)
    digest = office_.store.put(signed.data)  # before the record: never a record without a file
    contract = Contract(
        id=uuid.uuid4(),
        licence=licence,
        template_key=info.key,
        template_version=info.version,
        template_sha256=template_sha256(info.key, info.version),
        renderer=renderer_fingerprint(info.font_family),
        inputs=inputs,
        unsigned_sha256=hashlib.sha256(unsigned).hexdigest(),
        signed_sha256=digest,
        size=len(signed.data),
        signed_dt=signed.signed_dt,
        certificate_sha256=signed.certificate_sha256,
        created_dt=clock.now(),
    )
    session.add(contract)
    session.flush()
    record(
        session,
        actor=actor,
        action="contract.issued",
        subject_type="licence",
        subject_id=licence.id,
        payload={
            "reference": licence.reference,
            "contract_id": contract.id,
            # T16: the signed file's hash is a leaf of the audit log.
            "signed_sha256": contract.signed_sha256,
            "unsigned_sha256": contract.unsigned_sha256,
            "template": f"{contract.template_key}/{contract.template_version}",
            "template_sha256": contract.template_sha256,
            "certificate_sha256": contract.certificate_sha256,
            "size": contract.size,
        },
    )
    return contract
