"""Patent registry rules: registration, corrections, ownership, inventors, encumbrances.

Each function checks permission, collects every violation before raising, flushes, bumps the
patent's version (its ETag) and records one audit event; none commits (STYLE.md §5).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from registry.audit.services import record
from registry.core.actor import Actor, Role
from registry.core.clock import today
from registry.core.errors import (
    Duplicate,
    FieldError,
    Forbidden,
    NotFound,
    validation_failed,
)
from registry.core.identifiers import parse_application_number
from registry.core.shares import HUNDRED_PERCENT
from registry.patents import permissions, rules
from registry.patents.models import (
    ConsentRule,
    LegalStatus,
    OwnershipBasis,
    Patent,
    PatentOwner,
    PatentType,
)
from registry.patents.ownership import (
    OWNER_KINDS,
    Organisations,
    add_inventors,
    add_ownership,
    apply_decision_rules,
    inventor_entry,
    inventor_errors,
    own_organisation_kept,
    ownership_errors,
    ownership_payload,
)

NEEDS_EVALUATION_REPORT = frozenset({PatentType.UTILITY_MODEL, PatentType.DESIGN})
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


def owned_by_any(
    patent_id: ColumnElement[uuid.UUID] | InstrumentedAttribute[uuid.UUID],
    organisation_ids: Iterable[uuid.UUID],
) -> ColumnElement[bool]:
    """SQL: the patent has a current owner among ``organisation_ids`` (an auditor's scope)."""
    return exists().where(
        PatentOwner.patent_id == patent_id,
        PatentOwner.organisation_id.in_(list(organisation_ids)),
        PatentOwner.superseded_dt.is_(None),
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
    elif actor.role is Role.AUDITOR and not actor.audits_all:
        statement = statement.where(owned_by_any(Patent.id, actor.audit_scope or ()))
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


def get_patent(
    session: Session, *, actor: Actor, patent_id: uuid.UUID, for_update: bool = False
) -> Patent:
    """The patent if the actor may see it; 404 otherwise (scope never leaks).

    ``for_update`` locks the patent row (PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already
    serialises writers) so that concurrent changes to one patent queue: the second sees the
    first's version (412 on a stale ``If-Match``) and its current owners and encumbrances."""
    statement = select(Patent).where(Patent.id == patent_id)
    if for_update:
        statement = statement.with_for_update(of=Patent)
    patent = session.scalar(_with_children(statement))
    if patent is None or not permissions.can_view(actor, _current_owner_ids(session, patent_id)):
        raise NotFound("patent")
    return patent


def editable_patent(session: Session, *, actor: Actor, patent_id: uuid.UUID) -> Patent:
    """The patent if the actor may change it: 404 outside the actor's view, 403 for readers
    who may not change it (auditors)."""
    patent = get_patent(session, actor=actor, patent_id=patent_id, for_update=True)
    _require_edit(actor, patent)
    return patent


def _require_edit(actor: Actor, patent: Patent) -> None:
    if not permissions.can_edit(actor, [o.organisation_id for o in patent.owners]):
        raise Forbidden("only TTO staff of an owning organisation and admins change a patent")


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


@dataclass
class NewPatent:
    """A registration that passed every rule (:func:`check_new_patent`), ready to be added."""

    values: dict[str, Any]
    owners: list[dict[str, Any]]
    beneficiaries: list[dict[str, Any]]
    decision_rules: dict[str, Any]
    inventors: list[dict[str, Any]] | None

    @property
    def application_number(self) -> str:
        return str(self.values["application_number"])


DEFAULT_DECISION_RULES = {
    "open_licence": ConsentRule.UNANIMOUS,  # PL Art. 14: every co-owner, unless agreed
    "ordinary_licence": ConsentRule.ANY_OWNER,  # PL Art. 14: any co-owner may grant one
    "exclusive_licence": ConsentRule.UNANIMOUS,
    "assignment": ConsentRule.UNANIMOUS,
}


def check_new_patent(
    session: Session,
    *,
    actor: Actor,
    data: dict[str, Any],
    ownership: dict[str, Any] | None = None,
    inventors: list[dict[str, Any]] | None = None,
    organisations: Organisations | None = None,
) -> NewPatent:
    """Every rule of a registration but the unique number: 403 for other roles or another
    organisation, 422 with every violation. See :func:`create_patent`."""
    require_registrar(actor)
    organisations = organisations or Organisations(session)
    values = _flatten_report(data)
    owner_id = values.pop("owner_organisation_id", None)
    if actor.role is Role.TTO and owner_id not in (None, actor.organisation_id):
        raise Forbidden("TTO staff register patents for their own organisation")
    errors = _check_fields(values)
    if ownership is None:
        owner_id = owner_id or actor.organisation_id
        if organisations.kinds([owner_id])[owner_id] not in OWNER_KINDS:
            errors.append(
                FieldError.of(
                    "owner_organisation_id",
                    "a university, institute or enterprise must own the patent",
                )
            )
        owners: list[dict[str, Any]] = [
            {
                "organisation_id": owner_id,
                "title_share": HUNDRED_PERCENT,
                "income_share": HUNDRED_PERCENT,
                "basis": OwnershipBasis.SERVICE_INVENTION,
            }
        ]
        beneficiaries: list[dict[str, Any]] = []
    else:
        owners = ownership["owners"]
        beneficiaries = ownership.get("beneficiaries") or []
    errors += holder_errors(organisations, actor, ownership, inventors)
    validation_failed(errors)
    values.setdefault(
        "legal_status", LegalStatus.VALID if values.get("grant_date") else LegalStatus.PENDING
    )
    values.setdefault("ipc", [])
    rules_given = (ownership or {}).get("decision_rules") or {}
    return NewPatent(values, owners, beneficiaries, DEFAULT_DECISION_RULES | rules_given, inventors)


def holder_errors(
    organisations: Organisations,
    actor: Actor,
    ownership: dict[str, Any] | None,
    inventors: list[dict[str, Any]] | None,
) -> list[FieldError]:
    """The rules of :func:`set_ownership` and :func:`set_inventors` for what is given."""
    errors = []
    if ownership is not None:
        owners = ownership["owners"]
        errors += ownership_errors(organisations, owners, ownership.get("beneficiaries") or [])
        errors += own_organisation_kept(actor, owners)
    if inventors is not None:
        errors += inventor_errors(organisations, inventors)
    return errors


def registered_numbers(session: Session, numbers: Iterable[str]) -> set[str]:
    """Which of these canonical application numbers are registered already."""
    wanted = list(dict.fromkeys(numbers))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):  # bound the IN list for every database
        found.update(
            session.scalars(
                select(Patent.application_number).where(
                    Patent.application_number.in_(wanted[start : start + 500])
                )
            )
        )
    return found


def add_new_patent(session: Session, new: NewPatent, stamp: datetime) -> Patent:
    """Add a checked registration's rows to the session; the caller flushes, then records."""
    patent = Patent(
        id=uuid.uuid4(),
        **new.values,
        expiry_date=rules.expiry_date(new.values["patent_type"], new.values["filing_date"]),
        version=1,
        created_dt=stamp,
        updated_dt=stamp,
    )
    apply_decision_rules(patent, new.decision_rules)
    session.add(patent)
    add_ownership(session, patent.id, new.owners, new.beneficiaries, stamp)
    if new.inventors is not None:
        add_inventors(session, patent.id, new.inventors, stamp)
    return patent


def record_new_patent(session: Session, *, actor: Actor, patent: Patent, new: NewPatent) -> None:
    """The ``patent.created`` event: the record, its owners and, if given, its inventors."""
    payload: dict[str, Any] = {
        **{name: getattr(patent, name) for name in ("application_number", "patent_type")},
        **{name: getattr(patent, name) for name in PATENT_FIELDS},
        "expiry_date": patent.expiry_date,
        "owner_organisation_id": new.owners[0]["organisation_id"],
        **ownership_payload(patent, new.owners, new.beneficiaries),
    }
    if new.inventors is not None:
        payload["inventors"] = [inventor_entry(i) for i in new.inventors]
    record(
        session,
        actor=actor,
        action="patent.created",
        subject_type="patent",
        subject_id=patent.id,
        payload=payload,
    )


def create_patent(
    session: Session,
    *,
    actor: Actor,
    data: dict[str, Any],
    ownership: dict[str, Any] | None = None,
    inventors: list[dict[str, Any]] | None = None,
) -> Patent:
    """Register a patent, recorded as one ``patent.created`` event.

    Without ``ownership`` the creating TTO's organisation is the sole owner until owners are
    set (admins name it in ``owner_organisation_id``). With ``ownership`` (as
    :func:`set_ownership` takes it) and ``inventors`` (as :func:`set_inventors`), checked by
    the same rules, the patent starts with them. Only TTO staff and admins register (403);
    a TTO registers for its own organisation (403); 422 with every violation; 409 when the
    application number is registered.
    """
    new = check_new_patent(
        session, actor=actor, data=data, ownership=ownership, inventors=inventors
    )
    if registered_numbers(session, [new.application_number]):
        raise _duplicate()
    patent = add_new_patent(session, new, now())
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # registered by a concurrent request since the check above
        raise _duplicate() from None
    record_new_patent(session, actor=actor, patent=patent, new=new)
    session.expire(patent, ["owners", "inventors", "beneficiaries", "encumbrances"])
    return patent


def _duplicate() -> Duplicate:
    return Duplicate(
        "this application number is registered",
        [FieldError.of("application_number", "already registered")],
    )


def update_patent(
    session: Session, *, actor: Actor, patent: Patent, data: dict[str, Any]
) -> Patent:
    """Correct a patent's record. The caller has checked ``If-Match`` against the version.

    Only TTO staff of an owning organisation and admins may (403 otherwise, e.g. auditors);
    identity fields (number, type) are fixed; the cross-field rules of registration apply."""
    _require_edit(actor, patent)
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
    expiry = rules.expiry_date(patent.patent_type, patent.filing_date)
    if expiry != patent.expiry_date:  # a corrected filing date moves the end of the term
        changes["expiry_date"] = [patent.expiry_date, expiry]
        patent.expiry_date = expiry
    touch(patent)
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


def touch(patent: Patent) -> None:
    patent.version += 1
    patent.updated_dt = now()


def _supersede(session: Session, rows: Sequence[Any], stamp: datetime) -> None:
    for row in rows:
        row.superseded_dt = stamp
    if rows:  # before the new rows go in: one current row per organisation (unique index)
        session.flush()


def set_ownership(
    session: Session, *, actor: Actor, patent_id: uuid.UUID, data: dict[str, Any]
) -> Patent:
    """Replace the owners, income beneficiaries and decision rules of a patent.

    Rules (reference/law.md A5, B2; CNIPA guidelines on IP terms in cooperation agreements):
    title shares of the owners sum to exactly 100; income shares of owners and beneficiaries
    together sum to exactly 100; each owner appears once and is a university, institute or
    enterprise; a cooperation agreement names its clause set; a TTO keeps its own organisation
    among the owners (an assignment away is the operator's act). The replaced rows are kept,
    marked superseded. 404 outside the actor's view, 403 for readers, 422 with every violation.
    """
    patent = editable_patent(session, actor=actor, patent_id=patent_id)
    owners = data["owners"]
    beneficiaries = data.get("beneficiaries") or []
    errors = ownership_errors(Organisations(session), owners, beneficiaries)
    errors += own_organisation_kept(actor, owners)
    validation_failed(errors)
    stamp = now()
    old = ownership_payload(patent, patent.owners, patent.beneficiaries)
    _supersede(session, [*patent.owners, *patent.beneficiaries], stamp)
    add_ownership(session, patent.id, owners, beneficiaries, stamp)
    apply_decision_rules(patent, data.get("decision_rules"))
    touch(patent)
    session.flush()
    session.expire(patent, ["owners", "beneficiaries"])
    record(
        session,
        actor=actor,
        action="patent.ownership_set",
        subject_type="patent",
        subject_id=patent.id,
        payload={
            "before": old,
            "after": ownership_payload(patent, owners, beneficiaries),
            "version": patent.version,
        },
    )
    return patent


def set_inventors(
    session: Session, *, actor: Actor, patent_id: uuid.UUID, inventors: list[dict[str, Any]]
) -> Patent:
    """Replace the inventors; contribution shares sum to exactly 100 and a named organisation
    must be registered (422 otherwise). The replaced rows are kept, marked superseded."""
    patent = editable_patent(session, actor=actor, patent_id=patent_id)
    validation_failed(inventor_errors(Organisations(session), inventors))
    stamp = now()
    before = [inventor_entry(i) for i in patent.inventors]
    _supersede(session, patent.inventors, stamp)
    add_inventors(session, patent.id, inventors, stamp)
    touch(patent)
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
            "after": [inventor_entry(i) for i in inventors],
            "version": patent.version,
        },
    )
    return patent


def require_registrar(actor: Actor) -> None:
    if actor.role not in permissions.REGISTER:
        raise Forbidden("only TTO staff and admins register patents")
