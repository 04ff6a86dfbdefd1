"""Patent registry rules: registration, corrections, ownership, inventors, encumbrances.

Each function checks permission, collects every violation before raising, flushes, bumps the
patent's version (its ETag) and records one audit event; none commits (STYLE.md §5).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from registry.accounts.models import Organisation, OrganisationKind
from registry.audit.services import record
from registry.core.actor import Actor, Role
from registry.core.clock import today
from registry.core.errors import (
    Duplicate,
    FieldError,
    Forbidden,
    NotFound,
    RuleViolation,
    validation_failed,
)
from registry.core.identifiers import parse_application_number
from registry.core.shares import HUNDRED_PERCENT, ShareError, check_total
from registry.patents import permissions, rules
from registry.patents.models import (
    ClauseSet,
    Encumbrance,
    EncumbranceKind,
    IncomeBeneficiary,
    Inventor,
    LegalStatus,
    OwnershipBasis,
    Patent,
    PatentOwner,
    PatentType,
)
from registry.patents.signals import encumbrance_requested

OWNER_KINDS = frozenset(
    {OrganisationKind.UNIVERSITY, OrganisationKind.INSTITUTE, OrganisationKind.ENTERPRISE}
)
NEEDS_EVALUATION_REPORT = frozenset({PatentType.UTILITY_MODEL, PatentType.DESIGN})
EXCLUSIVE_KINDS = frozenset({EncumbranceKind.EXCLUSIVE_LICENCE, EncumbranceKind.SOLE_LICENCE})
PATENT_FIELDS = (
    "title",
    "title_en",
    "abstract",
    "ipc",
    "filing_date",
    "grant_date",
    "legal_status",
    "annual_fees_paid_through",
    "evaluation_report_number",
    "evaluation_report_date",
    "evaluation_report_conclusion",
)


def now() -> datetime:
    return datetime.now(UTC)


def _with_children(statement: Select[Patent]) -> Select[Patent]:
    return statement.options(
        selectinload(Patent.owners).selectinload(PatentOwner.organisation),
        selectinload(Patent.beneficiaries),
        selectinload(Patent.inventors),
        selectinload(Patent.encumbrances),
    )


def _current_owner_ids(session: Session, patent_id: uuid.UUID) -> list[uuid.UUID]:
    return list(
        session.scalars(
            select(PatentOwner.organisation_id).where(
                PatentOwner.patent_id == patent_id, PatentOwner.superseded_dt.is_(None)
            )
        )
    )


def visible_patents(actor: Actor, query: dict[str, Any]) -> Select[Patent]:
    """Patents the actor may list, newest first, with optional filters."""
    if actor.role not in permissions.PATENT_READERS:
        raise Forbidden("patents are read through published offers")
    statement = select(Patent).order_by(Patent.created_dt.desc(), Patent.id)
    owned_by = query.get("organisation_id")
    if actor.role is Role.TTO:
        owned_by = actor.organisation_id if owned_by in (None, actor.organisation_id) else None
        if owned_by is None:  # a TTO asking for another organisation's patents sees none
            return statement.where(Patent.id.is_(None))
    if owned_by is not None:
        statement = statement.where(
            exists().where(
                PatentOwner.patent_id == Patent.id,
                PatentOwner.organisation_id == owned_by,
                PatentOwner.superseded_dt.is_(None),
            )
        )
    if query.get("patent_type"):
        statement = statement.where(Patent.patent_type == query["patent_type"])
    if query.get("q"):
        needle = query["q"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(
            or_(
                Patent.title.contains(needle, autoescape=False, escape="\\"),
                Patent.application_number.contains(needle, autoescape=False, escape="\\"),
            )
        )
    return _with_children(statement)


def get_patent(session: Session, *, actor: Actor, patent_id: uuid.UUID) -> Patent:
    """The patent if the actor may see it; 404 otherwise (scope never leaks)."""
    patent = session.scalar(_with_children(select(Patent).where(Patent.id == patent_id)))
    if patent is None or not permissions.can_view(actor, _current_owner_ids(session, patent_id)):
        raise NotFound("patent")
    return patent


def _editable(session: Session, actor: Actor, patent_id: uuid.UUID) -> Patent:
    patent = get_patent(session, actor=actor, patent_id=patent_id)
    if not permissions.can_edit(actor, [o.organisation_id for o in patent.owners]):
        raise Forbidden("only TTO staff of an owning organisation and admins change a patent")
    return patent


def _check_fields(values: dict[str, Any]) -> list[FieldError]:
    """Cross-field rules of a patent record (single fields are checked by the schema)."""
    errors = []
    patent_type = values["patent_type"]
    number = parse_application_number(values["application_number"])
    if number.patent_type != patent_type:
        errors.append(
            FieldError.of(
                "patent_type",
                f"application number {number.canonical} is a {number.patent_type} number",
            )
        )
    filing: date = values["filing_date"]
    # PCT national-phase numbers (types 8, 9) carry the entry year, not the filing year.
    if number.type_digit in "123" and filing.year != number.year:
        errors.append(
            FieldError.of(
                "filing_date", f"an application numbered {number.year}… was filed in {number.year}"
            )
        )
    if filing > today():
        errors.append(FieldError.of("filing_date", "the filing date is in the future"))
    grant = values.get("grant_date")
    if grant is not None and grant < filing:
        errors.append(FieldError.of("grant_date", "the grant cannot precede the filing"))
    if grant is not None and grant > today():
        errors.append(FieldError.of("grant_date", "the grant date is in the future"))
    status = values.get("legal_status")
    if grant is None and status not in (None, LegalStatus.PENDING):
        errors.append(FieldError.of("legal_status", f"{status} needs a grant date"))
    if grant is not None and status is LegalStatus.PENDING:
        errors.append(FieldError.of("legal_status", "a granted patent is not pending"))
    if values.get("evaluation_report_number") and patent_type not in NEEDS_EVALUATION_REPORT:
        errors.append(
            FieldError.of(
                "evaluation_report", "evaluation reports exist for utility models and designs only"
            )
        )
    return errors


def _flatten_report(data: dict[str, Any]) -> dict[str, Any]:
    values = dict(data)
    if "evaluation_report" in values:
        report = values.pop("evaluation_report") or {}
        values["evaluation_report_number"] = report.get("number")
        values["evaluation_report_date"] = report.get("date")
        values["evaluation_report_conclusion"] = report.get("conclusion")
    return values


def create_patent(session: Session, *, actor: Actor, data: dict[str, Any]) -> Patent:
    """Register a patent; the creating TTO's organisation is its sole owner until owners are
    set. Admins name the first owner. 409 when the application number is registered."""
    require_registrar(actor)
    values = _flatten_report(data)
    owner_id = values.pop("owner_organisation_id", None)
    if actor.role is Role.TTO and owner_id not in (None, actor.organisation_id):
        raise Forbidden("TTO staff register patents for their own organisation")
    owner_id = owner_id or actor.organisation_id
    errors = _check_fields(values)
    owner = session.get(Organisation, owner_id)
    if owner is None or owner.kind not in OWNER_KINDS:
        errors.append(
            FieldError.of(
                "owner_organisation_id", "a university, institute or enterprise must own the patent"
            )
        )
    validation_failed(errors)
    if session.scalar(
        select(Patent.id).where(Patent.application_number == values["application_number"])
    ):
        raise Duplicate(
            "this application number is registered",
            [FieldError.of("application_number", "already registered")],
        )
    values.setdefault(
        "legal_status", LegalStatus.VALID if values.get("grant_date") else LegalStatus.PENDING
    )
    values.setdefault("ipc", [])
    stamp = now()
    patent = Patent(
        **values,
        expiry_date=rules.expiry_date(values["patent_type"], values["filing_date"]),
        version=1,
        created_dt=stamp,
        updated_dt=stamp,
    )
    session.add(patent)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Duplicate(
            "this application number is registered",
            [FieldError.of("application_number", "already registered")],
        ) from None
    session.add(
        PatentOwner(
            patent_id=patent.id,
            organisation_id=owner_id,
            title_share=_hundred(),
            income_share=_hundred(),
            basis=OwnershipBasis.SERVICE_INVENTION,
            effective_from_dt=stamp,
            position=0,
        )
    )
    session.flush()
    record(
        session,
        actor=actor,
        action="patent.created",
        subject_type="patent",
        subject_id=patent.id,
        payload={
            **{name: getattr(patent, name) for name in ("application_number", "patent_type")},
            **{name: getattr(patent, name) for name in PATENT_FIELDS},
            "expiry_date": patent.expiry_date,
            "owner_organisation_id": owner_id,
        },
    )
    session.expire(patent, ["owners", "inventors", "beneficiaries", "encumbrances"])
    return patent


def _hundred() -> Decimal:
    return HUNDRED_PERCENT


def update_patent(
    session: Session, *, actor: Actor, patent: Patent, data: dict[str, Any]
) -> Patent:
    """Correct a patent's record. The caller has checked ``If-Match`` against the version."""
    values = _flatten_report(data)
    merged = {name: getattr(patent, name) for name in PATENT_FIELDS}
    merged |= values
    merged["patent_type"] = patent.patent_type
    merged["application_number"] = patent.application_number
    validation_failed(_check_fields(merged))
    changes = {
        name: [getattr(patent, name), value]
        for name, value in values.items()
        if getattr(patent, name) != value
    }
    if not changes:
        return patent
    for name, (_old, new) in changes.items():
        setattr(patent, name, new)
    patent.expiry_date = rules.expiry_date(patent.patent_type, patent.filing_date)
    _touch(patent)
    session.flush()
    record(
        session,
        actor=actor,
        action="patent.updated",
        subject_type="patent",
        subject_id=patent.id,
        payload={"changes": changes, "version": patent.version},
    )
    return patent


