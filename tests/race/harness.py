"""The take-up/withdrawal race harness: a committed database, a gunicorn server, parallel
clients recording a history, and a checker over that history and the database afterwards.

Modelled on Jepsen (reliability.md §1.5, §8 T6): every operation is recorded with when it was
invoked and when its answer came back; the checker then judges the history against what the
database holds. Commit order is read from the audit log, whose sequence numbers are handed out
under a lock held until commit, so they order commits independently of the code under test.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from registry.app import create_app
from registry.audit.models import AuditEvent
from registry.core.db import make_engine
from registry.core.http import get_db
from registry.licences.models import Licence
from registry.offers.models import Offer
from tests.factories import Factory
from tests.factories import licences as lf

REPO = Path(__file__).resolve().parents[2]
SECRET = "race-secret-" + "k7Qp2Zx9Lm4Rt8Vw" * 2
STARTUP_TIMEOUT_S = 30.0
CLIENT_TIMEOUT_S = 30.0


def settings_env(url: str, instance: Path) -> dict[str, str]:
    return {
        "REGISTRY_ENV": "testing",
        "REGISTRY_DATABASE_URL": url,
        "REGISTRY_INSTANCE_PATH": str(instance),
        "REGISTRY_SECRET_KEY": SECRET,
        # The races are about ordering take-ups and withdrawals; hundreds of inline contract
        # renders (~0.5 s each) would only slow them. Contracts under concurrency are tested
        # in tests/race/test_contracts_concurrency.py.
        "REGISTRY_CONTRACT_ISSUE": "deferred",
    }


# Seeding a committed database -----------------------------------------------------------------


@dataclass
class Seeded:
    tto_token: str
    licensee_tokens: list[str]
    licensee_orgs: list[str]
    offer_ids: list[str]


def seed(url: str, instance: Path, *, offers: int, licensees: int) -> Seeded:
    """A university whose TTO has published ``offers`` free offers, and ``licensees`` SMEs each
    with one licensee user; every user has a bearer token. Committed, through the services."""
    app = create_app(
        {"env": "testing", "database_url": url, "instance_path": instance, "secret_key": SECRET}
    )
    try:
        with app.app_context(), get_db().transaction() as session:
            factory = Factory(session, app)
            university = factory.organisation("university", name="竞态测试大学")
            tto = factory.user(university, "tto")
            smes = [lf.enterprise_licensee(factory) for _ in range(licensees)]
            offer_ids = [str(lf.published_offer(factory, tto).id) for _ in range(offers)]
            seeded = Seeded(
                tto_token=factory.token(tto),
                licensee_tokens=[token for _, _, token in smes],
                licensee_orgs=[str(org.id) for org, _, _ in smes],
                offer_ids=offer_ids,
            )
    finally:
        app.extensions["registry.db"].engine.dispose()
    return seeded


# The server ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def gunicorn(
    app_spec: str,
    url: str,
    folder: Path,
    *,
    workers: int = 3,
    threads: int = 4,
    window_ms: int,
    settings: dict[str, str] | None = None,
) -> Iterator[int]:
    """Serve ``app_spec`` with gunicorn on a loopback port; yields the port. ``settings``
    overrides ``REGISTRY_*`` variables."""
    instance = folder / "instance"
    instance.mkdir(exist_ok=True)
    log = folder / "gunicorn.log"
    port = _free_port()
    env = {
        **os.environ,
        **settings_env(url, instance),
        "RACE_WINDOW_MS": str(window_ms),
        "PYTHONPATH": str(REPO),
        **(settings or {}),
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--preload",  # import the app once, then fork: workers start in a fraction of the time
        "--log-level",
        "warning",
        "--error-logfile",
        str(log),
        app_spec,
    ]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_until_ready(process, port, log)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_until_ready(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{tail(log)}")
        try:
            status, _, _ = request(port, "GET", "/readyz", None)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn not ready within {STARTUP_TIMEOUT_S} s:\n{tail(log)}")


def tail(log: Path, lines: int = 40) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def request(
    port: int,
    method: str,
    path: str,
    token: str | None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT_S)
    try:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        payload = None
        if body is not None:
            payload = json.dumps(body, ensure_ascii=False).encode()
            sent["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=sent)
        response = connection.getresponse()
        data = response.read()
        try:
            answer = json.loads(data) if data else None
        except ValueError:
            answer = data.decode(errors="replace")
        return response.status, answer, dict(response.getheaders())
    finally:
        connection.close()


# The history ---------------------------------------------------------------------------------


@dataclass
class Op:
    """One operation: what was asked, when (monotonic seconds), and the answer."""

    kind: str  # "take_up" or "withdraw"
    client: int  # index of the SME (take-ups)
    offer_id: str
    invoked: float = 0.0
    completed: float = 0.0
    status: int = 0  # 0: no answer (an exception, recorded in ``error``)
    body: Any = None
    error: str | None = None


def _perform(port: int, op: Op, token: str, body: dict[str, Any]) -> None:
    path = f"/api/v1/offers/{op.offer_id}/{'take-up' if op.kind == 'take_up' else 'withdraw'}"
    op.invoked = time.monotonic()
    try:
        op.status, op.body, _ = request(port, "POST", path, token, body)
    except Exception as exc:  # recorded as an indeterminate operation, never swallowed
        op.error = repr(exc)
    op.completed = time.monotonic()


def run_trials(
    port: int,
    seeded: Seeded,
    offer_ids: list[str],
    *,
    rng: random.Random,
    acceptors: int,
    accept_spread_s: float = 0.010,
    withdraw_spread_s: float = 0.020,
) -> list[list[Op]]:
    """For each offer: ``acceptors`` SMEs take it up while its TTO withdraws it, each starting
    after its own random delay; returns the operations of each trial."""
    history: list[list[Op]] = []
    notice = lf.notice()
    reason = {"reason": "专利权人调整许可策略"}
    for offer_id in offer_ids:
        ops = [Op("take_up", index, offer_id) for index in range(acceptors)]
        ops.append(Op("withdraw", -1, offer_id))
        delays = [rng.uniform(0, accept_spread_s) for _ in range(acceptors)]
        delays.append(rng.uniform(0, withdraw_spread_s))
        barrier = threading.Barrier(len(ops))

        def run(op: Op, delay: float, barrier: threading.Barrier) -> None:
            barrier.wait(timeout=30)
            time.sleep(delay)
            if op.kind == "take_up":
                _perform(port, op, seeded.licensee_tokens[op.client], notice)
            else:
                _perform(port, op, seeded.tto_token, reason)

        threads = [
            threading.Thread(target=run, args=(op, delay, barrier))
            for op, delay in zip(ops, delays, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(CLIENT_TIMEOUT_S + 5)
        history.append(ops)
    return history


# The checker ---------------------------------------------------------------------------------


@dataclass
class Verdict:
    trials: int
    accepted: int = 0
    refused: int = 0
    busy: int = 0  # 503 with Retry-After: allowed, counted
    contested: int = 0  # trials with both accepted and refused take-ups
    violations: dict[str, list[str]] = field(default_factory=dict)

    def add(self, rule: str, detail: str) -> None:
        self.violations.setdefault(rule, []).append(detail)

    @property
    def anomalies(self) -> int:
        return sum(len(found) for found in self.violations.values())

    def summary(self) -> str:
        rules = ", ".join(f"{rule}={len(found)}" for rule, found in sorted(self.violations.items()))
        return (
            f"trials={self.trials} take-ups accepted={self.accepted} refused={self.refused} "
            f"busy(503)={self.busy} contested trials={self.contested} "
            f"violations: {rules or 'none'}"
        )


def check(url: str, seeded: Seeded, history: list[list[Op]]) -> Verdict:
    """Judge the history against the database: nothing lost, nothing phantom, nothing committed
    after the withdrawal, no duplicates, counts that add up, no server errors."""
    offer_ids = [ops[0].offer_id for ops in history]
    engine = make_engine(url, pool=False)
    try:
        with engine.connect() as connection:
            ids = [uuid.UUID(i) for i in offer_ids]
            offers = {
                str(row.id): row
                for row in connection.execute(
                    select(
                        Offer.id,
                        Offer.status,
                        Offer.version,
                        Offer.withdrawn_version,
                        Offer.licence_count,
                    ).where(Offer.id.in_(ids))
                )
            }
            licences = list(
                connection.execute(
                    select(
                        Licence.id,
                        Licence.reference,
                        Licence.offer_id,
                        Licence.offer_version,
                        Licence.licensee_organisation_id,
                    ).where(Licence.offer_id.in_(ids))
                )
            )
            events = list(
                connection.execute(
                    select(AuditEvent.seq, AuditEvent.action, AuditEvent.subject_id).where(
                        AuditEvent.action.in_(["licence.taken_up", "offer.withdrawn"])
                    )
                )
            )
    finally:
        engine.dispose()

    seq_of = {(e.action, e.subject_id): e.seq for e in events}
    by_offer: dict[str, list[Any]] = defaultdict(list)
    for licence in licences:
        by_offer[str(licence.offer_id)].append(licence)
    references = Counter(licence.reference for licence in licences)
    verdict = Verdict(trials=len(history))
    for reference, times in references.items():
        if times > 1:
            verdict.add("duplicate_reference", f"{reference} × {times}")

    for ops in history:
        _check_trial(verdict, seeded, ops, offers[ops[0].offer_id], by_offer, seq_of)
    return verdict


def _check_trial(
    verdict: Verdict,
    seeded: Seeded,
    ops: list[Op],
    offer: Any,
    by_offer: dict[str, list[Any]],
    seq_of: dict[tuple[str, str], int],
) -> None:
    offer_id = ops[0].offer_id
    rows = {str(row.id): row for row in by_offer.get(offer_id, [])}
    take_ups = [op for op in ops if op.kind == "take_up"]
    [withdrawal] = [op for op in ops if op.kind == "withdraw"]
    where = f"offer {offer_id}"

    for op in ops:
        if op.error is not None:
            verdict.add("no_answer", f"{where} {op.kind}#{op.client}: {op.error}")
        elif op.status == 503:
            verdict.busy += 1
        elif op.status >= 500:
            verdict.add("server_error", f"{where} {op.kind}#{op.client}: {op.status} {op.body}")

    if withdrawal.status != 200 or offer.status != "withdrawn" or offer.withdrawn_version is None:
        verdict.add(
            "withdrawal_failed",
            f"{where}: {withdrawal.status} {withdrawal.body}; offer is {offer.status}",
        )
        return
    withdrawn_seq = seq_of.get(("offer.withdrawn", offer_id))

    answered: set[str] = set()
    accepted = refused = 0
    for op in take_ups:
        if op.status == 201:
            accepted += 1
            licence_id = op.body["id"]
            answered.add(licence_id)
            row = rows.get(licence_id)
            if row is None:
                verdict.add("lost", f"{where}: 201 {op.body['reference']} has no licence row")
                continue
            if (
                row.offer_version != op.body["offer_version"]
                or row.reference != op.body["reference"]
            ):
                verdict.add("mismatch", f"{where}: answer {op.body} differs from row {row}")
            if withdrawal.completed < op.invoked:
                verdict.add(
                    "accepted_after_withdrawal_answered",
                    f"{where}: take-up #{op.client} sent after the withdrawal's 200 got 201",
                )
        elif op.status == 409:
            refused += 1
            code = (op.body or {}).get("code")
            if code != "offer_not_published":
                verdict.add("wrong_refusal", f"{where}: take-up #{op.client} refused {code}")
            if op.completed < withdrawal.invoked:
                verdict.add(
                    "refused_before_withdrawal",
                    f"{where}: take-up #{op.client} refused before the withdrawal was sent",
                )
        elif op.status not in (503, 0):
            verdict.add("unexpected_status", f"{where}: take-up {op.status} {op.body}")
    verdict.accepted += accepted
    verdict.refused += refused
    verdict.contested += bool(accepted and refused)

    for licence_id, row in rows.items():
        if licence_id not in answered:
            verdict.add("phantom", f"{where}: licence {row.reference} without a 201")
        if row.offer_version >= offer.withdrawn_version:
            verdict.add(
                "committed_after_withdrawal",
                f"{where}: {row.reference} took version {row.offer_version}, the withdrawal "
                f"wrote {offer.withdrawn_version}",
            )
        licence_seq = seq_of.get(("licence.taken_up", licence_id))
        if licence_seq is None:
            verdict.add("missing_audit_event", f"{where}: {row.reference}")
        elif withdrawn_seq is not None and licence_seq > withdrawn_seq:
            verdict.add(
                "committed_after_withdrawal_audit_order",
                f"{where}: {row.reference} logged at seq {licence_seq}, after the withdrawal "
                f"at {withdrawn_seq}",
            )
    if withdrawn_seq is None:
        verdict.add("missing_audit_event", f"{where}: no offer.withdrawn event")
    versions = Counter(row.offer_version for row in rows.values())
    organisations = Counter(str(row.licensee_organisation_id) for row in rows.values())
    for version, times in versions.items():
        if times > 1:
            verdict.add("duplicate_offer_version", f"{where}: version {version} × {times}")
    for organisation, times in organisations.items():
        if times > 1:
            verdict.add("duplicate_licence", f"{where}: organisation {organisation} × {times}")
    if offer.licence_count != len(rows):
        verdict.add(
            "licence_count", f"{where}: licence_count {offer.licence_count}, {len(rows)} rows"
        )
