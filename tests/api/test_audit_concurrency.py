"""Concurrent writers never fork or skip the audit sequence, on SQLite and on PostgreSQL.

Unlike the rest of the suite these tests need *committed* data and truly parallel writers, so
each builds its own database (SQLite: a temp file; PostgreSQL, when REGISTRY_TEST_DATABASE_URL
is set: a fresh ``registry_conc_<random>`` database, dropped afterwards), migrates it with
Alembic, serves a real app on a socket with werkzeug's threaded server and fires requests from
several threads at once with ``http.client``.

Every run widens the race window: the appender sleeps a little after reading the log head, so
two writers that are not properly serialised are very likely to read the same head. The
negative controls run the *same* harness against a deliberately broken appender and must see
the harness report a violation (reliability.md §0 rule 11):

* PostgreSQL: the head is read without ``FOR UPDATE``. Two writers then take the same seq;
  the primary key on ``audit_events.seq`` turns the would-be fork into an IntegrityError, so
  the harness sees requests fail (500) — a lost state change.
* SQLite: ``FOR UPDATE`` means nothing there; what serialises writers is ``BEGIN IMMEDIATE``
  (registry.core.db). The broken variant opens write requests with a deferred ``BEGIN``.
  SQLite allows one writer and refuses to let a transaction with a stale snapshot write, so
  the broken variant cannot fork the chain on SQLite: it shows up as writes refused with
  SQLITE_BUSY (503) *without* the busy timeout being honoured (reliability.md §2.2–2.3). The
  harness counts every 503 as a problem to report; the correct variant must produce none
  (BEGIN IMMEDIATE waits up to the 10 s busy timeout, far longer than this whole test).

While the writers run, a reader calls GET /audit/verify over and over; every verdict must be
ok. (On PostgreSQL a verify that read the events and then the head in two READ COMMITTED
statements reported a "truncated" log whenever a writer committed in between.)
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from registry.accounts.models import Organisation
from registry.accounts.schemas import OrganisationSchema
from registry.accounts.services import (
    actor_of,
    bootstrap_admin,
    create_organisation,
    create_token,
    create_user,
)
from registry.app import create_app
from registry.audit import services as audit_services
from registry.audit.models import AuditEvent, AuditHead
from registry.core.actor import Role
from registry.core.db import Database, make_engine
from registry.core.http import get_db
from registry.core.identifiers import application_check_character, uscc_check_character
from registry.patents.models import Patent
from tests.conftest import migrate_fresh
from tests.factories import PASSWORD
from tests.factories.databases import BACKENDS, empty_database

pytestmark = pytest.mark.concurrency

THREADS = 8
REQUESTS_PER_THREAD = 15
RETRIES_ON_BUSY = 3
RACE_WINDOW_S = 0.002  # sleep after reading the head: widens the window a broken lock leaves
VERIFY_PAUSE_S = 0.02  # the reader leaves the GIL to the writers most of the time
RUN_DEADLINE_S = 60.0  # a hung run fails instead of blocking CI


# A committed database of our own ---------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def committed_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database at the head revision, with committed data visible to every thread."""
    with empty_database(request.param, tmp_path, "conc") as url:
        migrate_fresh(url).dispose()
        yield url


@pytest.fixture
def live_app(committed_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(
        {
            "env": "testing",
            "database_url": committed_url,
            "instance_path": tmp_path / "instance",
            "secret_key": "concurrency-secret-" + "x" * 32,
        }
    )
    yield app
    db: Database = app.extensions["registry.db"]
    db.engine.dispose()


@dataclass
class Seeded:
    admin_token: str
    tto_token: str
    university_id: str
    events: int  # audit events written while seeding


def seed(app: Flask) -> Seeded:
    """An admin, a university with a TTO user, and a token for each (all committed)."""
    with app.app_context(), get_db().transaction() as session:
        admin = bootstrap_admin(session, email="admin@conc.test", name="Admin", password=PASSWORD)
        university = create_organisation(
            session,
            actor=actor_of(admin),
            data=OrganisationSchema().load(
                {"name": "并发大学", "kind": "university", "uscc": uscc(999_999_999)}
            ),
        )
        tto = create_user(
            session,
            actor=actor_of(admin),
            organisation_id=university.id,
            data={"email": "tto@conc.test", "name": "TTO", "role": Role.TTO, "password": PASSWORD},
        )
        admin_token, _ = create_token(session, user=admin, ttl=timedelta(days=1))
        tto_token, _ = create_token(session, user=tto, ttl=timedelta(days=1))
        events = audit_services.count_events(session)
        university_id = str(university.id)
    return Seeded(admin_token, tto_token, university_id, events)


def uscc(serial: int) -> str:
    body = f"91350100{serial:09d}"
    return body + uscc_check_character(body)


def application_number(serial: int) -> str:
    digits = f"20211{serial:07d}"
    return f"{digits}.{application_check_character(digits)}"


# The harness -----------------------------------------------------------------------------------


class QuietHandler(WSGIRequestHandler):
    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes; without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, *args: Any, **kwargs: Any) -> None:  # one line per request: noise
        pass