def _touch(patent: Patent) -> None:
    patent.version += 1
    patent.updated_dt = now()


def _supersede(session: Session, rows: Sequence[Any], stamp: datetime) -> None:
    for row in rows:
        row.superseded_dt = stamp
    session.flush()


def set_ownership(
    session: Session, *, actor: Actor, patent_id: uuid.UUID, data: dict[str, Any]
) -> Patent:
    """Replace the owners, income beneficiaries and decision rules of a patent.

    Rules (reference/law.md A5, B2; CNIPA guidelines on IP terms in cooperation agreements):
    title shares of the owners sum to exactly 100; income shares of owners and beneficiaries
    together sum to exactly 100; each owner appears once and is a university, institute or
    enterprise; a cooperation agreement names its clause set; a TTO keeps its own organisation
    among the owners (an assignment away is the operator's act).
    """
    patent = _editable(session, actor, patent_id)
    owners = data["owners"]
    beneficiaries = data.get("beneficiaries") or []
    errors = _ownership_errors(session, owners, beneficiaries)
    if actor.role is Role.TTO and actor.organisation_id not in {
        o["organisation_id"] for o in owners
    }:
        errors.append(FieldError.of("owners", "your organisation must remain an owner"))
    validation_failed(errors)
    stamp = now()
    old = _ownership_payload(patent)
    _supersede(session, [*patent.owners, *patent.beneficiaries], stamp)
    for position, owner in enumerate(owners):
        session.add(
            PatentOwner(patent_id=patent.id, effective_from_dt=stamp, position=position, **owner)
        )
    for position, beneficiary in enumerate(beneficiaries):
        session.add(
            IncomeBeneficiary(
                patent_id=patent.id, effective_from_dt=stamp, position=position, **beneficiary
            )
        )
    if rules_data := data.get("decision_rules"):
        for name, rule in rules_data.items():
            setattr(patent, f"consent_{name}", rule)
    _touch(patent)
    session.flush()
    session.expire(patent, ["owners", "beneficiaries"])
    record(
        session,
        actor=actor,
        action="patent.ownership_set",
        subject_type="patent",
        subject_id=patent.id,
        payload={"before": old, "after": _ownership_payload(patent), "version": patent.version},
    )
    return patent


