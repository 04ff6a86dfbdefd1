"""Valid requests for the clearing routes of the access matrix (tests/api/test_access_matrix.py).

Each builder makes, through the services, the object a route names for the call's
organisation: a priced licence on one of its patents (or held by its enterprise), its statement,
a payment, a settlement run that pays it. ``call`` is the matrix's ``Call``.
"""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from typing import Any

from registry.accounts.models import Organisation
from registry.clearing import payments, settlement
from registry.clearing.models import Statement
from registry.core import clock
from registry.licences.models import Licence
from registry.patents.models import Patent
from tests.factories import clearing as cf
from tests.factories import licences as licence_factories

LUMP_SUM = {"kind": "lump_sum", "amount": "1000.00"}
RUNNING = {"kind": "running", "base": "net_sales", "rate": "3", "reporting_period": "quarterly"}


def priced_licence(call: Any, royalty: dict[str, Any] = LUMP_SUM, days: int = 0) -> Licence:
    """A licence on a new patent of the call's organisation (university A or B), held by
    another enterprise; for the enterprise itself, its licence on university A's patent."""
    world = call.world
    factory = call.factory
    if call.organisation.id == world.enterprise.id:
        tto, holder = world.tto, world.licensee.user
    else:
        tto = world.tto if call.organisation.id == world.university.id else world.other_tto
        _, holder, _ = licence_factories.enterprise_licensee(factory)
    offer = licence_factories.published_offer(factory, tto.user, royalty=royalty)
    patent = factory.session.get_one(Patent, offer.patent_id)
    owner = factory.session.get_one(Organisation, tto.user.organisation_id)
    # A university's part goes half to its inventors (STL Art. 45): settling needs one.
    cf.set_inventors(factory, world.admin.user, patent, [("张三", owner, "100")])
    licence = licence_factories.take_up(factory, holder, offer)
    if days:
        licence.effective_date -= timedelta(days=days)
        licence.end_date -= timedelta(days=days)
        factory.session.flush()
    return licence


def statement_id(call: Any) -> uuid.UUID:
    licence = priced_licence(call)
    found = call.factory.session.query(Statement).filter_by(licence_id=licence.id).first()
    assert found is not None
    return found.id


def payment_id(call: Any) -> uuid.UUID:
    factory = call.factory
    paid = payments.record_payment(
        factory.session,
        actor=factory.actor(call.world.admin.user),
        statement_id=statement_id(call),
        amount=100_000,
        paid_date=clock.today(),
        reference="matrix",
    )
    return paid.id


def run_id(call: Any) -> uuid.UUID:
    payment_id(call)
    factory = call.factory
    run = settlement.run_settlement(
        factory.session,
        actor=factory.actor(call.world.admin.user),
        period_start=clock.today(),
        period_end=clock.today(),
        fee_rate=0,
        minimum_payout=0,
    )
    return run.id


def payee_path(call: Any, suffix: str = "") -> str:
    return f"/api/v1/settlements/{run_id(call)}/payees/organisation/{call.organisation.id}{suffix}"


def report_request(call: Any) -> dict[str, Any]:
    licence = priced_licence(call, RUNNING, days=200)
    start = licence.effective_date
    from registry.clearing.schedule import build_schedule

    schedule = build_schedule(
        licence.terms, effective_date=start, end_date=licence.end_date, is_sme=False
    )
    period = next(p for p in schedule.periods if p.period_end < clock.today())
    return {
        "url": f"/api/v1/licences/{licence.id}/reports",
        "json": {
            "period_start": period.period_start.isoformat(),
            "period_end": period.period_end.isoformat(),
            "net_sales": "1000.00",
        },
    }


def licensee_id(call: Any) -> uuid.UUID:
    """The enterprise for its own users; another enterprise otherwise."""
    if call.scope == "own" and call.organisation.id == call.world.enterprise.id:
        return uuid.UUID(str(call.world.enterprise.id))
    return priced_licence(call).licensee_organisation_id


def bank_file(reference: str) -> dict[str, Any]:
    csv = f"date,amount,reference,counterparty\n{clock.today()},12.00,{reference},某公司\n"
    return {"data": {"file": (io.BytesIO(csv.encode()), "bank.csv")}}


def suspense_match(call: Any) -> tuple[str, dict[str, Any]]:
    """A suspense line (an unknown reference), imported by an admin, and a statement to match
    it to."""
    target = statement_id(call)
    admin = call.api.as_(call.world.admin.token)
    imported = admin.post("/bank-statements", **bank_file(f"unknown {uuid.uuid4().hex[:8]}"))
    assert imported.status_code == 200, imported.json
    lines = admin.get("/bank-lines?status=suspense").json
    return f"/api/v1/bank-lines/{lines[0]['id']}/match", {"json": {"statement_id": str(target)}}
