"""Who may see and act on an offer (checked in services; tested as a matrix).

Published, withdrawn and ended offers are public (Patent Law Art. 50: the declaration is
announced; IR Art. 107(13) gazette). Drafts are seen only by the owners' TTOs, admins and
auditors with an owner in scope. The owners' TTOs and admins (the clearing house as the
patentees' agent) prepare and publish; consents and withdrawal requests are each owner's own
act, so only its TTO gives them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from registry.core.actor import Actor, Role
from registry.offers.models import OfferStatus


def is_owner_tto(actor: Actor | None, owner_ids: Iterable[uuid.UUID]) -> bool:
    return actor is not None and actor.role is Role.TTO and actor.organisation_id in set(owner_ids)


def can_see_drafts(actor: Actor | None, owner_ids: Iterable[uuid.UUID]) -> bool:
    if actor is None:
        return False
    owners = set(owner_ids)
    return actor.reads_all or actor.audits(owners) or is_owner_tto(actor, owners)


def can_view(actor: Actor | None, status: OfferStatus, owner_ids: Iterable[uuid.UUID]) -> bool:
    return status != OfferStatus.DRAFT or can_see_drafts(actor, owner_ids)


def can_manage(actor: Actor, owner_ids: Iterable[uuid.UUID]) -> bool:
    """Create, edit and publish: an owner's TTO, or an admin acting as the owners' agent."""
    return actor.is_admin or is_owner_tto(actor, owner_ids)
