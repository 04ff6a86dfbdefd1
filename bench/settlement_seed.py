"""Seeding for bench/settlement_rate.py: co-owned patents, offers and licences through the
services, then paid statements with their payments and ledger transactions in bulk.

Through the services (tests/factories, as bench/takeup_rate.py seeds): three co-owners — a
university with a 70 % reward policy, a university with 50 %, an institute with none (the
statutory 50 %, STL Art. 45) — and a handful of patents each owned by all three, income shares
differing from title shares, with fifteen inventors, five of each co-owner's staff; a published
running-royalty offer per patent (the two other co-owners consenting, Patent Law Art. 14) and a
few take-ups through registry.licences.services.take_up with contracts deferred (no render).
The patents' records are dated before the period (``patents.services.now`` patched, as
tests/api/test_clearing_settlement.py does), so each payment is split by the current record.

In bulk (executemany INSERTs in chunks): paid statements, their payments — one in 25 overpaid,
the excess held as the licensee's credit and not settled — and the ledger's "statement issued"
and "payment" transactions exactly as registry.clearing.ledger lists them, so the trial
balance stays balanced. The statements' and payments' audit events are not written: a
settlement does not read them.
"""

from __future__ import annotations

import itertools
import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from sqlalchemy import insert, update

from registry.app import create_app
from registry.clearing import ledger
from registry.clearing.models import (
    JournalEntry,
    JournalTransaction,
    Payment,
    PaymentSource,
    Statement,
    StatementKind,
    StatementStatus,
)
from registry.core import clock
from registry.core.actor import Actor
from registry.core.db import Database
from registry.core.http import get_db
from registry.core.sequences import NumberSequence, next_number
from registry.offers import services as offer_services
from registry.patents import services as patent_services
from tests.factories import Factory
from tests.factories import clearing as cf
from tests.factories import licences as lf
from tests.factories import offers as of

SECRET = "bench-settlement-" + "q8Wd3Rt6Yz1Kp5Nm" * 2
SEED = 20261127
CHUNK = 5_000  # payments per bulk INSERT round
PERIOD_DAYS = 91  # payments are paid on days of a period this long, ending yesterday
RUNNING = {"kind": "running", "base": "net_sales", "rate": "3.5"}
TITLE = ("40", "35", "25")
INCOMES = (
    ("45", "30", "25"),
    ("33.34", "33.33", "33.33"),
    ("50", "20", "30"),
    ("38", "37.5", "24.5"),
)
#: each co-owner's five inventors' contributions; the first co-owner's first one has 1 more,
#: so the fifteen sum to 100
CONTRIBUTIONS = ("10", "8", "6", "5", "4")
GIVEN = "张伟王芳李娜刘洋陈静杨磊赵敏黄勇周杰吴倩徐涛孙丽马超朱琳胡斌"  # fifteen names
NAMES = tuple(GIVEN[i : i + 2] for i in range(0, len(GIVEN), 2))


@dataclass
class Seeded:
    actor: Actor
    #: (licence id, licensee organisation id, receivable account id, credit account id)
    licences: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]]
    accounts: dict[str, uuid.UUID]  # cash, billed, received
    owners: dict[uuid.UUID, str] = field(default_factory=dict)  # co-owner id -> name


# --- seeding through the services ------------------------------------------------------------


def seed(url: str, instance: Path, *, patents: int, licensees: int, recorded: datetime) -> Seeded:
    """Co-owners, policies, patents, offers and licences, committed (module docstring)."""
    # create_app sets the root logger to INFO: keep WeasyPrint's progress lines out of the output
    logging.getLogger("weasyprint").setLevel(logging.WARNING)
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
            admin = of.fast_admin(factory)
            owners = [
                factory.organisation("university", name="甲大学"),
                factory.organisation("university", name="乙大学"),
                factory.organisation("institute", name="丙研究所"),
            ]
            ttos = [factory.user(o, "tto") for o in owners]
            cf.reward_policy(factory, admin, owners[0], "70", policy_reference="甲大学奖励办法")
            cf.reward_policy(factory, admin, owners[1], "50", policy_reference="乙大学奖励办法")
            # owners[2] records no policy: the statutory 50 % applies (STL Art. 45).
            offers = [
                _published(factory, admin, ttos, owners, INCOMES[k % len(INCOMES)], recorded)
                for k in range(patents)
            ]
            seeded = Seeded(
                actor=factory.actor(admin),
                licences=[],
                accounts={
                    code: ledger.account(session, ledger.fixed(code)).id
                    for code in (ledger.CASH, ledger.BILLED, ledger.RECEIVED)
                },
                owners={o.id: o.name for o in owners},
            )
            for _ in range(licensees):
                organisation, user, _ = lf.enterprise_licensee(factory)
                receivable = ledger.receivable(organisation.id, organisation.name)
                credit = ledger.licensee_credit(organisation.id, organisation.name)
                accounts = (ledger.account(session, receivable), ledger.account(session, credit))
                for offer in offers:
                    licence = lf.take_up(factory, user, offer)
                    seeded.licences.append(
                        (licence.id, organisation.id, accounts[0].id, accounts[1].id)
                    )
    finally:
        app.extensions["registry.db"].engine.dispose()
    return seeded


