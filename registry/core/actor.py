"""Who is acting: the authenticated caller, as plain values every service receives.

Core knows how to ask for the current actor but not how tokens are stored; the accounts
feature registers the loader (imports point one way: features → core, DESIGN.md §3).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask import current_app, g

from registry.core.errors import Forbidden, Unauthenticated

ACTOR_LOADER = "registry.actor_loader"


class Role(enum.StrEnum):
    ADMIN = "admin"
    TTO = "tto"
    LICENSEE = "licensee"
    AUDITOR = "auditor"


# An auditor's scope: the organisations whose records they may read, or every organisation.
ALL_ORGANISATIONS = None


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID
    organisation_id: uuid.UUID
    role: Role
    email: str
    # For auditors only: the organisations granted to them (their own always included), or
    # ``ALL_ORGANISATIONS`` when an admin granted every one. Empty by default, so an actor built
    # without its grants sees nothing rather than everything (fail closed, ASVS 16.5.3).
    audit_scope: frozenset[uuid.UUID] | None = frozenset()

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def audits_all(self) -> bool:
        """An auditor whose scope is every organisation (granted by an admin)."""
        return self.role is Role.AUDITOR and self.audit_scope is ALL_ORGANISATIONS

    def audits(self, organisation_ids: Iterable[uuid.UUID | None]) -> bool:
        """An auditor with at least one of ``organisation_ids`` in scope: a licence is in an
        auditor's scope when its licensee or any owner of its patent is."""
        if self.role is not Role.AUDITOR:
            return False
        if self.audit_scope is ALL_ORGANISATIONS:
            return True
        return any(org in self.audit_scope for org in organisation_ids if org is not None)

    @property
    def reads_all(self) -> bool:
        """Admins and all-organisation auditors: they read every organisation's records."""
        return self.is_admin or self.audits_all


# The actor used by commands run from the shell by the operator (imports, bootstrap).
ActorLoader = Callable[[], Actor | None]


def current_actor() -> Actor | None:
    """The caller of this request, or ``None`` when anonymous (loaded once per request)."""
    if "actor" not in g:
        loader: ActorLoader | None = current_app.extensions.get(ACTOR_LOADER)
        g.actor = loader() if loader else None
    actor: Actor | None = g.actor
    return actor


def require_actor(*roles: Role) -> Actor:
    """The authenticated caller; 401 when anonymous, 403 when the role may not use the route."""
    actor = current_actor()
    if actor is None:
        raise Unauthenticated("sign in: send Authorization: Bearer <token>")
    if roles and actor.role not in roles:
        raise Forbidden(f"the {actor.role} role may not do this")
    return actor
