"""A backup taken while take-ups and payments run restores with every invariant holding
(issue 6 §5 "Done when"; reliability.md §8 T40 on PostgreSQL, T41 on SQLite).

The real app runs under gunicorn with contracts issued inline, so every take-up writes a signed
PDF to the blob store before its commit. Client threads — one per SME — take up lump-sum offers
and pay each licence's upfront statement in two parts. A third of the way in an admin issues a
checkpoint over HTTP, and ``flask backup`` runs as its own process while the clients carry on.
The backup is then restored by ``flask restore`` into a fresh empty database and instance:
every invariant holds (audit chain, the checkpoint's root and signature, ledger balanced, every
contract file present with its hash), the restored rows and audit root are those the manifest
recorded, and the restored state is a consistent cut of the history — mid-way, with no licence
without its contract and no payment without its ledger transaction.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from registry.app import create_app
from registry.audit.models import AuditEvent
from registry.clearing.models import JournalTransaction, Payment, Statement
from registry.contracts.models import Contract
from registry.core import clock
from registry.core.db import make_engine
from registry.core.http import get_db
from registry.licences.models import Licence
from registry.ops.dumps import read_snapshot
from tests.api.test_clearing_payments import LUMP_SUM
from tests.conftest import migrate_fresh
from tests.factories import Factory
from tests.factories import licences as lf
from tests.factories.databases import BACKENDS, empty_database
from tests.race.harness import REPO, SECRET, gunicorn, request, settings_env, tail

pytestmark = pytest.mark.concurrency

SMES = 4
OFFERS = 12  # more than the clients get through: they stop once the backup is done and after
BEFORE = 15  # operations done before the checkpoint and the backup
AFTER = 12  # operations done after the backup finished, before the clients stop
RETRIES = 60
PARTS = ("4000.00", "6000.00")  # the statement is CNY 10,000.00


@dataclass
class Seeded:
    tokens: list[str]
    offers: list[str]
    admin_token: str


@dataclass
class Progress:
    """What the clients have done, shared with the thread that takes the backup."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    answers: list[tuple[str, int, Any, float]] = field(default_factory=list)

    def record(self, what: str, status: int, body: Any) -> None:
        with self.lock:
            self.done += 1
            self.answers.append((what, status, body, time.monotonic()))


def _seed(url: str, instance: Path) -> Seeded:
    app = create_app(
        {"env": "testing", "database_url": url, "instance_path": instance, "secret_key": SECRET}
    )
    try:
        with app.app_context(), get_db().transaction() as session:
            factory = Factory(session, app)
            tto = factory.user(factory.organisation("university"), "tto")
            offers = [
                str(lf.published_offer(factory, tto, royalty=LUMP_SUM).id) for _ in range(OFFERS)
            ]
            tokens = [lf.enterprise_licensee(factory, is_sme=False)[2] for _ in range(SMES)]
            seeded = Seeded(tokens, offers, factory.token(factory.admin()))
    finally:
        app.extensions["registry.db"].engine.dispose()
    return seeded


