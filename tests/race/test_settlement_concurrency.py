"""Concurrent settlement runs over real sockets (issue 5 §5; reliability.md §0 rule 1).

Several admins' clients ask, at the same moment, for a settlement of the same period on the
real app under gunicorn. Whatever the interleaving, each payment is settled exactly once: one
run answers 201 with all of them, every other request is refused 409 (``nothing_to_settle``, or
``settlement_conflict`` if it lost at the unique index), and the books balance. A request that
meets a busy database may answer 503 and is retried with its Idempotency-Key, as a client would.
Then a reversal races a new run over the same period: the payments end up settled by exactly
one live run either way.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from registry.app import create_app
from registry.clearing.models import (
    JournalEntry,
    Payment,
    SettledPayment,
    SettlementLine,
    SettlementRun,
)
from registry.core import clock
from registry.core.db import make_engine
from registry.core.http import get_db
from tests.conftest import migrate_fresh
from tests.factories import Factory
from tests.factories import clearing as cf
from tests.factories.databases import BACKENDS, empty_database
from tests.race.harness import SECRET, gunicorn, request

pytestmark = pytest.mark.concurrency

CLIENTS = 4
RETRIES = 5
AMOUNTS = (100_001, 33_333, 7)


@dataclass
class Served:
    url: str
    port: int
    admin_token: str
    payment_ids: set[uuid.UUID]


def _seed(url: str, instance: Path) -> tuple[str, set[uuid.UUID]]:
    """A co-owned licensed patent with three payments, committed; the admin's token."""
    app = create_app(
        {
            "env": "testing",
            "database_url": url,
            "instance_path": instance,
            "secret_key": SECRET,
            "contract_issue": "deferred",
        }
    )
    try:
        with app.app_context(), get_db().transaction() as session:
            factory = Factory(session, app)
            deal = cf.licensed_patent(factory, "university")
            partner = factory.organisation("institute")
            owners = [
                {"organisation_id": deal.owner.id, "title_share": "70", "income_share": "60"},
                {"organisation_id": partner.id, "title_share": "30", "income_share": "40"},
            ]
            cf.set_owners(factory, deal.admin, deal.patent, owners)
            cf.set_inventors(
                factory,
                deal.admin,
                deal.patent,
                [("甲", deal.owner, "60"), ("乙", partner, "40")],
            )
            ids = set()
            for amount in AMOUNTS:
                issued = cf.statement(factory, deal.licence, amount)
                ids.add(cf.pay(factory, deal.admin, issued, amount).id)
            token = factory.token(deal.admin)
    finally:
        app.extensions["registry.db"].engine.dispose()
    return token, ids


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp(f"settlement-{request.param}")
    with empty_database(request.param, folder, "settlement") as url:
        migrate_fresh(url).dispose()
        token, ids = _seed(url, folder)
        settings = {"REGISTRY_CONTRACT_ISSUE": "deferred"}
        with gunicorn(
            "wsgi:app", url, folder, workers=2, threads=4, window_ms=0, settings=settings
        ) as port:
            yield Served(url, port, token, ids)


def _post(served: Served, path: str, body: Any, barrier: threading.Barrier) -> tuple[int, Any]:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    barrier.wait()
    status, answer = 0, None
    for _ in range(RETRIES):
        status, answer, _ = request(served.port, "POST", path, served.admin_token, body, headers)
        if status != 503:
            break
    return status, answer


def _race(served: Served, calls: list[tuple[str, Any]]) -> list[tuple[int, Any]]:
    barrier = threading.Barrier(len(calls))
    answers: list[tuple[int, Any]] = [(0, None)] * len(calls)

    def run(index: int) -> None:
        path, body = calls[index]
        answers[index] = _post(served, path, body, barrier)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _books(url: str) -> dict[str, Any]:
    engine = make_engine(url, pool=False)
    try:
        with engine.connect() as connection:
            live = Counter(
                connection.scalars(
                    select(SettledPayment.payment_id).where(SettledPayment.reversed_dt.is_(None))
                )
            )
            return {
                "live": live,
                "runs": connection.scalar(select(func.count()).select_from(SettlementRun)),
                "lines": connection.scalar(
                    select(func.coalesce(func.sum(SettlementLine.amount), 0))
                ),
                "applied": connection.scalar(select(func.sum(Payment.applied))),
                "ledger": connection.scalar(
                    select(func.coalesce(func.sum(JournalEntry.amount), 0))
                ),
            }
    finally:
        engine.dispose()


def test_concurrent_runs_settle_each_payment_once(served: Served) -> None:
    today = clock.today()
    body = {
        "period_start": (today - timedelta(days=7)).isoformat(),
        "period_end": today.isoformat(),
    }
    answers = _race(served, [("/api/v1/settlements", body)] * CLIENTS)

    statuses = Counter(status for status, _ in answers)
    assert statuses[201] == 1, answers
    assert statuses[409] == CLIENTS - 1, answers
    assert {a["code"] for s, a in answers if s == 409} <= {
        "nothing_to_settle",
        "settlement_conflict",
    }
    [run] = [a for s, a in answers if s == 201]
    assert {uuid.UUID(line["payment_id"]) for line in run["lines"]} == served.payment_ids
    assert run["total_received"] == "1333.41"
    books = _books(served.url)
    assert books["live"] == Counter(served.payment_ids)  # each payment settled exactly once
    assert books["runs"] == 1
    assert books["lines"] == books["applied"] == sum(AMOUNTS)
    assert books["ledger"] == 0

    # A reversal and a new run of the same period race: either order leaves one live run.
    reverse = (f"/api/v1/settlements/{run['id']}/reverse", None)
    answers = _race(served, [reverse, ("/api/v1/settlements", body)])
    assert answers[0][0] == 201, answers
    assert answers[1][0] in (201, 409), answers
    books = _books(served.url)
    if answers[1][0] == 409:  # it ran first and found everything settled: settle again now
        assert answers[1][1]["code"] == "nothing_to_settle"
        assert books["live"] == Counter()
        status, _, _ = request(served.port, "POST", "/api/v1/settlements", served.admin_token, body)
        assert status == 201
        books = _books(served.url)
    assert books["live"] == Counter(served.payment_ids)
    assert books["lines"] == sum(AMOUNTS)  # settled, reversed, settled again
    assert books["ledger"] == 0
