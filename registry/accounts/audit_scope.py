"""Which organisations an auditor reads (issue 6, "auditor scope").

An auditor always reads its own organisation (a university's audit office audits its
university). An admin grants further organisations, or every organisation (a regulator, the
national registry's own audit office); an audit body starts with nothing to read. Everything an
auditor sees — offers in draft, patents, licences, contracts, statements, payments, settlement
lines, exports — is filtered by this scope in each feature's permission checks through
:meth:`registry.core.actor.Actor.audits`. Grant changes are audit events.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.accounts.models import AuditorGrant, Organisation, User
from registry.audit.services import record
from registry.core.actor import Actor, Role
from registry.core.errors import FieldError, Forbidden, NotFound, RuleViolation, validation_failed


def _auditor(session: Session, actor: Actor, user_id: uuid.UUID) -> User:
    """The auditor ``user_id``: admins see any user, an auditor only itself (404 otherwise)."""
    user = session.get(User, user_id)
    if user is None or not (actor.is_admin or actor.user_id == user_id):
        raise NotFound("user")
    if user.role is not Role.AUDITOR:
        raise RuleViolation("only auditors have an audit scope")
    return user


def describe(user: User) -> dict[str, Any]:
    granted = sorted(g.organisation_id for g in user.audit_grants)
    return {
        "user_id": user.id,
        "all_organisations": user.audits_all_organisations,
        "own_organisation_id": user.organisation_id,
        "organisation_ids": granted,
    }


def get_audit_scope(session: Session, *, actor: Actor, user_id: uuid.UUID) -> dict[str, Any]:
    return describe(_auditor(session, actor, user_id))


def set_audit_scope(
    session: Session, *, actor: Actor, user_id: uuid.UUID, data: dict[str, Any]
) -> dict[str, Any]:
    """Replace an auditor's grants (admins only): ``all_organisations`` or a list of ids."""
    if not actor.is_admin:
        raise Forbidden("only the clearing-house operator grants auditors their scope")
    user = _auditor(session, actor, user_id)
    wanted = set(data.get("organisation_ids", []))
    known = set(session.scalars(select(Organisation.id).where(Organisation.id.in_(wanted))))
    validation_failed(
        [
            FieldError.of("organisation_ids", f"no organisation {missing}")
            for missing in sorted(str(m) for m in wanted - known)
        ]
    )
    before = describe(user)
    user.audits_all_organisations = bool(data["all_organisations"])
    current = {g.organisation_id: g for g in user.audit_grants}
    for organisation_id in set(current) - wanted:
        user.audit_grants.remove(current[organisation_id])
    for organisation_id in sorted(wanted - set(current)):
        user.audit_grants.append(
            AuditorGrant(
                organisation_id=organisation_id,
                granted_by_id=actor.user_id,
                granted_dt=datetime.now(UTC),
            )
        )
    session.flush()
    after = describe(user)
    record(
        session,
        actor=actor,
        action="user.audit_scope_changed",
        subject_type="user",
        subject_id=user.id,
        payload={
            "all_organisations": [before["all_organisations"], after["all_organisations"]],
            "organisation_ids": [before["organisation_ids"], after["organisation_ids"]],
        },
    )
    return after
