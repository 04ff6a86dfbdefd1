"""Who may take up an offer and who may see or act on a licence (tested as a matrix).

A take-up is an enterprise's written notice (PL Art. 51(1)): only licensee users of an
enterprise give it. A licence is seen by its licensee's users, by TTO staff of an organisation
that currently owns the licensed patent, by admins, and by auditors whose scope holds the
licensee or an owner. Either party records the
CNIPA recordation (IR Art. 87); only the licensee terminates its licence.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from registry.core.actor import Actor, Role
from registry.licences.models import Licence

TAKE_UP = Role.LICENSEE


def is_licensee(actor: Actor, licence: Licence) -> bool:
    return actor.role is Role.LICENSEE and actor.organisation_id == licence.licensee_organisation_id


def is_licensor(actor: Actor, owner_ids: Iterable[uuid.UUID]) -> bool:
    return actor.role is Role.TTO and actor.organisation_id in set(owner_ids)


def can_view(actor: Actor, licence: Licence, owner_ids: Iterable[uuid.UUID]) -> bool:
    owners = set(owner_ids)
    if actor.reads_all or actor.audits({licence.licensee_organisation_id, *owners}):
        return True
    return is_licensee(actor, licence) or is_licensor(actor, owners)


def can_record(actor: Actor, licence: Licence, owner_ids: Iterable[uuid.UUID]) -> bool:
    """Either party files the recordation with CNIPA; the operator may enter it for them."""
    return actor.is_admin or is_licensee(actor, licence) or is_licensor(actor, owner_ids)


def can_terminate(actor: Actor, licence: Licence) -> bool:
    return is_licensee(actor, licence)