def _published(
    factory: Factory,
    admin: Any,
    ttos: list[Any],
    owners: list[Any],
    incomes: tuple[str, str, str],
    recorded: datetime,
) -> Any:
    """A patent of the three co-owners recorded at ``recorded`` (before the period), its
    running-royalty offer consented to by the other two and published by the first's TTO."""
    fees = date(clock.today().year + 1, 12, 31).isoformat()
    steps = (recorded + timedelta(minutes=m) for m in itertools.count())
    with mock.patch.object(patent_services, "now", side_effect=lambda: next(steps)):
        patent = factory.patent(ttos[0], annual_fees_paid_through=fees)
        entries = [
            {"organisation_id": o.id, "title_share": t, "income_share": i}
            for o, t, i in zip(owners, TITLE, incomes, strict=True)
        ]
        cf.set_owners(factory, admin, patent, entries)
        inventors = [
            (NAMES[5 * n + k], owner, str(int(share) + (n == 0 and k == 0)))
            for n, owner in enumerate(owners)
            for k, share in enumerate(CONTRIBUTIONS)
        ]
        cf.set_inventors(factory, admin, patent, inventors)
    draft = lf.draft_offer(factory, ttos[0], patent=patent, royalty=RUNNING)
    for tto in ttos[1:]:
        of.consent(factory, tto, draft)
    return offer_services.publish(
        factory.session, actor=factory.actor(ttos[0]), offer_id=draft.id, attest=True
    )


# --- bulk statements, payments and their ledger transactions ---------------------------------


def bulk_payments(database: Database, seeded: Seeded, count: int, start: date) -> int:
    """Insert ``count`` paid statements with their payments and ledger transactions, in chunks
    of executemany INSERTs; the money applied (what the run must settle)."""
    rng = random.Random(SEED)
    year = clock.today().year
    stamp = clock.now()
    cash, billed, received = (
        seeded.accounts[c] for c in (ledger.CASH, ledger.BILLED, ledger.RECEIVED)
    )
    total = 0
    with database.transaction() as session:
        first = next_number(session, "statement", year)
        session.execute(
            update(NumberSequence)
            .where(NumberSequence.name == "statement", NumberSequence.year == year)
            .values(last=first + count - 1)
        )
        for begin in range(0, count, CHUNK):
            rows: dict[str, list[dict[str, Any]]] = {"s": [], "t": [], "p": [], "e": []}
            for i in range(begin, min(count, begin + CHUNK)):
                licence_id, org_id, receivable, credit_account = seeded.licences[
                    i % len(seeded.licences)
                ]
                paid = start + timedelta(days=rng.randrange(PERIOD_DAYS))
                issued = paid - timedelta(days=rng.randrange(1, 30))
                applied = rng.randrange(10_000, 5_000_000)  # CNY 100.00 .. 49,999.99
                credit = rng.randrange(1, 100_000) if i % 25 == 0 else 0
                total += applied
                number = f"ST-{year}-{first + i:06d}"
                sid, pid, st, pt = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
                rows["s"].append(
                    {
                        "id": sid,
                        "number": number,
                        "licence_id": licence_id,
                        "licensee_organisation_id": org_id,
                        "kind": StatementKind.ROYALTY,
                        "period_start": issued - timedelta(days=90),
                        "period_end": issued - timedelta(days=1),
                        "amount_due": applied,
                        "amount_paid": applied,
                        "due_date": issued + timedelta(days=30),
                        "status": StatementStatus.PAID,
                        "breakdown": {},
                        "reminders_sent": 0,
                        "created_dt": stamp,
                        "updated_dt": stamp,
                    }
                )
                rows["p"].append(
                    {
                        "id": pid,
                        "statement_id": sid,
                        "licence_id": licence_id,
                        "payer_organisation_id": org_id,
                        "amount": applied + credit,
                        "applied": applied,
                        "credit": credit,
                        "paid_date": paid,
                        "reference": f"BANK-{i:08d}",
                        "source": PaymentSource.BANK,
                        "created_dt": stamp,
                    }
                )
                for tid, kind, subject, day, text_ in (
                    (st, "statement", sid, issued, f"{number} royalty / 开具账单"),
                    (pt, "payment", pid, paid, f"Payment for {number} / 收款"),
                ):
                    rows["t"].append(
                        {
                            "id": tid,
                            "kind": kind,
                            "subject_type": kind,
                            "subject_id": subject,
                            "description": text_,
                            "effective_date": day,
                            "created_dt": stamp,
                        }
                    )
                entries = [
                    (st, receivable, applied),  # statement issued: Dr receivable, Cr billed
                    (st, billed, -applied),
                    (pt, cash, applied + credit),  # payment: Dr cash, Cr receivable, credit
                    (pt, receivable, -applied),
                    (pt, credit_account, -credit),
                    (pt, billed, applied),  # and Dr billed, Cr received
                    (pt, received, -applied),
                ]
                rows["e"] += [
                    {"id": uuid.uuid4(), "transaction_id": t, "account_id": a, "amount": amount}
                    for t, a, amount in entries
                    if amount
                ]
            for model, key in (
                (Statement, "s"),
                (JournalTransaction, "t"),
                (Payment, "p"),
                (JournalEntry, "e"),
            ):
                session.execute(insert(model), rows[key])
    return total