@dataclass
class Outcome:
    kind: str  # "patent" or "organisation"
    status: int
    attempts: int
    body: dict[str, Any]
    retry_after: list[str | None] = field(default_factory=list)


@dataclass
class RunReport:
    outcomes: list[Outcome]
    verdicts: list[dict[str, Any]]  # GET /audit/verify answers taken while the writers ran
    errors: list[str]  # exceptions raised in the client threads

    @property
    def successes(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 201]

    @property
    def problems(self) -> list[str]:
        """Everything that must not happen; empty for a correct appender."""
        out = list(self.errors)
        for outcome in self.outcomes:
            if outcome.status != 201:
                out.append(f"{outcome.kind}: {outcome.status} after {outcome.attempts} attempts")
            elif outcome.attempts > 1:
                out.append(f"{outcome.kind}: needed {outcome.attempts} attempts (503 busy)")
            if any(value is None for value in outcome.retry_after):
                out.append(f"{outcome.kind}: 503 without Retry-After")
        out += [f"verify during writes: {v}" for v in self.verdicts if not v.get("ok")]
        return out


def _request(
    port: int, method: str, path: str, token: str, body: Any = None
) -> tuple[int, Any, str | None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return (
            response.status,
            (json.loads(data) if data else None),
            response.getheader("Retry-After"),
        )
    finally:
        connection.close()


def run_writers(app: Flask, seeded: Seeded, *, first_serial: int = 0) -> RunReport:
    """THREADS × REQUESTS_PER_THREAD state changes at once over real sockets, plus one reader
    verifying the chain while they run. 503 answers are retried up to RETRIES_ON_BUSY times."""
    server: BaseWSGIServer = make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler
    )
    serving = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    serving.start()
    port = server.port
    barrier = threading.Barrier(THREADS + 1)
    done = threading.Event()
    outcomes: list[Outcome] = []
    verdicts: list[dict[str, Any]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def job(serial: int) -> tuple[str, str, str, dict[str, Any]]:
        if serial % 2:
            return (
                "patent",
                "/api/v1/patents",
                seeded.tto_token,
                {
                    "application_number": application_number(serial),
                    "patent_type": "invention",
                    "title": f"并发测试专利{serial}",
                    "filing_date": "2021-03-15",
                    "ipc": ["H01M 4/587"],
                },
            )
        return (
            "organisation",
            "/api/v1/organisations",
            seeded.admin_token,
            {
                "name": f"并发企业{serial}",
                "kind": "enterprise",
                "uscc": uscc(serial),
                "size": "small",
                "is_sme": True,
            },
        )

    def writer(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            for number in range(REQUESTS_PER_THREAD):
                serial = first_serial + index * REQUESTS_PER_THREAD + number
                kind, path, token, body = job(serial)
                outcome = Outcome(kind, 0, 0, {})
                while outcome.attempts <= RETRIES_ON_BUSY:
                    outcome.attempts += 1
                    status, answer, retry_after = _request(port, "POST", path, token, body)
                    outcome.status, outcome.body = status, answer or {}
                    if status != 503:
                        break
                    outcome.retry_after.append(retry_after)
                    time.sleep(min(float(retry_after or 1), 0.05))
                with lock:
                    outcomes.append(outcome)
        except Exception as exc:  # reported, never swallowed
            with lock:
                errors.append(f"writer {index}: {exc!r}")

    def reader() -> None:
        try:
            while not done.is_set():
                status, answer, _ = _request(
                    port, "GET", "/api/v1/audit/verify", seeded.admin_token
                )
                with lock:
                    verdicts.append(answer if status == 200 else {"ok": False, "status": status})
                done.wait(VERIFY_PAUSE_S)
        except Exception as exc:
            with lock:
                errors.append(f"reader: {exc!r}")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(THREADS)]
    verifier = threading.Thread(target=reader)
    try:
        for thread in threads:
            thread.start()
        barrier.wait(timeout=10)
        verifier.start()
        deadline = time.monotonic() + RUN_DEADLINE_S
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        done.set()
        verifier.join(10)
        if any(t.is_alive() for t in [*threads, verifier]):
            errors.append(f"the run did not finish within {RUN_DEADLINE_S} s")
    finally:
        done.set()
        server.shutdown()
        server.server_close()
        serving.join(10)
    return RunReport(outcomes, verdicts, errors)


@dataclass
class LogState:
    seqs: list[int]
    head_size: int
    subjects: dict[str, list[str]]  # action → subject ids, in seq order
    patents: int
    organisations: int
    verdict: audit_services.Verdict


def read_log(url: str) -> LogState:
    engine = make_engine(url, pool=False)
    try:
        with Session(engine) as session:
            events = session.execute(
                select(AuditEvent.seq, AuditEvent.action, AuditEvent.subject_id).order_by(
                    AuditEvent.seq
                )
            ).all()
            subjects: dict[str, list[str]] = {}
            for _seq, action, subject in events:
                subjects.setdefault(action, []).append(subject)
            head = session.get_one(AuditHead, 1)
            return LogState(
                seqs=[row.seq for row in events],
                head_size=head.size,
                subjects=subjects,
                patents=session.scalar(select(func.count()).select_from(Patent)) or 0,
                organisations=session.scalar(select(func.count()).select_from(Organisation)) or 0,
                verdict=audit_services.verify(session),
            )
    finally:
        engine.dispose()


def widened(real: Callable[[Session], AuditHead]) -> Callable[[Session], AuditHead]:
    def locked_head_then_wait(session: Session) -> AuditHead:
        head = real(session)
        time.sleep(RACE_WINDOW_S)
        return head

    return locked_head_then_wait


def head_without_lock(session: Session) -> AuditHead:
    """BROKEN on purpose: reads the head like any row, without FOR UPDATE."""
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).execution_options(populate_existing=True)
    ).scalar_one()
    time.sleep(RACE_WINDOW_S)
    return head


