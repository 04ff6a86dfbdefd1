"""Who may see and change a patent (checked in services; tested as a matrix).

TTO staff of a current owner and admins change a patent; auditors read every patent;
enterprise (licensee) users read none directly — offers will expose what is public.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from registry.core.actor import Actor, Role

READ_ALL = frozenset({Role.ADMIN, Role.AUDITOR})
REGISTER = frozenset({Role.ADMIN, Role.TTO})
PATENT_READERS = (Role.ADMIN, Role.AUDITOR, Role.TTO)


def can_view(actor: Actor, owner_ids: Iterable[uuid.UUID]) -> bool:
    if actor.role in READ_ALL:
        return True
    return actor.role is Role.TTO and actor.organisation_id in set(owner_ids)


def can_edit(actor: Actor, owner_ids: Iterable[uuid.UUID]) -> bool:
    if actor.is_admin:
        return True
    return actor.role is Role.TTO and actor.organisation_id in set(owner_ids)
