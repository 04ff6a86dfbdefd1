"""Rows per second of the bulk patent import, against a bare INSERT of the same rows.

Each measured run starts from a fresh database brought to the head revision by Alembic:

* **import** — ``registry.patents.importer.import_rows`` for every row, committed once, exactly
  as ``POST /api/v1/patents/import`` and ``flask patents import`` run it: every rule checked,
  owners and inventors registered through the services, one audit event per patent;
* **baseline** — one ``executemany`` INSERT of the same patents into the ``patents`` table through
  SQLAlchemy Core (no validation, no owners, no inventors, no audit), the floor a database can do.

``import_time_over_baseline`` (import time / baseline time) says what the rules cost. Results
are printed and written to ``bench/results/import-<date>.json`` (the Beijing date) with the
machine's description.

    .venv/bin/python -m bench.import_rate [--rows N] [--database sqlite|postgresql|both]
        [--pg-url URL] [--profile]

PostgreSQL runs use their own database (``bench_import`` by default, created when missing;
its ``public`` schema is dropped and recreated for each run), never the one the tests use.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, insert, text
from sqlalchemy.engine import Engine

from bench.common import (
    ensure_pg_database,
    fresh_engine,
    machine_description,
    pg_version,
)
from registry.accounts.models import EnterpriseSize, Organisation, OrganisationKind, User
from registry.core.actor import Actor, Role
from registry.core.clock import today
from registry.core.db import Database
from registry.core.identifiers import application_check_character, uscc_check_character
from registry.patents import importer, rules
from registry.patents.models import LegalStatus, Patent, PatentType

RESULTS = Path(__file__).parent / "results"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_import"
SEED = 20261126
TITLES = (
    "一种锂离子电池负极材料及其制备方法",
    "一种基于深度学习的遥感图像分割方法",
    "一种可降解高分子包装薄膜",
    "一种智能温室灌溉控制装置",
    "一种用于污水处理的复合絮凝剂",
    "一种高强度铝合金焊接工艺",
    "一种便携式心电监测设备",
    "一种新能源汽车充电桩外壳",
)
IPC = ("H01M 4/587", "G06T 7/11", "C08L 67/04", "A01G 25/16", "C02F 1/52", "B23K 9/23")
TYPES = (("1", "invention"), ("2", "utility_model"), ("3", "design"))


def _uscc(body17: str) -> str:
    return body17 + uscc_check_character(body17)


UNIVERSITY_USCC = _uscc("12330000470003267")
ENTERPRISE_USCC = _uscc("91330106MA2H1K3B0")


@dataclass
class Generated:
    rows: list[dict[str, str]]
    baseline: list[dict[str, Any]]


def generate(count: int) -> Generated:
    """``count`` valid import rows (a fifth co-owned, all with inventors) and the matching
    bare ``patents`` rows for the baseline."""
    rng = random.Random(SEED)
    rows: list[dict[str, str]] = []
    baseline: list[dict[str, Any]] = []
    stamp = datetime.now(UTC)
    for index in range(count):
        digit, patent_type = TYPES[index % 3]
        year = 2012 + index % 13
        digits = f"{year}{digit}{1_000_000 + index:07d}"
        number = f"{digits}.{application_check_character(digits)}"
        filing = date(year, 1, 1) + timedelta(days=rng.randrange(360))
        grant = filing + timedelta(days=200 + rng.randrange(500))
        grant = min(grant, today() - timedelta(days=1))
        title = f"{TITLES[index % len(TITLES)]}（{index}）"
        ipc = IPC[index % len(IPC)]
        row = {
            "application_number": number,
            "patent_type": patent_type,
            "title": title,
            "ipc": ipc,
            "filing_date": filing.isoformat(),
            "grant_date": grant.isoformat(),
            "inventors": "王小明:60;李华:40",
        }
        if index % 5 == 0:
            row["owners"] = f"{UNIVERSITY_USCC}:70:60;{ENTERPRISE_USCC}:30:40"
        rows.append(row)
        kind = PatentType(patent_type)
        baseline.append(
            {
                "id": uuid.uuid4(),
                "application_number": number,
                "patent_type": kind,
                "title": title,
                "ipc": [ipc],
                "filing_date": filing,
                "grant_date": grant,
                "expiry_date": rules.expiry_date(kind, filing),
                "legal_status": LegalStatus.VALID,
                "version": 1,
                "created_dt": stamp,
                "updated_dt": stamp,
            }
        )
    return Generated(rows, baseline)


# --- databases ------------------------------------------------------------------------------


def seed_importer(engine: Engine) -> Actor:
    """The university (whose TTO imports) and its enterprise partner; returns the TTO."""
    with Database(engine).transaction() as session:
        stamp = datetime.now(UTC)
        university = Organisation(
            name="浙江测试大学",
            kind=OrganisationKind.UNIVERSITY,
            uscc=UNIVERSITY_USCC,
            is_sme=False,
            created_dt=stamp,
        )
        enterprise = Organisation(
            name="杭州测试科技有限公司",
            kind=OrganisationKind.ENTERPRISE,
            uscc=ENTERPRISE_USCC,
            size=EnterpriseSize.SMALL,
            is_sme=True,
            created_dt=stamp,
        )
        session.add_all([university, enterprise])
        session.flush()
        user = User(
            organisation_id=university.id,
            email="tto@bench.test",
            name="技术转移中心",
            role=Role.TTO,
            password_hash="not-used",  # noqa: S106 - the benchmark never signs in
            is_active=True,
            created_dt=stamp,
        )
        session.add(user)
        session.flush()
        return Actor(user.id, university.id, Role.TTO, user.email)


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def run_import(url: str, rows: list[dict[str, str]], profile: bool) -> tuple[float, str | None]:
    engine = fresh_engine(url)
    actor = seed_importer(engine)
    database = Database(engine)
    profiler = cProfile.Profile() if profile else None

    def work() -> None:
        with database.transaction() as session:
            report = importer.import_rows(session, actor=actor, rows=rows, dry_run=False)
            assert len(report.patent_ids) == len(rows)

    if profiler:
        profiler.enable()
    seconds = timed(work)
    if profiler:
        profiler.disable()
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM patents")).scalar()
    engine.dispose()
    if stored != len(rows):
        raise SystemExit(f"import stored {stored} of {len(rows)} patents")
    stats = None
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        stats = out.getvalue()
    return seconds, stats


def run_baseline(url: str, baseline: list[dict[str, Any]]) -> float:
    engine = fresh_engine(url)

    def work() -> None:
        with engine.begin() as connection:
            connection.execute(insert(cast(Table, Patent.__table__)), baseline)

    seconds = timed(work)
    engine.dispose()
    return seconds


# --- reporting --------------------------------------------------------------------------------


def measure(name: str, url: str, data: Generated, profile: bool) -> dict[str, Any]:
    count = len(data.rows)
    print(f"[{name}] importing {count} rows through import_rows …", flush=True)
    import_seconds, stats = run_import(url, data.rows, profile)
    print(f"[{name}] baseline: executemany INSERT of {count} rows …", flush=True)
    baseline_seconds = run_baseline(url, data.baseline)
    result = {
        "rows": count,
        "import_seconds": round(import_seconds, 3),
        "import_rows_per_second": round(count / import_seconds, 1),
        "baseline_seconds": round(baseline_seconds, 3),
        "baseline_rows_per_second": round(count / baseline_seconds, 1),
        "import_time_over_baseline": round(
            baseline_seconds and import_seconds / baseline_seconds, 1
        ),
    }
    print(
        f"[{name}] import {result['import_rows_per_second']} rows/s"
        f" ({result['import_seconds']} s); baseline {result['baseline_rows_per_second']} rows/s"
        f" ({result['baseline_seconds']} s); import takes"
        f" {result['import_time_over_baseline']}x as long as the bare INSERT",
        flush=True,
    )
    if stats:
        print(stats)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.import_rate", description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument(
        "--pg-url", default=os.environ.get("REGISTRY_BENCH_DATABASE_URL", DEFAULT_PG_URL)
    )
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the import")
    parser.add_argument("--no-write", action="store_true", help="print only, write no JSON")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")

    data = generate(args.rows)
    day = today()
    report: dict[str, Any] = {
        "benchmark": "patent import rate",
        "date": day.isoformat(),
        "machine": machine_description(),
        "rows": args.rows,
        "row_mix": "1/3 each invention, utility model, design; 1/5 co-owned; 2 inventors each",
        "results": {},
    }
    if args.database in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
            url = f"sqlite:///{Path(folder) / 'bench.db'}"
            report["results"]["sqlite"] = measure("sqlite", url, data, args.profile)
    if args.database in ("postgresql", "both"):
        url = args.pg_url.replace("postgresql://", "postgresql+psycopg://", 1)
        ensure_pg_database(url)
        report["machine"]["postgresql"] = pg_version(url)
        report["results"]["postgresql"] = measure("postgresql", url, data, args.profile)
    if not args.no_write:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"import-{day.isoformat()}.json"
        path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"written to {path}")
    return report


if __name__ == "__main__":
    main()
