"""Royalty reports fired at the same moment over real sockets, the app under gunicorn (issue 5).

* Many reports of one period at once (different figures, no idempotency key): one is filed,
  every other is told 409 ``already_reported``; one report, one statement, a balanced ledger.
* A correction racing payments on the statement it voids: each payment either lands before
  the void (and is carried to the corrected statement as credit) or is refused 409
  ``statement_void``; nothing paid is lost: what the accepted payments brought in is exactly
  what the corrected statement received plus the licensee's remaining credit.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.app import create_app
from registry.clearing import ledger
from registry.clearing.credits import credit_balance
from registry.clearing.models import RoyaltyReport, Statement, StatementStatus
from registry.clearing.statements import schedule_for
from registry.core import clock
from registry.core.db import make_engine
from registry.core.http import get_db
from tests.conftest import migrate_fresh
from tests.factories import Factory
from tests.factories import licences as lf
from tests.factories.databases import BACKENDS, empty_database
from tests.race.harness import SECRET, gunicorn, request

pytestmark = pytest.mark.concurrency

THREADS = 8
RETRIES = 40
# 3.5 % of net sales, quarterly (tests/api/test_clearing_reports.py).
RUNNING = {"kind": "running", "base": "net_sales", "rate": "3.5", "reporting_period": "quarterly"}


@dataclass
class Served:
    url: str
    port: int
    token: str
    licence_id: str
    organisation_id: uuid.UUID
    periods: list[tuple[str, str]]  # ended reporting periods, oldest first


def _seed(url: str, folder: Path) -> tuple[str, str, uuid.UUID, list[tuple[str, str]]]:
    """One SME holding a running-royalty licence taken 400 days ago; committed."""
    app = create_app(
        {"env": "testing", "database_url": url, "instance_path": folder, "secret_key": SECRET}
    )
    try:
        with app.app_context(), get_db().transaction() as session:
            factory = Factory(session, app)
            tto = factory.user(factory.organisation("university"), "tto")
            sme, user, token = lf.enterprise_licensee(factory, is_sme=False)
            licence = lf.take_up(factory, user, lf.published_offer(factory, tto, royalty=RUNNING))
            licence.effective_date -= timedelta(days=400)
            licence.end_date -= timedelta(days=400)
            session.flush()
            periods = [
                (p.period_start.isoformat(), p.period_end.isoformat())
                for p in schedule_for(session, licence).periods
                if p.period_end < clock.today()
            ]
            return token, str(licence.id), sme.id, periods
    finally:
        app.extensions["registry.db"].engine.dispose()


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp(f"reports-{request.param}")
    with empty_database(request.param, folder, "reports") as url:
        migrate_fresh(url).dispose()
        token, licence_id, organisation_id, periods = _seed(url, folder / "instance")
        with gunicorn("wsgi:app", url, folder, workers=2, threads=4, window_ms=0) as port:
            yield Served(url, port, token, licence_id, organisation_id, periods)


def _post(served: Served, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    for _ in range(RETRIES):
        status, answer, _ = request(served.port, "POST", path, served.token, body)
        if status != 503:
            return status, answer
        time.sleep(0.05)  # busy: retry, as a client would
    return status, answer


def _report(served: Served, period: tuple[str, str], sales: str, **extra: str) -> Any:
    body = {"period_start": period[0], "period_end": period[1], "net_sales": sales, **extra}
    return _post(served, f"/api/v1/licences/{served.licence_id}/reports", body)


def _pay(served: Served, statement_id: str, amount: str) -> tuple[int, Any]:
    body = {
        "statement_id": statement_id,
        "amount": amount,
        "paid_date": str(clock.today()),
        "reference": "race",
    }
    return _post(served, "/api/v1/payments", body)


def _fire(count: int, call: Any) -> list[tuple[int, Any]]:
    barrier = threading.Barrier(count)
    answers: list[tuple[int, Any]] = [(0, None)] * count

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = call(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _read(served: Served) -> tuple[Session, Any]:
    engine = make_engine(served.url)
    return Session(engine), engine


def test_one_period_reported_from_many_threads_is_filed_once(served: Served) -> None:
    period = served.periods[0]
    answers = _fire(THREADS, lambda i: _report(served, period, f"{1000 + i}.00"))

    filed = [body for status, body in answers if status == 201]
    refused = [(status, body["code"]) for status, body in answers if status != 201]
    assert len(filed) == 1, answers
    assert refused == [(409, "already_reported")] * (THREADS - 1)
    session, engine = _read(served)
    try:
        reports = session.scalars(
            select(RoyaltyReport).where(
                RoyaltyReport.licence_id == uuid.UUID(served.licence_id),
                RoyaltyReport.period_start == date.fromisoformat(period[0]),
            )
        ).all()
        assert [(r.version, str(r.id)) for r in reports] == [(1, filed[0]["id"])]
        count = session.scalar(
            select(func.count()).select_from(Statement).where(Statement.report_id == reports[0].id)
        )
        assert count == 1
        assert ledger.trial_balance(session)["balanced"]
    finally:
        session.close()
        engine.dispose()


def test_a_correction_racing_payments_loses_no_money(served: Served) -> None:
    period = served.periods[1]
    status, first = _report(served, period, "100000.00")  # 3,500.00
    assert status == 201, first
    old = first["statement_id"]

    def call(index: int) -> tuple[int, Any]:
        if index == 0:  # 3.5 % of 80,000.00 = 2,800.00
            return _report(served, period, "80000.00", correction_reason="退货冲减")
        return _pay(served, old, "300.00")

    answers = _fire(THREADS, call)
    corrected_status, corrected = answers[0]
    assert corrected_status == 201, corrected
    payments = answers[1:]
    accepted = [body for status, body in payments if status == 201]
    refused = [body["code"] for status, body in payments if status != 201]
    assert set(refused) <= {"statement_void"}, payments
    assert len(accepted) + len(refused) == THREADS - 1
    brought_in = 30_000 * len(accepted)
    session, engine = _read(served)
    try:
        void = session.get_one(Statement, uuid.UUID(old))
        new = session.get_one(Statement, uuid.UUID(corrected["statement_id"]))
        assert void.status is StatementStatus.VOID
        assert void.amount_paid == brought_in  # as paid before it was voided
        # Carried over as credit, applied to the corrected statement up to what it owes.
        assert new.amount_paid + credit_balance(session, served.organisation_id) == brought_in
        assert new.amount_paid == min(brought_in, 280_000)
        assert ledger.trial_balance(session)["balanced"]
    finally:
        session.close()
        engine.dispose()