def _ownership_errors(
    session: Session, owners: list[dict[str, Any]], beneficiaries: list[dict[str, Any]]
) -> list[FieldError]:
    errors = []
    seen: set[uuid.UUID] = set()
    kinds = dict(
        session.execute(
            select(Organisation.id, Organisation.kind).where(
                Organisation.id.in_({o["organisation_id"] for o in owners})
            )
        )
        .tuples()
        .all()
    )
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


def _ownership_payload(patent: Patent) -> dict[str, Any]:
    return {
        "owners": [
            {
                "organisation_id": o.organisation_id,
                "title_share": o.title_share,
                "income_share": o.income_share,
                "basis": o.basis,
                "clause_set": o.clause_set,
                "agreement_ref": o.agreement_ref,
            }
            for o in patent.owners
        ],
        "beneficiaries": [
            {
                "name": b.name,
                "organisation_id": b.organisation_id,
                "basis": b.basis,
                "income_share": b.income_share,
                "valid_from": b.valid_from,
                "valid_to": b.valid_to,
            }
            for b in patent.beneficiaries
        ],
        "decision_rules": {
            "open_licence": patent.consent_open_licence,
            "ordinary_licence": patent.consent_ordinary_licence,
            "exclusive_licence": patent.consent_exclusive_licence,
            "assignment": patent.consent_assignment,
        },
    }