# The tests -------------------------------------------------------------------------------------


def test_parallel_writers_never_fork_or_skip_the_sequence(
    live_app: Flask, committed_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed(live_app)
    monkeypatch.setattr(audit_services, "_locked_head", widened(audit_services._locked_head))
    started = time.monotonic()

    report = run_writers(live_app, seeded)

    elapsed = time.monotonic() - started
    total = THREADS * REQUESTS_PER_THREAD
    assert report.problems == [], report.problems[:10]
    assert len(report.outcomes) == total
    assert report.verdicts, "the reader verified the chain at least once during the run"
    state = read_log(committed_url)
    n = seeded.events + len(report.successes)
    assert state.seqs == list(range(1, n + 1)), "seq is 1..N without gaps or duplicates"
    assert state.head_size == n
    assert state.verdict.ok, state.verdict
    assert state.verdict.size == n
    # Exactly one event per successful change, naming the object the client got back.
    created = {
        kind: sorted(o.body["id"] for o in report.outcomes if o.kind == kind)
        for kind in ("patent", "organisation")
    }
    assert sorted(state.subjects["patent.created"]) == created["patent"]
    assert sorted(state.subjects["organisation.created"]) == sorted(
        [*created["organisation"], seeded.university_id, *_clearing_house(state)]
    )
    assert state.patents == len(created["patent"])
    assert state.organisations == len(created["organisation"]) + 2  # + clearing house, seed
    # The operator's command agrees.
    result = live_app.test_cli_runner().invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert f"ok: {n} events" in result.output
    assert elapsed < 30, f"the run took {elapsed:.1f} s"


def _clearing_house(state: LogState) -> list[str]:
    # The first organisation.created event is the clearing house made by bootstrap_admin.
    return state.subjects["organisation.created"][:1]


def test_negative_control_a_broken_appender_is_caught(
    live_app: Flask,
    committed_url: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same harness, pointed at a broken appender, must report a violation."""
    seeded = seed(live_app)
    db: Database = live_app.extensions["registry.db"]
    monkeypatch.setattr(audit_services, "_locked_head", head_without_lock)
    if db.dialect == "sqlite":
        # Write requests open deferred transactions instead of BEGIN IMMEDIATE.
        monkeypatch.setattr(db, "write_sessions", db.read_sessions)

    with caplog.at_level(logging.WARNING):
        report = run_writers(live_app, seeded)

    assert report.problems, "the harness did not notice a broken appender"
    logged = "\n".join(
        record.getMessage() + (str(record.exc_info[1]) if record.exc_info else "")
        for record in caplog.records
    )
    if db.dialect == "sqlite":
        # Writers with stale snapshots were refused at once, busy timeout or not.
        assert any(o.attempts > 1 or o.status == 503 for o in report.outcomes)
        assert "database is locked" in logged
    else:
        # Two writers took the same seq; the primary key refused the second one.
        assert any(o.status == 500 for o in report.outcomes)
        assert "pk_audit_events" in logged
    # Whatever was refused, nothing that succeeded was lost or doubled, and the chain holds:
    # the database itself (seq primary key, SQLite's single writer) refused the forks.
    state = read_log(committed_url)
    n = seeded.events + len(report.successes)
    assert state.seqs == list(range(1, n + 1))
    assert state.verdict.ok
