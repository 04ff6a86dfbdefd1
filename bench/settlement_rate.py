"""Payments per second of a settlement run, against a raw SQL aggregation of the same payments.

Each measured size starts from a fresh database brought to the head revision by Alembic and
seeded by bench/settlement_seed.py: three co-owners (reward policies of 70 % and 50 % and the
statutory 50 % of STL Art. 45), a handful of patents each with all three as co-owners (income
shares differing from title shares) and fifteen inventors (five per co-owner), published offers
and a few licences taken up through the services; then ``--payments`` paid statements with their
payments (paid over a 91-day period ending yesterday) and ledger transactions in bulk. The
trial balance must be balanced before and after. In the same run:

* **settlement** — ``registry.clearing.settlement.run_settlement`` for the period, as an admin,
  at a 3 % fee and a CNY 500 minimum payout, in one transaction, committed: what
  ``POST /api/v1/settlements`` and ``flask settle`` run;
* **baseline** — one SQL query summing the same payments' applied amounts weighted by each
  current co-owner's income share, grouped by co-owner (payments → licences → patent_owners,
  unsettled payments of the period only): the least reading a settlement must do. Best of 3.

Checks after the run (the run fails otherwise): every payment settled, none held; each
payment's lines (its fee included) sum to its applied amount to the fen; lines + fees = money
applied = the run's total; each co-owner's lines are within 2 fen per payment of the baseline's
income share of the money net of fees; ``royalties:received`` is back to 0; the trial balance
is balanced. Results go to ``bench/results/settlement-<date>.json`` (Beijing date) with the
machine's description and a fingerprint of the settlement code measured.

    .venv/bin/python -m bench.settlement_rate [--payments 100000 ...] [--patents 4]
        [--licensees 3] [--database sqlite|postgresql|both] [--pg-url URL] [--profile]
        [--no-write]

PostgreSQL runs use their own database (``bench_settlement`` by default, created when missing;
its ``public`` schema is dropped and recreated per size), never the one the tests use; after
seeding its new tables are vacuumed and analysed, as autovacuum would have done by then.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import hashlib
import io
import json
import os
import pstats
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Date, Uuid, bindparam, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bench.common import ensure_pg_database, fresh_engine, machine_description, pg_version
from bench.settlement_seed import PERIOD_DAYS, bulk_payments, seed
from registry.audit.models import AuditEvent
from registry.clearing import ledger
from registry.clearing.models import (
    JournalEntry,
    JournalTransaction,
    Payment,
    SettledPayment,
    SettlementLine,
    SettlementRun,
)
from registry.clearing.settlement import run_settlement
from registry.core import clock
from registry.core.actor import Actor
from registry.core.db import Database

RESULTS = Path(__file__).parent / "results"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_settlement"
FEE_RATE = 300  # 3 %, in hundredths of a percent
MINIMUM_PAYOUT = 50_000  # fen (CNY 500.00)
CODE = ("settlement.py", "settlement_books.py", "settlement_inputs.py", "splitting.py")
TABLES = ("statements", "payments", "journal_transactions", "journal_entries", "licences")

# --- the two measured operations -------------------------------------------------------------

BASELINE = (
    text(
        """
        SELECT po.organisation_id, SUM(p.applied * po.income_share) AS weighted
        FROM payments p
        JOIN licences l ON l.id = p.licence_id
        JOIN patent_owners po ON po.patent_id = l.patent_id AND po.superseded_dt IS NULL
        WHERE p.paid_date BETWEEN :start AND :end AND p.applied > 0
          AND NOT EXISTS (SELECT 1 FROM settled_payments s
                          WHERE s.payment_id = p.id AND s.reversed_dt IS NULL)
        GROUP BY po.organisation_id
        """
    )
    .bindparams(bindparam("start", type_=Date()), bindparam("end", type_=Date()))
    .columns(organisation_id=Uuid(), weighted=BigInteger())
)


def baseline(engine: Engine, start: date, end: date) -> tuple[float, dict[uuid.UUID, int]]:
    """Best of three runs of :data:`BASELINE`: seconds and each co-owner's Σ applied × share
    (fen × hundredths of a percent)."""
    best, weighted = float("inf"), {}
    for _ in range(3):
        gc.collect()
        with engine.connect() as connection:
            began = time.perf_counter()
            rows = connection.execute(BASELINE, {"start": start, "end": end}).all()
            best = min(best, time.perf_counter() - began)
        weighted = {org: int(total) for org, total in rows}
    return best, weighted


def settle(
    database: Database, actor: Actor, start: date, end: date, profile: bool
) -> tuple[float, uuid.UUID, str | None]:
    """Seconds of one committed run_settlement; the run's id; a cProfile summary if asked."""
    profiler = cProfile.Profile() if profile else None
    gc.collect()
    began = time.perf_counter()
    if profiler:
        profiler.enable()
    with database.transaction() as session:
        run = run_settlement(
            session,
            actor=actor,
            period_start=start,
            period_end=end,
            fee_rate=FEE_RATE,
            minimum_payout=MINIMUM_PAYOUT,
        )
        run_id = run.id
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - began
    summary = None
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(15)
        stats.sort_stats("tottime").print_stats(15)
        summary = out.getvalue()
    return seconds, run_id, summary


