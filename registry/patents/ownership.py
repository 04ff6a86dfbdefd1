"""Ownership rules: co-owners with title and income shares, income beneficiaries, decision rules
and inventors (reference/law.md A5, B2; CNIPA guidelines on IP terms in industry–university–
research agreements; Patent Law Art. 14).

These are the checks and row builders shared by registration, bulk import and the ownership
endpoints; the service functions that use them live in ``services.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation, OrganisationKind
from registry.core.actor import Actor, Role
from registry.core.errors import FieldError
from registry.core.shares import ShareError, check_total
from registry.patents.models import (
    ClauseSet,
    IncomeBeneficiary,
    Inventor,
    OwnershipBasis,
    Patent,
    PatentOwner,
)

OWNER_KINDS = frozenset(
    {OrganisationKind.UNIVERSITY, OrganisationKind.INSTITUTE, OrganisationKind.ENTERPRISE}
)


class Organisations:
    """Organisation kinds by id, each read once: an import asks about the same few."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._kinds: dict[uuid.UUID, OrganisationKind | None] = {}

    def kinds(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, OrganisationKind | None]:
        wanted = set(ids)
        if missing := wanted - self._kinds.keys():
            found = {
                org_id: kind
                for org_id, kind in self.session.execute(
                    select(Organisation.id, Organisation.kind).where(Organisation.id.in_(missing))
                )
            }
            self._kinds |= {org_id: found.get(org_id) for org_id in missing}
        return {org_id: self._kinds[org_id] for org_id in wanted}


def own_organisation_kept(actor: Actor, owners: list[dict[str, Any]]) -> list[FieldError]:
    if actor.role is Role.TTO and actor.organisation_id not in {
        o["organisation_id"] for o in owners
    }:
        return [FieldError.of("owners", "your organisation must remain an owner")]
    return []


def apply_decision_rules(patent: Patent, rules_data: dict[str, Any] | None) -> None:
    for name, rule in (rules_data or {}).items():
        setattr(patent, f"consent_{name}", rule)


def add_ownership(
    session: Session,
    patent_id: uuid.UUID,
    owners: list[dict[str, Any]],
    beneficiaries: list[dict[str, Any]],
    stamp: datetime,
) -> None:
    session.add_all(
        PatentOwner(patent_id=patent_id, effective_from_dt=stamp, position=position, **owner)
        for position, owner in enumerate(owners)
    )
    session.add_all(
        IncomeBeneficiary(
            patent_id=patent_id, effective_from_dt=stamp, position=position, **beneficiary
        )
        for position, beneficiary in enumerate(beneficiaries)
    )


def ownership_errors(
    organisations: Organisations,
    owners: list[dict[str, Any]],
    beneficiaries: list[dict[str, Any]],
) -> list[FieldError]:
    errors = []
    seen: set[uuid.UUID] = set()
    kinds = organisations.kinds(o["organisation_id"] for o in owners)
    for index, owner in enumerate(owners):
        org_id = owner["organisation_id"]
        if org_id in seen:
            errors.append(FieldError.of(f"owners.{index}.organisation_id", "listed twice"))
        seen.add(org_id)
        if kinds.get(org_id) not in OWNER_KINDS:
            errors.append(
                FieldError.of(
                    f"owners.{index}.organisation_id",
                    "not a registered university, institute or enterprise",
                )
            )
        if owner.get("basis") is OwnershipBasis.COOPERATION_AGREEMENT and not owner.get(
            "clause_set"
        ):
            errors.append(
                FieldError.of(
                    f"owners.{index}.clause_set",
                    "a cooperation agreement names its clause set: "
                    + ", ".join(c.value for c in ClauseSet),
                )
            )
    for index, beneficiary in enumerate(beneficiaries):
        valid_to = beneficiary.get("valid_to")
        if valid_to is not None and valid_to < beneficiary["valid_from"]:
            errors.append(FieldError.of(f"beneficiaries.{index}.valid_to", "ends before it starts"))
    try:
        check_total([o["title_share"] for o in owners], what="title shares")
    except ShareError as exc:
        errors.append(FieldError.of("owners", str(exc)))
    try:
        check_total(
            [o["income_share"] for o in owners] + [b["income_share"] for b in beneficiaries],
            what="income shares of owners and beneficiaries",
        )
    except ShareError as exc:
        errors.append(FieldError.of("owners", str(exc)))
    return errors


OWNER_FIELDS = ("organisation_id", "title_share", "income_share", "basis", "clause_set")


BENEFICIARY_FIELDS = ("name", "organisation_id", "basis", "income_share", "valid_from", "valid_to")


def payload_entry(item: Any, names: Sequence[str]) -> dict[str, Any]:
    """The named fields of a row or of a loaded request dict, for an audit payload."""
    if isinstance(item, dict):
        return {name: item.get(name) for name in names}
    return {name: getattr(item, name) for name in names}


def ownership_payload(
    patent: Patent, owners: Sequence[Any], beneficiaries: Sequence[Any]
) -> dict[str, Any]:
    return {
        "owners": [payload_entry(o, (*OWNER_FIELDS, "agreement_ref")) for o in owners],
        "beneficiaries": [payload_entry(b, BENEFICIARY_FIELDS) for b in beneficiaries],
        "decision_rules": {
            "open_licence": patent.consent_open_licence,
            "ordinary_licence": patent.consent_ordinary_licence,
            "exclusive_licence": patent.consent_exclusive_licence,
            "assignment": patent.consent_assignment,
        },
    }


def inventor_errors(
    organisations: Organisations, inventors: list[dict[str, Any]]
) -> list[FieldError]:
    errors = []
    try:
        check_total([i["share"] for i in inventors], what="inventor shares")
    except ShareError as exc:
        errors.append(FieldError.of("inventors", str(exc)))
    kinds = organisations.kinds(i["organisation_id"] for i in inventors if i.get("organisation_id"))
    for index, inventor in enumerate(inventors):
        if inventor.get("organisation_id") and kinds[inventor["organisation_id"]] is None:
            errors.append(FieldError.of(f"inventors.{index}.organisation_id", "unknown"))
    return errors


def inventor_entry(inventor: Any) -> dict[str, Any]:
    return payload_entry(inventor, ("name", "share", "organisation_id"))


def add_inventors(
    session: Session, patent_id: uuid.UUID, inventors: list[dict[str, Any]], stamp: datetime
) -> None:
    session.add_all(
        Inventor(
            patent_id=patent_id,
            effective_from_dt=stamp,
            position=position,
            name=inventor["name"],
            share=inventor["share"],
            organisation_id=inventor.get("organisation_id"),
        )
        for position, inventor in enumerate(inventors)
    )
