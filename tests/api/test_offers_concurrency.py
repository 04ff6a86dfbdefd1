"""Concurrent transitions of one offer, on committed SQLite and PostgreSQL databases.

Two co-owners asking to withdraw at the same moment must end with the offer withdrawn: each
request counts the owners who have asked, so if neither saw the other's request the offer would
stay published with every owner having asked (a lost withdrawal). Two publishes of one draft
must announce it once. Both rely on the offer row being locked before it is read (``FOR
UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite, registry.core.db).

Each trial runs the real services in two threads with their own sessions, started together,
with a pause between reading and deciding that widens the race window. The negative controls
(PostgreSQL only: on SQLite ``BEGIN IMMEDIATE`` serialises writers whatever the code reads) run
the same harness with the offer read without its lock and must see the anomaly
(reliability.md §0 rule 11).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation, OrganisationKind, User
from registry.accounts.services import actor_of
from registry.core.actor import Actor, Role
from registry.core.clock import now, today
from registry.core.db import Database, make_engine
from registry.core.errors import RegistryError
from registry.offers import publication, reading, services
from registry.offers.models import GazetteEntry, Offer, OfferStatus
from registry.offers.schemas import OfferCreateSchema
from registry.patents import services as patent_services
from registry.patents.schemas import OwnershipSchema, PatentCreateSchema
from tests.conftest import migrate_fresh
from tests.factories import make_application_number, make_uscc, password_hash
from tests.factories.databases import BACKENDS, empty_database
from tests.factories.offers import offer_body

pytestmark = pytest.mark.concurrency

TRIALS = 4
RACE_WINDOW_S = 0.15


@pytest.fixture(params=BACKENDS)
def committed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    with empty_database(request.param, tmp_path, "offers") as url:
        migrate_fresh(url).dispose()
        database = Database(make_engine(url))
        yield database
        database.engine.dispose()


@dataclass
class Owners:
    a: Actor
    b: Actor


def seed_owners(db: Database) -> Owners:
    with db.transaction() as session:
        actors = []
        for name in ("并发甲大学", "并发乙大学"):
            organisation = Organisation(
                name=name, kind=OrganisationKind.UNIVERSITY, uscc=make_uscc(), created_dt=now()
            )
            session.add(organisation)
            session.flush()
            user = User(
                organisation_id=organisation.id,
                email=f"tto-{uuid.uuid4().hex[:8]}@conc.test",
                name="TTO",
                role=Role.TTO,
                password_hash=password_hash(),
                is_active=True,
                created_dt=now(),
            )
            session.add(user)
            session.flush()
            actors.append(actor_of(user))
    return Owners(*actors)


def co_owned_offer(db: Database, owners: Owners, *, publish: bool) -> uuid.UUID:
    """A co-owned invention (unanimity for open licences) with a draft, or published offer."""
    with db.transaction() as session:
        data = PatentCreateSchema().load(
            {
                "application_number": make_application_number(2021, "1"),
                "patent_type": "invention",
                "title": "一种并发测试用的专利",
                "filing_date": "2021-03-15",
                "grant_date": "2023-02-13",
                "annual_fees_paid_through": (today() + timedelta(days=400)).isoformat(),
            }
        )
        ownership = OwnershipSchema().load(
            {
                "owners": [
                    {"organisation_id": str(actor.organisation_id), "title_share": "50",
                     "income_share": "50"}
                    for actor in (owners.a, owners.b)
                ]
            }
        )  # fmt: skip
        patent = patent_services.create_patent(
            session, actor=owners.a, data=data, ownership=ownership
        )
        offer = services.create_offer(
            session, actor=owners.a, data=OfferCreateSchema().load(offer_body(patent.id))
        )
        services.consent(
            session, actor=owners.b, offer_id=offer.id, terms_sha256_=offer.terms_sha256
        )
        if publish:
            services.publish(session, actor=owners.a, offer_id=offer.id, attest=True)
        return offer.id


def slow_down(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
    """Pause inside the transaction, after the offer was read, before deciding."""
    original = getattr(module, name)

    def paused(*args: Any, **kwargs: Any) -> Any:
        time.sleep(RACE_WINDOW_S)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, paused)


def without_row_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The broken variant: read the offer without locking it."""
    original = reading._load

    def unlocked(session: Session, offer_id: uuid.UUID, *, for_update: bool = False) -> Any:
        return original(session, offer_id, for_update=False)

    monkeypatch.setattr(reading, "_load", unlocked)


