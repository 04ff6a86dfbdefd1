"""Who may see and manage organisations and users (checked in services, STYLE.md §6)."""

from __future__ import annotations

import uuid

from registry.accounts.models import OrganisationKind
from registry.core.actor import Actor, Role

# Which roles may exist in which kind of organisation.
ROLES_BY_KIND: dict[OrganisationKind, frozenset[Role]] = {
    OrganisationKind.CLEARING_HOUSE: frozenset({Role.ADMIN, Role.AUDITOR}),
    OrganisationKind.UNIVERSITY: frozenset({Role.TTO, Role.AUDITOR}),
    OrganisationKind.INSTITUTE: frozenset({Role.TTO, Role.AUDITOR}),
    # Enterprises take licences and may co-own patents, so they may have TTO staff too.
    OrganisationKind.ENTERPRISE: frozenset({Role.LICENSEE, Role.TTO}),
    OrganisationKind.AUDIT_BODY: frozenset({Role.AUDITOR}),
}
# A TTO user adds colleagues with roles no higher than its own: never admin or auditor
# (auditors read across organisations, so only the operator grants that).
GRANTABLE_BY_TTO = frozenset({Role.TTO, Role.LICENSEE})


def sees_all_organisations(actor: Actor) -> bool:
    return actor.reads_all


def can_view_organisation(actor: Actor, organisation_id: uuid.UUID) -> bool:
    return (
        actor.reads_all
        or actor.organisation_id == organisation_id
        or actor.audits([organisation_id])
    )


def can_add_user(actor: Actor, organisation_id: uuid.UUID, role: Role) -> bool:
    if actor.is_admin:
        return True
    return (
        actor.role is Role.TTO
        and actor.organisation_id == organisation_id
        and role in GRANTABLE_BY_TTO
    )


def can_manage_reward_policy(actor: Actor, organisation_id: uuid.UUID) -> bool:
    return actor.is_admin or (actor.role is Role.TTO and actor.organisation_id == organisation_id)