def reset_peak_rss() -> None:
    """Restart the process's peak RSS (Linux: clear_refs 5 resets VmHWM), so the peak read
    after the settlement is the settlement's, not the seeding's or an earlier size's."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> int | None:
    """The process's peak resident memory in MiB since :func:`reset_peak_rss` (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


# --- checks -----------------------------------------------------------------------------------


def row_counts(session: Session) -> dict[str, int]:
    models: dict[str, Any] = {
        "settlement_lines": SettlementLine,
        "settled_payments": SettledPayment,
        "journal_transactions": JournalTransaction,
        "journal_entries": JournalEntry,
        "audit_events": AuditEvent,
    }
    return {
        name: int(session.scalar(select(func.count()).select_from(model)) or 0)
        for name, model in models.items()
    }


def check(
    session: Session, run_id: uuid.UUID, count: int, applied: int, weighted: dict[uuid.UUID, int]
) -> dict[str, Any]:
    """The run's checks (module docstring); raises SystemExit on any failure."""
    run = session.get_one(SettlementRun, run_id)
    lines = select(SettlementLine).where(SettlementLine.run_id == run_id).subquery()
    settled = int(session.scalar(select(func.count()).where(SettledPayment.run_id == run_id)) or 0)
    total = int(session.scalar(select(func.sum(lines.c.amount))) or 0)
    fees = int(
        session.scalar(select(func.sum(lines.c.amount)).where(lines.c.payee_type == "platform"))
        or 0
    )
    per_payment = (
        select(Payment.id)
        .join(lines, lines.c.payment_id == Payment.id)
        .group_by(Payment.id, Payment.applied)
        .having(func.sum(lines.c.amount) != Payment.applied)
        .subquery()
    )
    mismatched = int(session.scalar(select(func.count()).select_from(per_payment)) or 0)
    by_owner = dict(
        session.execute(
            select(lines.c.owner_organisation_id, func.sum(lines.c.amount))
            .where(lines.c.owner_organisation_id.is_not(None))
            .group_by(lines.c.owner_organisation_id)
        ).all()
    )
    # Σ lines of a co-owner vs its income share of the money net of the fee rate: the fee is
    # rounded down and each part allocated to within a fen, so < 2 fen apart per payment.
    scale = 10_000 * 10_000
    deviation = max(
        abs(int(by_owner.get(org, 0)) * scale - w * (10_000 - FEE_RATE)) / scale
        for org, w in weighted.items()
    )
    balance = ledger.trial_balance(session)
    result = {
        "payments_settled": settled,
        "total_received": run.total_received,
        "total_fees": run.total_fees,
        "lines_plus_fees_equal_applied": total == applied == run.total_received
        and fees == run.total_fees,
        "payments_whose_lines_differ_from_applied": mismatched,
        "max_owner_deviation_from_baseline_fen": round(deviation, 2),
        "royalties_received_after": ledger.balance(session, ledger.RECEIVED),
        "trial_balance_balanced": balance["balanced"],
    }
    ok = (
        settled == count
        and result["lines_plus_fees_equal_applied"]
        and mismatched == 0
        and deviation < 2 * count
        and result["royalties_received_after"] == 0
        and balance["balanced"]
    )
    if not ok:
        raise SystemExit(f"settlement check failed: {result}")
    return result


# --- one database, one size -------------------------------------------------------------------


