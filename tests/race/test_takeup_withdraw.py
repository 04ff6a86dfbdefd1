"""Take-ups race a withdrawal over real sockets (issue 3, item 8; reliability.md §2, §8 T3, T6,
T9): no take-up commits after the withdrawal, none is lost or duplicated.

The real app runs under gunicorn (3 workers × 4 threads) on a committed database of its own —
a SQLite file, and a fresh PostgreSQL database when REGISTRY_TEST_DATABASE_URL is set. For each
of many freshly published offers, several SMEs take it up at once while its TTO withdraws it,
each after a random delay; every operation is recorded, and a checker judges the history
against the database (tests/race/harness.py). The served take-up pauses a few milliseconds
right after it has claimed the offer, widening any window the code might leave.

Negative control (reliability.md §0 rule 11): the same harness against a deliberately naive
take-up (read the status, then write without the ``WHERE status='published'`` condition; see
tests/race/apps.py) must report licences committed after the withdrawal.

``RELIABILITY_SCALE`` multiplies the trial counts (1 in CI); ``SEED`` replays a run.
"""

from __future__ import annotations

import os
import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from registry.core.db import make_engine
from registry.licences.models import Licence
from tests.conftest import migrate_fresh
from tests.factories import licences as lf
from tests.factories.databases import BACKENDS, empty_database
from tests.race.harness import (
    Seeded,
    Verdict,
    check,
    gunicorn,
    request,
    run_trials,
    seed,
    tail,
)

pytestmark = pytest.mark.concurrency

SCALE = int(os.environ.get("RELIABILITY_SCALE", "1"))
ACCEPTORS = 6  # SMEs taking up each offer at once, besides the withdrawing TTO
TRIALS = 200 * SCALE
NAIVE_TRIALS = 40 * SCALE
WINDOW_MS = 5  # the served take-up pauses 0..5 ms after claiming the offer
DUPLICATE_ROUNDS = 10
DUPLICATE_THREADS = 8
SEED = int(os.environ.get("SEED", random.SystemRandom().randrange(2**32)))


def schedule() -> random.Random:
    """The trials' start delays, replayable from SEED (a test schedule, not a secret)."""
    return random.Random(SEED)  # noqa: S311


@dataclass
class Served:
    backend: str
    url: str
    seeded: Seeded
    port: int
    folder: Path


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The correct app under gunicorn on a fresh committed database with published offers."""
    backend = request.param
    folder = tmp_path_factory.mktemp(f"race-{backend}")
    with empty_database(backend, folder, "race") as url:
        migrate_fresh(url).dispose()
        seeded = seed(url, folder, offers=TRIALS + 2 * DUPLICATE_ROUNDS, licensees=ACCEPTORS)
        with gunicorn("tests.race.apps:correct()", url, folder, window_ms=WINDOW_MS) as port:
            yield Served(backend, url, seeded, port, folder)


def _report(name: str, backend: str, verdict: Verdict, folder: Path) -> None:
    print(f"\n[{name} {backend}] SEED={SEED} {verdict.summary()}")
    for rule, found in sorted(verdict.violations.items()):
        print(f"  {rule}: {found[:3]}")
    if {"server_error", "no_answer"} & verdict.violations.keys():
        print(f"gunicorn log:\n{tail(folder / 'gunicorn.log')}")


def test_no_take_up_commits_after_the_withdrawal(served: Served) -> None:
    offers = served.seeded.offer_ids[:TRIALS]
    history = run_trials(served.port, served.seeded, offers, rng=schedule(), acceptors=ACCEPTORS)
    verdict = check(served.url, served.seeded, history)
    _report("race", served.backend, verdict, served.folder)
    assert verdict.violations == {}
    # The harness really raced: in most trials some take-ups won and some lost (measured:
    # 60-80 % of trials on this machine kind); a harness that never interleaves proves nothing.
    assert verdict.contested >= TRIALS // 4, verdict.summary()
    assert verdict.accepted
    assert verdict.refused


def test_the_checker_catches_a_naive_take_up(
    served: Served, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Sensitivity: the same harness against a take-up that reads, then writes unconditionally."""
    folder = tmp_path_factory.mktemp(f"naive-{served.backend}")
    with empty_database(served.backend, folder, "naive") as url:
        migrate_fresh(url).dispose()
        seeded = seed(url, folder, offers=NAIVE_TRIALS, licensees=ACCEPTORS)
        with gunicorn("tests.race.apps:naive()", url, folder, window_ms=WINDOW_MS) as port:
            history = run_trials(
                port, seeded, seeded.offer_ids, rng=schedule(), acceptors=ACCEPTORS
            )
        verdict = check(url, seeded, history)
    _report("naive", served.backend, verdict, folder)
    # Both independent witnesses see it: the version order and the audit log's commit order.
    assert verdict.violations.get("committed_after_withdrawal")
    assert verdict.violations.get("committed_after_withdrawal_audit_order")


