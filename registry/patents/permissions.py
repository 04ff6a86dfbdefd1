"""Who may see and change a patent (checked in services; tested as a matrix).

TTO staff of a current owner and admins change a patent; auditors read the patents of the
organisations in their scope (every patent for an all-organisation auditor);
enterprise (licensee) users read none directly — offers will expose what is public.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from registry.core.actor import Actor, Role

REGISTER = frozenset({Role.ADMIN, Role.TTO})
PATENT_READERS = (Role.ADMIN, Role.AUDITOR, Role.TTO)


def can_view(actor: Actor, owner_ids: Iterable[uuid.UUID]) -> bool:
    owners = set(owner_ids)
    if actor.reads_all or actor.audits(owners):
        return True
    return actor.role is Role.TTO and actor.organisation_id in owners


def can_edit(actor: Actor, owner_ids: Iterable[uuid.UUID]) -> bool:
    if actor.is_admin:
        return True
    return actor.role is Role.TTO and actor.organisation_id in set(owner_ids)