def measure(
    name: str, url: str, folder: Path, count: int, args: argparse.Namespace
) -> dict[str, Any]:
    engine = fresh_engine(url)
    database = Database(engine)
    end = clock.today() - timedelta(days=1)
    start = end - timedelta(days=PERIOD_DAYS - 1)
    recorded = datetime.combine(start - timedelta(days=30), datetime.min.time(), UTC)
    print(f"[{name}] seeding {args.patents} patents, {args.licensees} licensees …", flush=True)
    began = time.perf_counter()
    seeded = seed(url, folder, patents=args.patents, licensees=args.licensees, recorded=recorded)
    print(f"[{name}] bulk-inserting {count} statements and payments …", flush=True)
    applied = bulk_payments(database, seeded, count, start)
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for table in TABLES:
                connection.execute(text(f"VACUUM ANALYZE {table}"))
    seed_seconds = time.perf_counter() - began
    print(f"[{name}] seeded in {seed_seconds:.1f} s", flush=True)
    with database.transaction() as session:
        if not ledger.trial_balance(session)["balanced"]:
            raise SystemExit(f"[{name}] the seeded ledger does not balance")
        before = row_counts(session)
    print(f"[{name}] baseline: one aggregation query, best of 3 …", flush=True)
    baseline_seconds, weighted = baseline(engine, start, end)
    print(f"[{name}] run_settlement over {count} payments …", flush=True)
    reset_peak_rss()
    seconds, run_id, summary = settle(database, seeded.actor, start, end, args.profile)
    peak_mb = peak_rss_mb()
    with database.transaction() as session:
        after = row_counts(session)
        checks = check(session, run_id, count, applied, weighted)
    engine.dispose()
    result = {
        "payments": count,
        "licences": len(seeded.licences),
        "seed_seconds": round(seed_seconds, 1),
        "settlement_seconds": round(seconds, 3),
        "settlement_payments_per_second": round(count / seconds, 1),
        "settlement_ms_per_payment": round(1000 * seconds / count, 3),
        "baseline_seconds": round(baseline_seconds, 3),
        "baseline_payments_per_second": round(count / baseline_seconds, 1),
        "settlement_over_baseline": round(seconds / baseline_seconds, 1),
        "rows_written": {k: after[k] - before[k] for k in after},
        "lines_per_payment": round(
            (after["settlement_lines"] - before["settlement_lines"]) / count, 2
        ),
        "settlement_peak_rss_mb": peak_mb,
        "profiled": args.profile,
        "checks": {"trial_balance_balanced_before": True, **checks},
    }
    print(
        f"[{name}] {count} payments: settlement {result['settlement_seconds']} s "
        f"({result['settlement_payments_per_second']}/s, {result['settlement_ms_per_payment']} ms "
        f"each); baseline {result['baseline_seconds']} s; ratio "
        f"{result['settlement_over_baseline']}x; wrote {result['rows_written']}",
        flush=True,
    )
    if summary:
        print(summary)
        result["profile_top"] = summary.splitlines()
    return result


def code_fingerprint() -> dict[str, str]:
    folder = Path(ledger.__file__).parent
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()[:12]
        for name in CODE
        if (folder / name).exists()
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.settlement_rate", description=__doc__)
    parser.add_argument("--payments", type=int, nargs="+", default=[100_000])
    parser.add_argument("--patents", type=int, default=4)
    parser.add_argument("--licensees", type=int, default=3)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--pg-url", default=os.environ.get("REGISTRY_BENCH_DATABASE_URL", DEFAULT_PG_URL)
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the settlement")
    parser.add_argument("--no-write", action="store_true", help="print only, write no JSON")
    args = parser.parse_args(argv)
    if min(*args.payments, args.patents, args.licensees) < 1:
        parser.error("every count must be at least 1")

    day = clock.today()
    report: dict[str, Any] = {
        "benchmark": "settlement rate",
        "date": day.isoformat(),
        "machine": machine_description(),
        "code_sha256": code_fingerprint(),
        "setup": {
            "co_owners": "university (70 % policy), university (50 % policy), institute "
            "(no policy: statutory 50 %); 5 inventors each",
            "patents": args.patents,
            "licensees": args.licensees,
            "fee_rate": FEE_RATE,
            "minimum_payout": MINIMUM_PAYOUT,
            "period_days": PERIOD_DAYS,
        },
        "results": {},
    }
    databases = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    with tempfile.TemporaryDirectory(prefix="bench-settlement-") as scratch:
        for name in databases:
            results = report["results"].setdefault(name, {})
            for count in args.payments:
                folder = Path(scratch) / f"{name}-{count}"
                folder.mkdir()
                if name == "sqlite":
                    url = f"sqlite:///{folder / 'bench.db'}"
                else:
                    url = args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
                    ensure_pg_database(url)
                    report["machine"]["postgresql"] = pg_version(url)
                results[str(count)] = measure(name, url, folder, count, args)
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"settlement-{day.isoformat()}.json"
        path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"written to {path}")
    return report


if __name__ == "__main__":
    main()