def _fire(
    served: Served, offer_id: str, token: str, key: str | None
) -> list[tuple[int, dict, dict]]:
    """DUPLICATE_THREADS identical take-ups released at the same instant."""
    barrier = threading.Barrier(DUPLICATE_THREADS)
    answers: list[tuple[int, dict, dict]] = []
    lock = threading.Lock()
    headers = {"Idempotency-Key": key} if key else {}

    def send() -> None:
        barrier.wait(timeout=30)
        answer = request(
            served.port,
            "POST",
            f"/api/v1/offers/{offer_id}/take-up",
            token,
            lf.notice(),
            headers=headers,
        )
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=send) for _ in range(DUPLICATE_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == DUPLICATE_THREADS
    return answers


def _licences_of(url: str, offer_id: str) -> int:
    engine = make_engine(url, pool=False)
    try:
        with engine.connect() as connection:
            return int(
                connection.scalar(
                    select(func.count())
                    .select_from(Licence)
                    .where(Licence.offer_id == uuid.UUID(offer_id))
                )
                or 0
            )
    finally:
        engine.dispose()


def test_one_key_fired_at_once_takes_one_licence(served: Served) -> None:
    """T3: the same key from 8 threads at once: one licence; the others see it replayed or
    are told the first is still in progress (409); nothing else."""
    offers = served.seeded.offer_ids[TRIALS : TRIALS + DUPLICATE_ROUNDS]
    seen: Counter[str] = Counter()
    for round_, offer_id in enumerate(offers):
        token = served.seeded.licensee_tokens[round_ % ACCEPTORS]
        answers = _fire(served, offer_id, token, key=str(uuid.uuid4()))
        created = [body for status, body, _ in answers if status == 201]
        assert created, answers
        assert len({body["id"] for body in created}) == 1, created
        originals = [
            h for status, _, h in answers if status == 201 and "Idempotent-Replayed" not in h
        ]
        assert len(originals) == 1, answers
        for status, body, _ in answers:
            seen[f"{status} {body.get('code', 'created')}"] += 1
            assert status == 201 or (status, body["code"]) == (409, "idempotency_conflict"), body
        assert _licences_of(served.url, offer_id) == 1
    print(f"\n[same key {served.backend}] {dict(seen)}")


def test_a_double_click_without_a_key_takes_one_licence(served: Served) -> None:
    """T9: 8 identical take-ups at once without a key: one licence, the rest already_licensed."""
    start = TRIALS + DUPLICATE_ROUNDS
    offers = served.seeded.offer_ids[start : start + DUPLICATE_ROUNDS]
    for round_, offer_id in enumerate(offers):
        token = served.seeded.licensee_tokens[round_ % ACCEPTORS]
        answers = _fire(served, offer_id, token, key=None)
        statuses = Counter((status, body.get("code", "created")) for status, body, _ in answers)
        assert statuses == {(201, "created"): 1, (409, "already_licensed"): DUPLICATE_THREADS - 1}
        assert _licences_of(served.url, offer_id) == 1
