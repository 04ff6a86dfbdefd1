"""The apps the race tests serve under gunicorn: ``tests.race.apps:correct()`` and
``tests.race.apps:naive()``. Settings come from the ``REGISTRY_*`` environment as in production.

Both pause for a random 0..``RACE_WINDOW_MS`` milliseconds at the same point: right after the
take-up has looked at the offer. That widens whatever window the code leaves between deciding
that the offer is published and writing the licence, so the same harness can tell a correct
take-up from a broken one (reliability.md §0 rule 11):

* ``correct`` — the real take-up. It pauses *after* its conditional ``UPDATE offers … WHERE
  status='published'``, holding the offer row (PostgreSQL) or the write lock (SQLite), so a
  withdrawal has to wait for it, or it finds the offer withdrawn.
* ``naive`` — reads the offer's status, pauses, then bumps the offer with an *unconditional*
  UPDATE and inserts the licence. On SQLite the read also ends its transaction first, as
  Python's legacy sqlite3 mode does (a SELECT runs outside the write transaction; reliability.md
  §2.2); otherwise ``BEGIN IMMEDIATE`` alone would serialise the naive code correctly.
"""

from __future__ import annotations

import os
import random
import time
import uuid

from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session

from registry.app import create_app
from registry.core import clock
from registry.core.errors import NotFound
from registry.licences import services as licence_services
from registry.offers import services as offer_services
from registry.offers.lifecycle import effective_status
from registry.offers.models import Offer, OfferStatus

_random = random.SystemRandom()


def _pause() -> None:
    window_ms = float(os.environ.get("RACE_WINDOW_MS", "5"))
    time.sleep(_random.uniform(0, window_ms) / 1000)


def _claim_then_pause(session: Session, *, offer_id: uuid.UUID) -> Offer:
    offer = offer_services.claim_for_take_up(session, offer_id=offer_id)
    _pause()
    return offer


def _naive_claim(session: Session, *, offer_id: uuid.UUID) -> Offer:
    offer = session.get(Offer, offer_id)
    if offer is None:
        raise NotFound("offer")
    status = effective_status(offer, clock.today())
    if status != OfferStatus.PUBLISHED:
        raise offer_services.OfferNotPublished(f"offer is {status.value}, not published")
    if session.get_bind().dialect.name == "sqlite":
        session.commit()  # legacy sqlite3: the read was a transaction of its own
    _pause()
    session.execute(
        update(Offer)
        .where(Offer.id == offer_id)  # the bug: no "AND status = 'published'"
        .values(version=Offer.version + 1, licence_count=Offer.licence_count + 1)
        .execution_options(synchronize_session=False)
    )
    session.refresh(offer)
    return offer


def _install_correct(app: Flask) -> None:
    licence_services.claim_for_take_up = _claim_then_pause  # type: ignore[assignment]


def _install_naive(app: Flask) -> None:
    licence_services.claim_for_take_up = _naive_claim  # type: ignore[assignment]


def correct() -> Flask:
    return create_app(configure=_install_correct)


def naive() -> Flask:
    return create_app(configure=_install_naive)
