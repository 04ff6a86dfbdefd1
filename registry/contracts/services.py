"""Contracts after issue: download, verification, re-rendering, catching up and sweeping.

Services check permissions, record audit events and never commit (STYLE.md §5).
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from registry.audit.services import record
from registry.contracts.context import ContractDataError
from registry.contracts.issuing import ContractOffice, issue_contract, office, render_unsigned
from registry.contracts.models import Contract
from registry.contracts.rendering import renderer_fingerprint, template_sha256
from registry.contracts.signing import SigningConfigError, SigningFailed
from registry.contracts.verification import Verdict, verify_pdf
from registry.core.actor import Actor
from registry.core.blobs import StoredBlob
from registry.core.errors import FieldError, NotFound, RegistryError, RuleViolation
from registry.core.pdf import RenderError
from registry.licences.models import Licence
from registry.licences.services import get_licence

logger = logging.getLogger(__name__)


class ContractUnavailable(RegistryError):
    """The contract cannot be made right now (no CJK font, signing key unusable, timestamp
    authority down): the take-up is not recorded, so the client may retry (503)."""

    status = 503
    code = "contract_unavailable"

    def __init__(self) -> None:
        super().__init__(
            "the licence contract cannot be issued right now, so the take-up was not recorded; "
            "retry later with the same Idempotency-Key"
        )


class ContractPending(NotFound):
    def __init__(self) -> None:
        RegistryError.__init__(self, "the licence's contract has not been issued yet")


class ContractDataMissing(RuleViolation):
    code = "contract_data_missing"

    def __init__(self, error: ContractDataError) -> None:
        super().__init__(
            str(error), [FieldError.of(name, "required in the contract") for name in error.fields]
        )


def on_licence_taken_up(licence: Licence, *, session: Session, actor: Actor) -> None:
    """Issue the new licence's contract in the take-up's transaction (inline mode)."""
    office_ = office()
    if office_.mode != "inline":
        return
    issue_or_raise(session, licence, actor=actor, office_=office_)


def issue_or_raise(
    session: Session, licence: Licence, *, actor: Actor | None, office_: ContractOffice
) -> Contract:
    try:
        return issue_contract(session, licence, actor=actor, office_=office_)
    except ContractDataError as error:
        raise ContractDataMissing(error) from error
    except (RenderError, SigningConfigError, SigningFailed) as error:
        logger.exception("cannot issue the contract of licence %s", licence.reference)
        raise ContractUnavailable() from error


@dataclass(frozen=True)
class Download:
    data: bytes
    filename: str


def download(session: Session, *, actor: Actor, licence_id: uuid.UUID) -> Download:
    """The signed PDF of a licence the actor may see (404 otherwise, and 404 while the contract
    is pending). Every download is a ``contract.downloaded`` event."""
    licence = get_licence(session, actor=actor, licence_id=licence_id)
    contract = session.scalar(select(Contract).where(Contract.licence_id == licence.id))
    if contract is None:
        raise ContractPending()
    data = office().store.get(contract.signed_sha256)
    record(
        session,
        actor=actor,
        action="contract.downloaded",
        subject_type="licence",
        subject_id=licence.id,
        payload={"reference": licence.reference, "signed_sha256": contract.signed_sha256},
    )
    return Download(data=data, filename=f"{licence.reference}-contract.pdf")


def verify(session: Session, data: bytes) -> dict[str, Any]:
    """The verdict on an uploaded copy, with the licence and parties when it is on record."""
    office_ = office()
    verdict = verify_pdf(
        data,
        trust_roots=[office_.identity.ca_certificate],
        known_hashes=lambda digest: contract_by_hash(session, digest) is not None,
    )
    contract = contract_by_hash(session, verdict.sha256) if verdict.matches_record else None
    return verdict_document(verdict, contract)


def verdict_document(verdict: Verdict, contract: Contract | None) -> dict[str, Any]:
    inputs = contract.inputs if contract is not None else None
    return {
        "valid": verdict.valid,
        "signature_valid": verdict.signature_valid,
        "unmodified": verdict.unmodified,
        "matches_record": verdict.matches_record,
        "sha256": verdict.sha256,
        "licence_reference": inputs["licence"]["reference"] if inputs else None,
        "licence_id": str(contract.licence_id) if contract is not None else None,
        "licensor": [party["name"] for party in inputs["licensors"]] if inputs else None,
        "licensee": inputs["licensee"]["name"] if inputs else None,
        "signer": verdict.signer,
        "signed_dt": verdict.signed_dt.isoformat() if verdict.signed_dt else None,
        "problems": list(verdict.problems),
    }


def contract_by_hash(session: Session, digest: str) -> Contract | None:
    return session.scalar(select(Contract).where(Contract.signed_sha256 == digest))


def contract_by_reference(session: Session, reference: str) -> Contract | None:
    return session.scalar(
        select(Contract)
        .join(Licence, Licence.id == Contract.licence_id)
        .where(Licence.reference == reference)
    )


@dataclass(frozen=True)
class Rerender:
    matches: bool
    recorded_sha256: str
    rendered_sha256: str
    template_changed: bool
    renderer_changed: dict[str, tuple[Any, Any]]


def rerender(contract: Contract) -> Rerender:
    """Render the unsigned PDF again from the record and compare it with the recorded hash;
    when they differ, say whether the template or the engine or font changed since."""
    data = render_unsigned(
        contract.inputs, key=contract.template_key, version=contract.template_version
    )
    rendered = hashlib.sha256(data).hexdigest()
    now = renderer_fingerprint(contract.renderer.get("font_family", ""))
    changed = {
        name: (contract.renderer.get(name), now.get(name))
        for name in ("weasyprint", "font_sha256")
        if contract.renderer.get(name) != now.get(name)
    }
    return Rerender(
        matches=rendered == contract.unsigned_sha256,
        recorded_sha256=contract.unsigned_sha256,
        rendered_sha256=rendered,
        template_changed=template_sha256(contract.template_key, contract.template_version)
        != contract.template_sha256,
        renderer_changed=changed,
    )


def pending_licences(session: Session, *, limit: int) -> list[Licence]:
    """Licences without a contract (deferred mode, or made before contracts existed)."""
    return list(
        session.scalars(
            select(Licence)
            .where(~exists().where(Contract.licence_id == Licence.id))
            .order_by(Licence.created_dt, Licence.id)
            .limit(limit)
        )
    )


def orphan_blobs(session: Session, *, older_than_seconds: float) -> Iterator[StoredBlob]:
    """Stored PDFs no contract record names (a take-up whose commit failed)."""
    referenced = set(session.scalars(select(Contract.signed_sha256)))
    yield from office().store.orphans(
        referenced.__contains__, older_than_seconds=older_than_seconds
    )
