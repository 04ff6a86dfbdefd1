"""Who is acting: the authenticated caller, as plain values every service receives.

Core knows how to ask for the current actor but not how tokens are stored; the accounts
feature registers the loader (imports point one way: features → core, DESIGN.md §3).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app, g

from registry.core.errors import Forbidden, Unauthenticated

ACTOR_LOADER = "registry.actor_loader"


class Role(enum.StrEnum):
    ADMIN = "admin"
    TTO = "tto"
    LICENSEE = "licensee"
    AUDITOR = "auditor"


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID
    organisation_id: uuid.UUID
    role: Role
    email: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


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
