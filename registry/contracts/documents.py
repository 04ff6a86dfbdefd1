"""Documents made from contracts on request: an offer's specimen and a licence's recordation pack.

Neither is stored: the specimen is rendered from the offer (deterministic, so a small in-process
cache keyed by everything it depends on spares a public endpoint repeated 0.5 s renders), and
the pack wraps the stored signed PDF with a summary made from the contract's recorded inputs.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.audit.services import record
from registry.contracts.context import build_context
from registry.contracts.issuing import office, patent_parties
from registry.contracts.models import Contract
from registry.contracts.recordation import recordation_pack
from registry.contracts.rendering import terms_attachment
from registry.contracts.services import ContractPending
from registry.contracts.specimen import render_specimen, specimen_context
from registry.core import clock
from registry.core.actor import Actor
from registry.core.canonical import canonical_json, format_instant
from registry.core.pdf import TemplateInfo
from registry.licences.services import get_licence
from registry.offers.models import Offer
from registry.offers.reading import get_offer
from registry.offers.services import offer_end_date

# A draft has no gazette entry yet; its TTO still previews the contract it would offer.
UNANNOUNCED: Final = "（尚未公告）/ (not yet announced)"
SPECIMEN_CACHE_SIZE: Final = 64


@dataclass(frozen=True)
class Document:
    data: bytes
    filename: str


class _SpecimenCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[str, bytes] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self.lock:
            found = self.entries.get(key)
            if found is not None:
                self.entries.move_to_end(key)
            return found

    def put(self, key: str, data: bytes) -> None:
        with self.lock:
            self.entries[key] = data
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)


_specimens = _SpecimenCache(SPECIMEN_CACHE_SIZE)


def specimen(session: Session, *, actor: Actor | None, offer_id: uuid.UUID) -> Document:
    """The contract a licensee taking ``offer_id`` up today would get, watermarked and unsigned.

    Visible as the offer is: anyone for a published offer, its owners' TTOs, admins and
    auditors for a draft (404 otherwise)."""
    offer = get_offer(session, actor=actor, offer_id=offer_id)
    today = clock.today()
    parties = patent_parties(session, offer.patent_id)
    arguments: dict[str, Any] = {
        "terms": offer.terms,
        "terms_sha256": offer.terms_sha256,
        "licensors": parties["licensors"],
        "patent": parties["patent"],
        "declaration": _declaration(offer),
        "today": today,
        "end_date": offer_end_date(offer, today),
        "offer_version": offer.version,
    }
    key = hashlib.sha256(canonical_json(arguments).encode()).hexdigest()
    data = _specimens.get(key)
    if data is None:
        data = render_specimen(specimen_context(**arguments), terms=offer.terms)
        _specimens.put(key, data)
    return Document(data=data, filename=f"specimen-{offer.patent.application_number}.pdf")


def _declaration(offer: Offer) -> dict[str, str]:
    if offer.gazette_number is None or offer.published_dt is None:
        return {"gazette_number": UNANNOUNCED, "announced_dt": format_instant(clock.now())}
    return {
        "gazette_number": offer.gazette_number,
        "announced_dt": format_instant(offer.published_dt),
    }


def pack(session: Session, *, actor: Actor, licence_id: uuid.UUID) -> Document:
    """The recordation pack of a licence the actor may see (404 otherwise, and while its
    contract is pending); recorded as a ``contract.recordation_pack`` event."""
    licence = get_licence(session, actor=actor, licence_id=licence_id)
    contract = session.scalar(select(Contract).where(Contract.licence_id == licence.id))
    if contract is None:
        raise ContractPending()
    signed = office().store.get(contract.signed_sha256)
    context = build_context(**contract.inputs)
    # Filed after the contract was made: the summary shows the number once it is known.
    context["contract"]["recordation_number"] = licence.recordation_number
    info = TemplateInfo.load(contract.template_key, contract.template_version)
    data = recordation_pack(
        signed_pdf=signed,
        context=context,
        terms_json=terms_attachment(context, licence.terms, info),
        licence_reference=licence.reference,
    )
    record(
        session,
        actor=actor,
        action="contract.recordation_pack",
        subject_type="licence",
        subject_id=licence.id,
        payload={"reference": licence.reference, "signed_sha256": contract.signed_sha256},
    )
    return Document(data=data, filename=f"{licence.reference}-recordation.zip")
