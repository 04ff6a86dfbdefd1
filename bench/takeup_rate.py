"""Take-ups per second through HTTP, against a raw single-row insert transaction.

Each run starts from a fresh database brought to the head revision by Alembic, seeded through
the services with one university TTO, ``--smes`` enterprises and enough published free offers
for every take-up to be a distinct (offer, enterprise) pair. Then, in the same run:

* **take-up** — the real app (``wsgi:app``) under gunicorn on loopback (``--workers`` processes
  × ``--threads`` threads, preloaded), ``--clients`` client threads with keep-alive connections
  sending ``POST /api/v1/offers/{id}/take-up`` until ``--takeups`` are done: bearer-token
  look-up, the conditional UPDATE on the offer, the reference number, the licence INSERT and
  its audit event, one commit each;
  The main pass runs with ``REGISTRY_CONTRACT_ISSUE=deferred`` (the licence alone); a second
  pass of ``--inline-takeups`` take-ups issues each contract inline (render, sign, store), as
  the default deployment does;
* **baseline** — the same number of transactions that each INSERT one row into a scratch table
  and commit, with the driver alone (sqlite3 with the app's PRAGMAs: WAL, synchronous=FULL;
  psycopg), once from one connection and once from ``--clients`` connections at a time.

Every take-up must answer 201 and leave exactly one licence; the run fails otherwise. Results
are printed and written to ``bench/results/takeup-<date>.json`` with the machine's description.

    .venv/bin/python -m bench.takeup_rate [--takeups N] [--clients C]
        [--database sqlite|postgresql|both] [--pg-url URL] [--no-write]

PostgreSQL runs use their own database (``bench_takeup`` by default, created when missing; its
``public`` schema is dropped and recreated for each run), never the one the tests use.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import queue
import sqlite3
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import func, make_url, select

from bench.common import ensure_pg_database, fresh_engine, machine_description, pg_version
from registry.core.clock import today
from registry.core.db import SQLITE_BUSY_TIMEOUT_MS, make_engine
from registry.licences.models import Licence
from tests.factories import licences as lf
from tests.race.harness import gunicorn, seed

RESULTS = Path(__file__).parent / "results"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_takeup"


# --- take-ups through HTTP -------------------------------------------------------------------


def run_takeups(
    port: int, jobs: list[tuple[str, str]], clients: int
) -> tuple[float, list[float], list[int], int]:
    """Send every (offer id, token) take-up from ``clients`` threads, each with its own
    Idempotency-Key and retried with it on 503 as the API asks; wall time, latencies (first
    attempt to final answer), final statuses and the number of retries."""
    work: queue.SimpleQueue[tuple[str, str, str, float]] = queue.SimpleQueue()
    for offer_id, token in jobs:
        work.put((offer_id, token, str(uuid.uuid4()), 0.0))
    latencies: list[float] = []
    statuses: list[int] = []
    retries = [0]
    lock = threading.Lock()
    body = json.dumps(lf.notice(), ensure_ascii=False).encode()
    start_line = threading.Barrier(clients + 1)

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start_line.wait()
        while True:
            try:
                offer_id, token, key, first = work.get_nowait()
            except queue.Empty:
                break
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Idempotency-Key": key,
            }
            began = first or time.perf_counter()
            try:
                connection.request("POST", f"/api/v1/offers/{offer_id}/take-up", body, headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connection.close()  # the server closed a kept-alive connection: reopen
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                status = -1
                work.put((offer_id, token, key, began))
            if status == 503:  # busy: retry with the same key (the stored outcome, if any)
                with lock:
                    retries[0] += 1
                work.put((offer_id, token, key, began))
                continue
            elapsed = time.perf_counter() - began
            if status != -1:
                with lock:
                    latencies.append(elapsed)
                    statuses.append(status)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start_line.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, latencies, statuses, retries[0]


def count_licences(url: str) -> int:
    engine = make_engine(url, pool=False)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(Licence)) or 0)
    finally:
        engine.dispose()


# --- the baseline: one INSERT per transaction ------------------------------------------------


def sqlite_connect(path: str) -> Any:
    connection = sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    for pragma in (
        "PRAGMA journal_mode=WAL",
        f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
        "PRAGMA synchronous=FULL",
    ):
        connection.execute(pragma)
    return connection


def raw_inserts(url: str, count: int, clients: int) -> float:
    """Seconds for ``count`` one-row INSERT transactions spread over ``clients`` connections."""
    sqlite = url.startswith("sqlite")
    target = make_url(url)
    if sqlite:
        path = str(target.database)

        def connect() -> Any:
            return sqlite_connect(path)

        def insert(connection: Any, n: int) -> None:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO bench_raw_rows (payload) VALUES (?)", (f"row {n}",))
            connection.execute("COMMIT")

        setup = "CREATE TABLE IF NOT EXISTS bench_raw_rows (id INTEGER PRIMARY KEY, payload TEXT)"
    else:
        dsn = target.set(drivername="postgresql").render_as_string(hide_password=False)

        def connect() -> Any:
            return psycopg.connect(dsn)

        def insert(connection: Any, n: int) -> None:
            connection.execute("INSERT INTO bench_raw_rows (payload) VALUES (%s)", (f"row {n}",))
            connection.commit()

        setup = "CREATE TABLE IF NOT EXISTS bench_raw_rows (id BIGSERIAL PRIMARY KEY, payload TEXT)"
    first = connect()
    first.execute(setup)
    if not sqlite:
        first.commit()
    first.close()
    return _spread(connect, insert, count, clients)


def _spread(
    connect: Callable[[], Any], insert: Callable[[Any, int], None], count: int, clients: int
) -> float:
    per_client = [count // clients + (i < count % clients) for i in range(clients)]
    start_line = threading.Barrier(clients + 1)

    def worker(n: int) -> None:
        connection = connect()
        start_line.wait()
        for i in range(n):
            insert(connection, i)
        connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in per_client]
    for thread in threads:
        thread.start()
    start_line.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


# --- one database ----------------------------------------------------------------------------


def measure(name: str, url: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    fresh_engine(url).dispose()
    offers = math.ceil(args.takeups / args.smes)
    print(f"[{name}] seeding {offers} published offers and {args.smes} enterprises …", flush=True)
    seeded = seed(url, folder, offers=offers, licensees=args.smes)
    # Enterprise-major order: requests in flight at once mostly concern different offers, as
    # when many SMEs browse many offers (they still share the audit log's head, one lock).
    pairs = [(o, t) for t in seeded.licensee_tokens for o in seeded.offer_ids]
    jobs = pairs[: args.takeups]
    print(
        f"[{name}] {len(jobs)} take-ups from {args.clients} clients through gunicorn "
        f"({args.workers} workers × {args.threads} threads) …",
        flush=True,
    )
    with gunicorn(
        "wsgi:app", url, folder, workers=args.workers, threads=args.threads, window_ms=0
    ) as port:
        seconds, latencies, statuses, retries = run_takeups(port, jobs, args.clients)
    created = statuses.count(201)
    stored = count_licences(url)
    if created != len(jobs) or stored != len(jobs):
        raise SystemExit(
            f"[{name}] expected {len(jobs)} licences: {created} answered 201, {stored} stored; "
            f"statuses {sorted(set(statuses))}"
        )
    print(f"[{name}] baseline: {len(jobs)} one-row INSERT transactions …", flush=True)
    raw_one = raw_inserts(url, len(jobs), 1)
    raw_many = raw_inserts(url, len(jobs), args.clients)
    ordered = sorted(latencies)
    result = {
        "takeups": len(jobs),
        "clients": args.clients,
        "server": f"gunicorn --preload, {args.workers} workers x {args.threads} threads (gthread)",
        "takeup_seconds": round(seconds, 3),
        "takeups_per_second": round(len(jobs) / seconds, 1),
        "retries_after_503": retries,
        "latency_ms_p50": round(statistics.median(ordered) * 1000, 1),
        "latency_ms_p95": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
        "latency_ms_max": round(ordered[-1] * 1000, 1),
        "baseline_one_connection_per_second": round(len(jobs) / raw_one, 1),
        "baseline_concurrent_per_second": round(len(jobs) / raw_many, 1),
    }
    result["baseline_over_takeup"] = round(
        result["baseline_one_connection_per_second"] / result["takeups_per_second"], 1
    )
    if args.inline_takeups:
        result["inline_contracts"] = measure_inline(name, url, folder, args, result)
    print(
        f"[{name}] take-up {result['takeups_per_second']}/s (p50 {result['latency_ms_p50']} ms, "
        f"p95 {result['latency_ms_p95']} ms); raw INSERT+COMMIT "
        f"{result['baseline_one_connection_per_second']}/s on one connection, "
        f"{result['baseline_concurrent_per_second']}/s on {args.clients}",
        flush=True,
    )
    return result


def measure_inline(
    name: str, url: str, folder: Path, args: argparse.Namespace, deferred: dict[str, Any]
) -> dict[str, Any]:
    """The default deployment: every take-up renders, signs and stores its contract inside its
    transaction. Compared with the deferred take-ups above, measured in the same run."""
    smes = min(args.smes, args.inline_takeups)
    offers = math.ceil(args.inline_takeups / smes)
    seeded = seed(url, folder, offers=offers, licensees=smes)
    pairs = [(o, t) for t in seeded.licensee_tokens for o in seeded.offer_ids]
    jobs = pairs[: args.inline_takeups]
    print(f"[{name}] {len(jobs)} take-ups with inline contracts …", flush=True)
    with gunicorn(
        "wsgi:app",
        url,
        folder,
        workers=args.workers,
        threads=args.threads,
        window_ms=0,
        settings={"REGISTRY_CONTRACT_ISSUE": "inline"},
    ) as port:
        seconds, latencies, statuses, retries = run_takeups(port, jobs, args.clients)
    if statuses.count(201) != len(jobs):
        raise SystemExit(f"[{name}] inline take-ups answered {sorted(set(statuses))}")
    ordered = sorted(latencies)
    rate = len(jobs) / seconds
    result = {
        "takeups": len(jobs),
        "takeups_per_second": round(rate, 2),
        "retries_after_503": retries,
        "latency_ms_p50": round(statistics.median(ordered) * 1000, 1),
        "latency_ms_p95": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
        "deferred_over_inline": round(deferred["takeups_per_second"] / rate, 1),
    }
    print(
        f"[{name}] inline contracts: {result['takeups_per_second']}/s "
        f"(p50 {result['latency_ms_p50']} ms); deferred is {result['deferred_over_inline']}x",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.takeup_rate", description=__doc__)
    parser.add_argument("--takeups", type=int, default=600)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--smes", type=int, default=20)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--pg-url", default=os.environ.get("REGISTRY_BENCH_DATABASE_URL", DEFAULT_PG_URL)
    )
    parser.add_argument(
        "--inline-takeups",
        type=int,
        default=40,
        help="take-ups that also issue their contract inline (0: skip)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only, write no JSON")
    args = parser.parse_args(argv)
    if min(args.takeups, args.clients, args.smes, args.workers, args.threads) < 1:
        parser.error("every count must be at least 1")

    day = today()
    report: dict[str, Any] = {
        "benchmark": "take-up rate through HTTP",
        "date": day.isoformat(),
        "machine": machine_description(),
        "results": {},
    }
    with tempfile.TemporaryDirectory(prefix="bench-takeup-") as scratch:
        folder = Path(scratch)
        if args.database in ("sqlite", "both"):
            (folder / "sqlite").mkdir()
            url = f"sqlite:///{folder / 'sqlite' / 'bench.db'}"
            report["results"]["sqlite"] = measure("sqlite", url, folder / "sqlite", args)
        if args.database in ("postgresql", "both"):
            (folder / "postgresql").mkdir()
            url = args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
            ensure_pg_database(url)
            report["machine"]["postgresql"] = pg_version(url)
            report["results"]["postgresql"] = measure(
                "postgresql", url, folder / "postgresql", args
            )
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"takeup-{day.isoformat()}.json"
        path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"written to {path}")
    return report


if __name__ == "__main__":
    main()