def set_inventors(
    session: Session, *, actor: Actor, patent_id: uuid.UUID, inventors: list[dict[str, Any]]
) -> Patent:
    """Replace the inventors; contribution shares sum to exactly 100."""
    patent = _editable(session, actor, patent_id)
    errors = []
    try:
        check_total([i["share"] for i in inventors], what="inventor shares")
    except ShareError as exc:
        errors.append(FieldError.of("inventors", str(exc)))
    org_ids = {i["organisation_id"] for i in inventors if i.get("organisation_id")}
    known = set(session.scalars(select(Organisation.id).where(Organisation.id.in_(org_ids))))
    for index, inventor in enumerate(inventors):
        if inventor.get("organisation_id") and inventor["organisation_id"] not in known:
            errors.append(FieldError.of(f"inventors.{index}.organisation_id", "unknown"))
    validation_failed(errors)
    stamp = now()
    before = [{"name": i.name, "share": i.share} for i in patent.inventors]
    _supersede(session, patent.inventors, stamp)
    for position, inventor in enumerate(inventors):
        session.add(
            Inventor(
                patent_id=patent.id,
                effective_from_dt=stamp,
                position=position,
                name=inventor["name"],
                share=inventor["share"],
                organisation_id=inventor.get("organisation_id"),
            )
        )
    _touch(patent)
    session.flush()
    session.expire(patent, ["inventors"])
    record(
        session,
        actor=actor,
        action="patent.inventors_set",
        subject_type="patent",
        subject_id=patent.id,
        payload={
            "before": before,
            "after": [
                {
                    "name": i["name"],
                    "share": i["share"],
                    "organisation_id": i.get("organisation_id"),
                }
                for i in inventors
            ],
            "version": patent.version,
        },
    )
    return patent


def add_encumbrance(
    session: Session, *, actor: Actor, patent_id: uuid.UUID, data: dict[str, Any]
) -> Encumbrance:
    """Record an encumbrance. Only a pledge carries ``pledgee_consent`` (and must state it);
    an exclusive or sole licence may not overlap another one in force, and features above
    (published open licences, Patent Law Art. 51(3)) may refuse it through the signal."""
    patent = _editable(session, actor, patent_id)
    kind: EncumbranceKind = data["kind"]
    errors = []
    if kind is EncumbranceKind.PLEDGE and data.get("pledgee_consent") is None:
        errors.append(FieldError.of("pledgee_consent", "state whether the pledgee consents"))
    if kind is not EncumbranceKind.PLEDGE and data.get("pledgee_consent") is not None:
        errors.append(FieldError.of("pledgee_consent", "only pledges carry a pledgee consent"))
    end = data.get("end_date")
    if end is not None and end < data["start_date"]:
        errors.append(FieldError.of("end_date", "ends before it starts"))
    validation_failed(errors)
    if kind in EXCLUSIVE_KINDS:
        for other in patent.encumbrances:
            if (
                other.kind in EXCLUSIVE_KINDS
                and other.released_dt is None
                and _overlaps(other.start_date, other.end_date, data["start_date"], end)
            ):
                raise RuleViolation(
                    f"an {other.kind} ({other.reference}) is recorded for that period"
                )
        for reason in encumbrance_requested.send(patent, session=session, kind=kind):
            if reason[1]:
                raise RuleViolation(str(reason[1]))
    encumbrance = Encumbrance(patent_id=patent.id, created_dt=now(), **data)
    session.add(encumbrance)
    _touch(patent)
    session.flush()
    record(
        session,
        actor=actor,
        action="patent.encumbrance_added",
        subject_type="patent",
        subject_id=patent.id,
        payload={"encumbrance_id": encumbrance.id, **data, "version": patent.version},
    )
    return encumbrance


def _overlaps(a_start: date, a_end: date | None, b_start: date, b_end: date | None) -> bool:
    return (a_end is None or b_start <= a_end) and (b_end is None or a_start <= b_end)


def release_encumbrance(
    session: Session,
    *,
    actor: Actor,
    patent_id: uuid.UUID,
    encumbrance_id: uuid.UUID,
    reason: str | None,
) -> Encumbrance:
    """Mark an encumbrance released (legal records are never deleted). 409 if already so."""
    patent = _editable(session, actor, patent_id)
    encumbrance = session.get(Encumbrance, encumbrance_id)
    if encumbrance is None or encumbrance.patent_id != patent.id:
        raise NotFound("encumbrance")
    if encumbrance.released_dt is not None:
        raise RuleViolation("this encumbrance was already released")
    encumbrance.released_dt = now()
    encumbrance.release_reason = reason
    _touch(patent)
    session.flush()
    record(
        session,
        actor=actor,
        action="patent.encumbrance_released",
        subject_type="patent",
        subject_id=patent.id,
        payload={"encumbrance_id": encumbrance.id, "reason": reason, "version": patent.version},
    )
    return encumbrance


def require_registrar(actor: Actor) -> None:
    if actor.role not in permissions.REGISTER:
        raise Forbidden("only TTO staff and admins register patents")
