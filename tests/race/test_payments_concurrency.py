"""Payments fired at the same moment over real sockets, the app under gunicorn (issue 5).

* One payment sent with the same ``Idempotency-Key`` from several threads at once is recorded
  once: every answer is that payment (a duplicate that arrives while the first still runs is
  told 409 and retries, as a client would).
* Different payments racing on one statement never over-apply: they are applied one after the
  other, the statement's ``amount_paid`` stops at its ``amount_due``, the excess of the payment
  that completes it is the licensee's credit, the payments that come after are refused
  (409 ``already_paid``), and the ledger balances.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.app import create_app
from registry.clearing import ledger
from registry.clearing.credits import credit_balance
from registry.clearing.models import BankLine, Payment, Statement
from registry.core import clock
from registry.core.db import make_engine
from registry.core.http import get_db
from registry.licences.models import Licence
from tests.api.test_clearing_payments import LUMP_SUM, upfront_statements
from tests.conftest import migrate_fresh
from tests.factories import Factory
from tests.factories import licences as lf
from tests.factories.databases import BACKENDS, empty_database
from tests.race.harness import SECRET, gunicorn, request

pytestmark = pytest.mark.concurrency

THREADS = 8
RETRIES = 40


@dataclass
class Served:
    url: str
    port: int
    token: str
    statements: list[str]  # one open lump-sum statement (CNY 10,000.00) per licence
    organisation_id: uuid.UUID
    admin_token: str


def _seed(url: str, folder: Path) -> tuple[str, list[str], uuid.UUID, str]:
    """One SME holding two lump-sum licences (two offers), and an admin; committed, through
    the services."""
    app = create_app(
        {"env": "testing", "database_url": url, "instance_path": folder, "secret_key": SECRET}
    )
    try:
        with app.app_context(), get_db().transaction() as session:
            factory = Factory(session, app)
            tto = factory.user(factory.organisation("university"), "tto")
            sme, user, token = lf.enterprise_licensee(factory, is_sme=False)
            statements = []
            for _ in range(2):
                offer = lf.published_offer(factory, tto, royalty=LUMP_SUM)
                licence = lf.take_up(factory, user, offer)
                statements.append(str(upfront_statements(factory, licence)[0].id))
            organisation_id = sme.id
            admin_token = factory.token(factory.admin())
    finally:
        app.extensions["registry.db"].engine.dispose()
    return token, statements, organisation_id, admin_token


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp(f"payments-{request.param}")
    with empty_database(request.param, folder, "payments") as url:
        migrate_fresh(url).dispose()
        token, statements, organisation_id, admin_token = _seed(url, folder / "instance")
        with gunicorn("wsgi:app", url, folder, workers=2, threads=4, window_ms=0) as port:
            yield Served(url, port, token, statements, organisation_id, admin_token)


def _pay(served: Served, statement_id: str, amount: str, key: str) -> tuple[int, Any]:
    body = {
        "statement_id": statement_id,
        "amount": amount,
        "paid_date": str(clock.today()),
        "reference": "race",
    }
    for _ in range(RETRIES):
        status, answer, _ = request(
            served.port, "POST", "/api/v1/payments", served.token, body, {"Idempotency-Key": key}
        )
        if status not in (409, 503) or answer.get("code") == "already_paid":
            return status, answer
        time.sleep(0.05)  # busy (503) or the same key still running (409): retry
    return status, answer


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


def test_one_key_from_many_threads_records_one_payment(served: Served) -> None:
    statement_id = served.statements[0]
    key = str(uuid.uuid4())
    answers = _fire(THREADS, lambda _: _pay(served, statement_id, "1234.56", key))

    assert [status for status, _ in answers] == [201] * THREADS, answers
    assert len({body["id"] for _, body in answers}) == 1
    session, engine = _read(served)
    try:
        payments = session.scalars(
            select(Payment).where(Payment.statement_id == uuid.UUID(statement_id))
        )
        assert [p.amount for p in payments] == [123_456]
        statement = session.get(Statement, uuid.UUID(statement_id))
        assert statement is not None
        assert statement.amount_paid == 123_456
        assert ledger.trial_balance(session)["balanced"]
    finally:
        session.close()
        engine.dispose()


def test_racing_payments_never_over_apply_a_statement(served: Served) -> None:
    statement_id = served.statements[1]
    answers = _fire(THREADS, lambda _: _pay(served, statement_id, "3000.00", str(uuid.uuid4())))

    # Applied in turn: 3,000, 6,000, 9,000, then 1,000 of the fourth and 2,000 credit; the
    # statement is paid, so the others are refused 409 already_paid and record nothing.
    recorded = [body for status, body in answers if status == 201]
    refused = [body for status, body in answers if status != 201]
    assert len(recorded) == 4, answers
    assert [body["code"] for body in refused] == ["already_paid"] * (THREADS - 4)
    assert sorted((body["applied"], body["credit"]) for body in recorded) == [
        ("1000.00", "2000.00"),
        ("3000.00", "0.00"),
        ("3000.00", "0.00"),
        ("3000.00", "0.00"),
    ]
    session, engine = _read(served)
    try:
        statement = session.get(Statement, uuid.UUID(statement_id))
        assert statement is not None
        assert (statement.amount_paid, statement.status.value) == (1_000_000, "paid")
        count = session.scalar(
            select(func.count())
            .select_from(Payment)
            .where(Payment.statement_id == uuid.UUID(statement_id))
        )
        assert count == 4
        assert credit_balance(session, served.organisation_id) == 200_000
        licence = session.get(Licence, statement.licence_id)
        assert licence is not None
        assert licence.status.value == "active"
        assert ledger.trial_balance(session)["balanced"]
    finally:
        session.close()
        engine.dispose()


def _upload(served: Served, content: bytes) -> tuple[int, Any]:
    boundary = "bank-race-boundary"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="bank.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {
        "Authorization": f"Bearer {served.admin_token}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
    }
    for _ in range(RETRIES):
        connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
        try:
            connection.request("POST", "/api/v1/bank-statements", body=body, headers=headers)
            response = connection.getresponse()
            status, answer = response.status, json.loads(response.read())
        finally:
            connection.close()
        if status != 503:
            return status, answer
        time.sleep(0.05)
    return status, answer


def test_concurrent_imports_of_one_file_hold_each_line_once(served: Served) -> None:
    day = clock.today()
    content = "date,amount,reference,counterparty\n" + "".join(
        f"{day},{n}.00,unmatched receipt {n},Example Co.\n" for n in range(1, 6)
    )
    answers = _fire(4, lambda _: _upload(served, content.encode()))

    # Each import either adds the lines or finds them there; a PostgreSQL import that meets a
    # concurrent one inserting the same line is refused whole (409) and changes nothing.
    assert all(status in (200, 409) for status, _ in answers), answers
    assert sum(body["suspense"] for status, body in answers if status == 200) == 5
    session, engine = _read(served)
    try:
        lines = session.scalars(select(BankLine).order_by(BankLine.amount)).all()
        assert [line.amount for line in lines] == [100, 200, 300, 400, 500]
        assert ledger.balance(session, ledger.SUSPENSE) == -1_500
        assert ledger.trial_balance(session)["balanced"]
    finally:
        session.close()
        engine.dispose()