def _call(port: int, method: str, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    """One request, retried with the same Idempotency-Key while the service is busy (503), the
    first attempt with that key is still running (409 without a business code), or no answer
    came (an indeterminate outcome, settled by the retry: reliability.md §1.5)."""
    headers = {"Idempotency-Key": str(uuid.uuid4())} if method == "POST" else {}
    status, answer = 0, None
    for _ in range(RETRIES):
        try:
            status, answer, _ = request(port, method, path, token, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            status, answer = 0, repr(exc)
        else:
            conflict = status == 409 and answer.get("code") == "idempotency_conflict"
            if status != 503 and not conflict:
                return status, answer
        time.sleep(0.05)
    return status, answer


def _client(port: int, seeded: Seeded, index: int, progress: Progress) -> None:
    try:
        _take_up_and_pay(port, seeded.tokens[index], seeded, progress)
    except Exception as exc:  # recorded, so the test names it instead of a silent thread
        progress.record("client crashed", -1, repr(exc))


def _take_up_and_pay(port: int, token: str, seeded: Seeded, progress: Progress) -> None:
    for offer_id in seeded.offers:
        if progress.stop.is_set():
            return
        status, licence = _call(
            port, "POST", f"/api/v1/offers/{offer_id}/take-up", token, lf.notice()
        )
        progress.record("take-up", status, licence)
        if status != 201:
            continue
        _, statements = _call(port, "GET", f"/api/v1/statements?licence_id={licence['id']}", token)
        for amount in PARTS:
            body = {
                "statement_id": statements[0]["id"],
                "amount": amount,
                "paid_date": str(clock.today()),
                "reference": f"backup-race-{uuid.uuid4().hex[:8]}",
            }
            status, answer = _call(port, "POST", "/api/v1/payments", token, body)
            progress.record("payment", status, answer)


def _flask(url: str, instance: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(url, instance), "PYTHONPATH": str(REPO), **extra}
    return subprocess.run(  # noqa: S603 - our interpreter, our arguments
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _counts(url: str) -> dict[str, int]:
    engine = make_engine(url, pool=False)
    try:
        with engine.connect() as connection:
            return read_snapshot(connection).rows
    finally:
        engine.dispose()


@dataclass
class Run:
    backend: str
    folder: Path
    url: str
    backup: Path
    backup_output: str
    backup_window: tuple[float, float]  # monotonic start and end of `flask backup`
    load_seconds: float
    checkpoint_size: int
    progress: Progress


@pytest.fixture(scope="module", params=BACKENDS)
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    folder = tmp_path_factory.mktemp(f"backup-race-{request.param}")
    instance = folder / "instance"
    with empty_database(request.param, folder, "backup_race") as url:
        migrate_fresh(url).dispose()
        seeded = _seed(url, instance)
        settings = {"REGISTRY_CONTRACT_ISSUE": "inline"}
        with gunicorn(
            "wsgi:app", url, folder, workers=2, threads=4, window_ms=0, settings=settings
        ) as port:
            progress = Progress()
            started = time.monotonic()
            clients = [
                threading.Thread(target=_client, args=(port, seeded, i, progress))
                for i in range(SMES)
            ]
            for client in clients:
                client.start()
            while progress.done < BEFORE:
                time.sleep(0.05)
            status, checkpoint = _call(
                port, "POST", "/api/v1/audit/checkpoints", seeded.admin_token
            )
            assert status == 201, checkpoint
            backup = folder / "backup"
            taken = time.monotonic()
            done = _flask(url, instance, "backup", str(backup))
            finished = time.monotonic()
            assert done.returncode == 0, done.stderr
            after = progress.done
            while progress.done < after + AFTER and any(c.is_alive() for c in clients):
                time.sleep(0.05)
            progress.stop.set()
            for client in clients:
                client.join(300)
            load_seconds = time.monotonic() - started
        yield Run(
            request.param,
            folder,
            url,
            backup,
            done.stdout,
            (taken, finished),
            load_seconds,
            checkpoint["size"],
            progress,
        )


def test_the_load_ran_and_the_live_database_holds_every_invariant(run: Run) -> None:
    answers = run.progress.answers
    assert len(answers) >= BEFORE + AFTER
    failed = [answer for answer in answers if answer[1] != 201]
    assert not failed, (failed, tail(run.folder / "gunicorn.log"))
    # Writes went on while `flask backup` ran, not only before and after it.
    start, end = run.backup_window
    assert any(start < completed < end for *_, completed in answers)
    instance = run.folder / "instance"
    checked = _flask(run.url, instance, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    checks = 6 if run.backend == "sqlite" else 5  # sqlite_integrity on SQLite only
    assert f"all {checks} checks passed" in checked.stdout, checked.stdout


def test_a_backup_taken_during_writes_restores_with_every_invariant(
    run: Run, tmp_path: Path
) -> None:
    manifest = json.loads((run.backup / "manifest.json").read_text())
    final = _counts(run.url)
    # Mid-way: the backup holds the checkpoint's events and more, and writes went on after it.
    assert manifest["audit"]["latest_checkpoint"]["tree_size"] == run.checkpoint_size
    assert run.checkpoint_size < manifest["audit"]["size"] < final["audit_events"]
    assert 0 < manifest["rows"]["licences"] < final["licences"]
    assert manifest["rows"]["payments"] < final["payments"]
    assert "NOT included" in run.backup_output

    with empty_database(run.backend, tmp_path, "restored") as url:
        instance = tmp_path / "instance"  # a new instance: no keys of its own
        started = time.monotonic()
        restored = _flask(url, instance, "restore", str(run.backup))
        restore_seconds = time.monotonic() - started
        output = restored.stdout
        assert restored.returncode == 0, output + restored.stderr
        passed = {line.split()[1] for line in output.splitlines() if line.startswith("PASS ")}
        assert {
            "schema",
            "audit_chain",
            "audit_checkpoint",
            "ledger_balanced",
            "contract_blobs",
            "backup_rows",
            "backup_audit",
        } <= passed, output
        assert "FAIL" not in output
        checkpoint_line = next(line for line in output.splitlines() if "audit_checkpoint" in line)
        assert f"the first {run.checkpoint_size} events equals" in checkpoint_line

        # With the original key installed, as a real recovery would have it.
        key = run.folder / "instance" / "checkpoint.key"
        again = _flask(url, instance, "check", REGISTRY_CHECKPOINT_KEY=str(key))
        assert again.returncode == 0, again.stdout + again.stderr
        assert "verify with the configured checkpoint key" in again.stdout

        # A consistent cut: every licence has its contract, every payment its statement's
        # share and its ledger transaction, the log's actions match the rows.
        engine = make_engine(url, pool=False)
        try:
            with engine.connect() as connection:
                count = lambda model: connection.scalar(select(func.count()).select_from(model))  # noqa: E731
                licences, contracts = count(Licence), count(Contract)
                payments = connection.execute(select(Payment.statement_id, Payment.applied)).all()
                paid = dict(connection.execute(select(Statement.id, Statement.amount_paid)).all())
                payment_transactions = connection.scalar(
                    select(func.count())
                    .select_from(JournalTransaction)
                    .where(JournalTransaction.subject_type == "payment")
                )
                taken_up = connection.scalar(
                    select(func.count())
                    .select_from(AuditEvent)
                    .where(AuditEvent.action == "licence.taken_up")
                )
        finally:
            engine.dispose()
        assert licences == contracts == taken_up == manifest["rows"]["licences"]
        assert payment_transactions == len(payments) == manifest["rows"]["payments"]
        by_statement: dict[Any, int] = {}
        for payment in payments:
            by_statement[payment.statement_id] = (
                by_statement.get(payment.statement_id, 0) + payment.applied
            )
        assert paid == {statement: by_statement.get(statement, 0) for statement in paid}

    print(
        f"\n[{run.backend}] load {run.load_seconds:.1f} s; `flask backup` "
        f"{run.backup_window[1] - run.backup_window[0]:.1f} s, of which the backup itself "
        f"{manifest['seconds']:.2f} s "
        f"({manifest['audit']['size']} of {final['audit_events']} events, "
        f"{manifest['rows']['licences']} of {final['licences']} licences, "
        f"{manifest['rows']['payments']} of {final['payments']} payments); "
        f"restore + checks {restore_seconds:.1f} s"
    )