def together(db: Database, *calls: Callable[[Session], Any]) -> list[Any]:
    """Run each call in its own thread and transaction, started at once; their outcomes."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[Session], Any]) -> None:
        barrier.wait()
        try:
            with db.transaction() as session:
                call(session)
            outcomes[index] = "ok"
        except RegistryError as exc:
            outcomes[index] = exc.code
        except Exception as exc:  # the harness reports every failure
            outcomes[index] = f"error: {exc!r}"

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def withdrawal_anomalies(db: Database, owners: Owners, trials: int) -> list[str]:
    problems = []
    for _ in range(trials):
        offer_id = co_owned_offer(db, owners, publish=True)
        outcomes = together(
            db,
            *(
                lambda s, actor=actor, offer_id=offer_id: services.withdraw(
                    s, actor=actor, offer_id=offer_id, reason="同时撤回"
                )
                for actor in (owners.a, owners.b)
            ),
        )
        with db.session(write=False) as session:
            offer = session.get_one(Offer, offer_id)
            if outcomes != ["ok", "ok"]:
                problems.append(f"outcomes {outcomes}")
            if offer.status != OfferStatus.WITHDRAWN:
                problems.append(f"after both owners asked, the offer is {offer.status}")
    return problems


def publish_anomalies(db: Database, owners: Owners, trials: int) -> list[str]:
    problems = []
    for _ in range(trials):
        offer_id = co_owned_offer(db, owners, publish=False)
        outcomes = together(
            db,
            *(
                lambda s, offer_id=offer_id: services.publish(
                    s, actor=owners.a, offer_id=offer_id, attest=True
                )
                for _ in range(2)
            ),
        )
        with db.session(write=False) as session:
            announced = session.scalar(
                select(func.count())
                .select_from(GazetteEntry)
                .where(GazetteEntry.offer_id == offer_id)
            )
            if sorted(outcomes) != ["invalid_transition", "ok"]:
                problems.append(f"outcomes {outcomes}")
            if announced != 1:
                problems.append(f"one publication announced {announced} times")
    return problems


def test_co_owners_withdrawing_at_once_withdraw_the_offer(
    committed: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    owners = seed_owners(committed)
    slow_down(monkeypatch, publication, "consent_outcome")
    assert withdrawal_anomalies(committed, owners, TRIALS) == []


def test_one_draft_published_twice_at_once_is_announced_once(
    committed: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    owners = seed_owners(committed)
    slow_down(monkeypatch, reading, "evaluate")
    assert publish_anomalies(committed, owners, TRIALS) == []


def test_negative_control_without_the_lock(
    committed: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same harness on a broken variant must report anomalies: on PostgreSQL the offer read
    without FOR UPDATE (neither withdrawal request sees the other; both publishes announce);
    on SQLite also a deferred BEGIN, which lets both read before either writes (the second
    writer is then refused, SQLITE_BUSY, without waiting)."""
    owners = seed_owners(committed)
    without_row_lock(monkeypatch)
    if committed.dialect == "sqlite":
        monkeypatch.setattr(
            committed, "session", lambda *, write: Database.session(committed, write=False)
        )
    slow_down(monkeypatch, publication, "consent_outcome")
    slow_down(monkeypatch, reading, "evaluate")
    withdrawals = withdrawal_anomalies(committed, owners, 2)
    publishes = publish_anomalies(committed, owners, 2)
    print("negative control:", withdrawals, publishes)  # shown with -s: what it caught
    assert withdrawals
    assert publishes
