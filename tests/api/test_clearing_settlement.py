"""Settlement runs and payee statements over HTTP (issue 5 §5–6).

The worked example of the issue, through the API: one patent of three co-owners whose income
shares differ from their title shares, five inventors, a university with a 70 % reward policy,
an institute under the statutory 50 % (STL Art. 45) and an enterprise without a policy (it
keeps its whole part, Patent Law Art. 15), with the arithmetic done by hand below. Then: every
payee statement traces back to its payments; payee lines plus fees equal the money settled to
the fen; the trial balance is balanced; a rerun settles nothing; reversal and settling again;
minimum payout carry-forward; shares in force on the payment date; held payments; who sees
what; bad input refused with nothing changed; the ``flask settle`` command.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation, User
from registry.clearing.models import Payment, SettledPayment
from registry.core import clock
from registry.patents import services as patent_services
from registry.patents.models import Inventor
from tests.conftest import Api
from tests.factories import Factory
from tests.factories import clearing as cf

TODAY = clock.today()
KEY = "settle-2f6c1e0a-4b7d-4e8a-9c3f-5d1b2a7e9f10"


@dataclass
class Cast:
    factory: Factory
    session: Session
    app: Flask
    deal: cf.Licensed
    admin: Api
    auditor: Api
    u1_tto: Api  # the university (70 % policy)
    i2_tto: Api  # the institute (no policy: statutory 50 %)
    e3_tto: Api  # the enterprise (no policy)
    other_tto: Api  # a university with no part in the patent
    licensee: Api
    anonymous: Api
    u1: Organisation
    i2: Organisation
    e3: Organisation
    other: Organisation
    inventors: dict[str, uuid.UUID]

    def settle(self, start: date | None = None, end: date | None = None, **kwargs: Any) -> Any:
        body = {
            "period_start": (start or TODAY - timedelta(days=60)).isoformat(),
            "period_end": (end or TODAY).isoformat(),
        }
        return self.admin.post("/settlements", json=body, **kwargs)

    def pay(
        self, amount: int, *, paid_date: date | None = None, reference: str | None = None
    ) -> Payment:
        issued = cf.statement(self.factory, self.deal.licence, amount)
        return cf.pay(
            self.factory, self.deal.admin, issued, amount, paid_date=paid_date, reference=reference
        )

    def configure(self, monkeypatch: pytest.MonkeyPatch, **settings: int) -> None:
        current = self.app.config["REGISTRY_SETTINGS"]
        monkeypatch.setitem(
            self.app.config, "REGISTRY_SETTINGS", dataclasses.replace(current, **settings)
        )


def _token_api(factory: Factory, api: Api, user: User) -> Api:
    return api.as_(factory.token(user))


@pytest.fixture
def cast(factory: Factory, session: Session, api: Api, app: Flask) -> Cast:
    deal = cf.licensed_patent(factory, "university")
    u1 = deal.owner
    i2 = factory.organisation("institute", name="丙研究所")
    e3 = factory.organisation("enterprise", name="丁科技有限公司")
    other = factory.organisation("university", name="戊大学")
    audit_body = factory.organisation("audit_body", name="己审计事务所")
    admin = _token_api(factory, api, deal.admin)
    # Title 50/30/20, income 40/35/25: income shares differ from title shares (law.md A5).
    owners = [
        {"organisation_id": str(u1.id), "title_share": "50", "income_share": "40"},
        {"organisation_id": str(i2.id), "title_share": "30", "income_share": "35"},
        {"organisation_id": str(e3.id), "title_share": "20", "income_share": "25"},
    ]
    assert (
        admin.put(f"/patents/{deal.patent.id}/owners", json={"owners": owners}).status_code == 200
    )
    inventors = [
        {"name": "张三", "organisation_id": str(u1.id), "share": "30"},
        {"name": "李四", "organisation_id": str(u1.id), "share": "20"},
        {"name": "王五", "organisation_id": str(i2.id), "share": "25"},
        {"name": "赵六", "organisation_id": str(i2.id), "share": "15"},
        {"name": "钱七", "organisation_id": str(e3.id), "share": "10"},
    ]
    response = admin.put(f"/patents/{deal.patent.id}/inventors", json={"inventors": inventors})
    assert response.status_code == 200
    u1_tto = _token_api(factory, api, deal.tto)
    policy = {"inventor_share": "70", "policy_reference": "甲大学科技成果转化奖励办法（2024）"}
    assert u1_tto.put(f"/organisations/{u1.id}/reward-policy", json=policy).status_code == 200
    session.expire_all()
    rows = session.scalars(
        select(Inventor).where(
            Inventor.patent_id == deal.patent.id, Inventor.superseded_dt.is_(None)
        )
    )
    return Cast(
        factory=factory,
        session=session,
        app=app,
        deal=deal,
        admin=admin,
        auditor=_token_api(factory, api, factory.user(audit_body, "auditor")),
        u1_tto=u1_tto,
        i2_tto=_token_api(factory, api, factory.user(i2, "tto")),
        e3_tto=_token_api(factory, api, factory.user(e3, "tto")),
        other_tto=_token_api(factory, api, factory.user(other, "tto")),
        licensee=_token_api(factory, api, deal.licensee_user),
        anonymous=api,
        u1=u1,
        i2=i2,
        e3=e3,
        other=other,
        inventors={row.name: row.id for row in rows},
    )


def fen(text: str) -> int:
    return int(Decimal(text) * 100)


def by_payee(lines: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Lines summed per (payee name, role)."""
    out: dict[tuple[str, str], int] = {}
    for line in lines:
        key = (line["payee_name"], line["role"])
        out[key] = out.get(key, 0) + fen(line["amount"])
    return out


def assert_balanced(cast: Cast) -> dict[str, Any]:
    body = cast.admin.get("/ledger/trial-balance").get_json()
    assert body["balanced"] is True, body
    assert body["total_debits"] == body["total_credits"]
    return body


# The worked example ---------------------------------------------------------------------------


def test_worked_example_three_co_owners_five_inventors(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    cast.configure(monkeypatch, settlement_fee_rate=250)  # a 2.50 % platform fee
    payment = cast.pay(1_000_001)  # CNY 10,000.01, received in full today

    response = cast.settle(headers={"Idempotency-Key": KEY})

    assert response.status_code == 201, response.get_json()
    run = response.get_json()
    assert run["number"].startswith(f"SR-{TODAY.year}-")
    assert run["fee_rate"] == "2.50"
    # Fee: 1,000,001 × 2.5 % = 25,000.025 fen, rounded DOWN to 25,000 (never above the rate).
    # Income holders share 1,000,001 − 25,000 = 975,001 fen by income share 40/35/25:
    #   exact 390,000.4 / 341,250.35 / 243,750.25 → floors 390,000 + 341,250 + 243,750 =
    #   975,000; the 1 fen left goes to the largest remainder (.4): university 390,001.
    # University (policy 70 %): pool = ⌈390,001 × 70 %⌉ = ⌈273,000.7⌉ = 273,001 (rounded UP:
    #   Art. 45 is a floor); institution keeps 390,001 − 273,001 = 117,000. Its inventors by
    #   contribution 30 : 20 → 163,800.6 / 109,200.4 → 163,800 + 109,200, +1 fen to .6:
    #   张三 163,801, 李四 109,200.
    # Institute (no policy: STL Art. 45, 50 %): pool = ⌈341,250 × 50 %⌉ = 170,625, institution
    #   170,625. Inventors 25 : 15 → 106,640.625 / 63,984.375 → +1 fen to .625:
    #   王五 106,641, 赵六 63,984.
    # Enterprise (no policy): keeps its whole 243,750; its inventor 钱七 is rewarded by his
    #   employer, not by the clearing house.
    u1, i2, e3 = cast.u1.name, cast.i2.name, cast.e3.name
    assert by_payee(run["lines"]) == {
        ("clearing house", "fee"): 25_000,
        (u1, "institution"): 117_000,
        ("张三", "inventor_reward"): 163_801,
        ("李四", "inventor_reward"): 109_200,
        (i2, "institution"): 170_625,
        ("王五", "inventor_reward"): 106_641,
        ("赵六", "inventor_reward"): 63_984,
        (e3, "owner_income"): 243_750,
    }
    # 25,000 + 117,000 + 163,801 + 109,200 + 170,625 + 106,641 + 63,984 + 243,750 = 1,000,001
    assert sum(fen(line["amount"]) for line in run["lines"]) == 1_000_001
    assert (run["total_received"], run["total_fees"], run["total_distributed"]) == (
        "10000.01",
        "250.00",
        "9750.01",
    )
    assert {line["payment_id"] for line in run["lines"]} == {str(payment.id)}
    owners_of = {line["payee_name"]: line["owner_organisation_id"] for line in run["lines"]}
    assert owners_of["张三"] == str(cast.u1.id)
    assert owners_of["王五"] == str(cast.i2.id)
    # Minimum payout 0: everybody is paid now, nothing is carried.
    assert sum(fen(p["paid"]) for p in run["payouts"]) == 975_001
    assert all(p["carried_out"] == "0.00" for p in run["payouts"])

    ledger = assert_balanced(cast)
    balances = {a["code"]: fen(a["balance"]) for a in ledger["accounts"]}
    assert balances["royalties:received"] == 0  # everything received is settled
    assert balances["income:fees"] == -25_000
    assert balances["cash"] == 25_000  # received 1,000,001, paid out 975,001
    assert cast.admin.get(f"/settlements/{run['id']}").get_json() == run


def test_payee_statements_trace_back_to_payments(cast: Cast) -> None:
    first = cast.pay(300_000, paid_date=TODAY - timedelta(days=3), reference="BANK-0001")
    second = cast.pay(77_777, reference="BANK-0002")
    run = cast.settle().get_json()
    payments = {str(p.id): p for p in (first, second)}

    payees = {(line["payee_type"], line["payee_id"]) for line in run["lines"]}
    payees.discard(("platform", None))
    total = 0
    for payee_type, payee_id in sorted(payees):
        response = cast.auditor.get(f"/settlements/{run['id']}/payees/{payee_type}/{payee_id}.csv")
        assert response.status_code == 200
        assert response.mimetype == "text/csv"
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        assert rows
        for row in rows:
            paid = payments[row["payment_id"]]
            assert row["payment_date"] == paid.paid_date.isoformat()
            assert row["payment_reference"] == paid.reference
            assert row["statement_number"] == paid.statement.number
            assert row["licence_reference"] == cast.deal.licence.reference
            assert row["run_number"] == run["number"]
            total += fen(row["amount"])
    fees = sum(fen(line["amount"]) for line in run["lines"] if line["role"] == "fee")
    assert total + fees == 377_777 == fen(run["total_received"])

    statements = cast.u1_tto.get(f"/payees/organisation/{cast.u1.id}/statements").get_json()
    [entry] = statements
    u1_total = sum(
        fen(line["amount"])
        for line in run["lines"]
        if line["payee_type"] == "organisation" and line["payee_id"] == str(cast.u1.id)
    )
    assert (entry["number"], fen(entry["amount"])) == (run["number"], u1_total)
    assert fen(entry["payout"]["paid"]) == u1_total

    pdf = cast.u1_tto.get(f"/settlements/{run['id']}/payees/inventor/{cast.inventors['张三']}.pdf")
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")


def test_rerun_settles_nothing_and_a_key_replays(cast: Cast) -> None:
    cast.pay(50_000)
    first = cast.settle(headers={"Idempotency-Key": KEY})
    assert first.status_code == 201
    before = cf.counts(cast.session)

    again = cast.settle()
    assert again.status_code == 409
    assert again.get_json()["code"] == "nothing_to_settle"
    replay = cast.settle(headers={"Idempotency-Key": KEY})
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.get_json() == first.get_json()
    reused = cast.settle(start=TODAY - timedelta(days=10), headers={"Idempotency-Key": KEY})
    assert reused.status_code == 422
    assert reused.get_json()["code"] == "idempotency_key_reused"
    assert cf.counts(cast.session) == before

    late = cast.pay(12_345)  # arrives after the run: the next run settles it, and only it
    third = cast.settle()
    assert third.status_code == 201
    assert {line["payment_id"] for line in third.get_json()["lines"]} == {str(late.id)}
    assert third.get_json()["total_received"] == "123.45"
    assert_balanced(cast)


def test_reversal_then_settling_again(cast: Cast) -> None:
    cast.pay(250_003)
    original = cast.settle().get_json()

    response = cast.admin.post(f"/settlements/{original['id']}/reverse")
    assert response.status_code == 201, response.get_json()
    reversal = response.get_json()
    assert reversal["reverses_id"] == original["id"]
    assert reversal["total_received"] == "-2500.03"
    assert by_payee(reversal["lines"]) == {k: -v for k, v in by_payee(original["lines"]).items()}
    shown = cast.admin.get(f"/settlements/{original['id']}").get_json()
    assert (shown["status"], shown["reversed_by_id"]) == ("reversed", reversal["id"])
    assert_balanced(cast)
    # Payouts are not undone: each payee, paid in full before, now carries a debt of it.
    for payout in reversal["payouts"]:
        assert (payout["carried_in"], payout["paid"]) == ("0.00", "0.00")
        assert payout["carried_out"] == payout["new"]
        assert fen(payout["new"]) < 0
    before = cf.counts(cast.session)
    for run_id in (original["id"], reversal["id"]):
        refused = cast.admin.post(f"/settlements/{run_id}/reverse")
        assert refused.status_code == 409
        assert refused.get_json()["code"] == "not_reversible"
    assert cf.counts(cast.session) == before

    again = cast.settle()
    assert again.status_code == 201
    resettled = again.get_json()
    assert by_payee(resettled["lines"]) == by_payee(original["lines"])
    # The re-settled income pays off the debts: nothing is paid twice.
    assert all(p["paid"] == "0.00" and p["carried_out"] == "0.00" for p in resettled["payouts"])
    ledger = assert_balanced(cast)
    payables = [a for a in ledger["accounts"] if a["code"].startswith("payable:")]
    assert payables
    assert all(a["balance"] == "0.00" for a in payables)
    assert cf.counts(cast.session)["live_settled"] == 1


def test_minimum_payout_carries_small_balances_forward(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    cast.configure(monkeypatch, minimum_payout=100_000)  # CNY 1,000.00
    cast.pay(400_000)
    first = cast.settle().get_json()
    # 400,000 by 40/35/25: university 160,000 (70 %: 112,000 to 张三/李四 67,200/44,800,
    # institution 48,000), institute 140,000 (70,000: 王五/赵六 43,750/26,250; 70,000),
    # enterprise 100,000. Only the enterprise's 100,000 reaches the minimum.
    paid = {p["payee_name"]: (fen(p["paid"]), fen(p["carried_out"])) for p in first["payouts"]}
    assert paid == {
        cast.u1.name: (0, 48_000),
        "张三": (0, 67_200),
        "李四": (0, 44_800),
        cast.i2.name: (0, 70_000),
        "王五": (0, 43_750),
        "赵六": (0, 26_250),
        cast.e3.name: (100_000, 0),
    }
    ledger = assert_balanced(cast)
    carried = {a["code"]: -fen(a["balance"]) for a in ledger["accounts"]}
    assert carried[f"payable:inventor:{cast.inventors['张三']}"] == 67_200

    cast.pay(200_000)
    second = cast.settle().get_json()
    # 张三: 67,200 carried + 33,600 new = 100,800 ≥ 100,000: paid. 李四 44,800 + 22,400 =
    # 67,200: still carried.
    outcome = {p["payee_name"]: p for p in second["payouts"]}
    assert (fen(outcome["张三"]["carried_in"]), fen(outcome["张三"]["paid"])) == (67_200, 100_800)
    assert (fen(outcome["李四"]["paid"]), fen(outcome["李四"]["carried_out"])) == (0, 67_200)
    for p in second["payouts"]:
        assert fen(p["paid"]) + fen(p["carried_out"]) == fen(p["carried_in"]) + fen(p["new"])
    assert_balanced(cast)


# Which record applies -------------------------------------------------------------------------


def test_shares_in_force_on_the_payment_date(
    factory: Factory, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    def at(days_ago: int) -> datetime:
        return datetime.combine(TODAY - timedelta(days=days_ago), time(12), UTC)

    monkeypatch.setattr(patent_services, "now", lambda: at(40))
    deal = cf.licensed_patent(factory, "enterprise")  # recorded 40 days ago: sole owner
    partner = factory.organisation("enterprise")
    monkeypatch.setattr(patent_services, "now", lambda: at(20))
    half = [
        {"organisation_id": deal.owner.id, "title_share": "50", "income_share": "50"},
        {"organisation_id": partner.id, "title_share": "50", "income_share": "50"},
    ]
    cf.set_owners(factory, deal.admin, deal.patent, half)
    monkeypatch.setattr(patent_services, "now", lambda: at(10))
    mostly_partner = [{**half[0], "income_share": "10"}, {**half[1], "income_share": "90"}]
    cf.set_owners(factory, deal.admin, deal.patent, mostly_partner)
    monkeypatch.undo()
    payments = {}
    for days_ago in (30, 15, 5):
        issued = cf.statement(factory, deal.licence, 10_000)
        paid_date = TODAY - timedelta(days=days_ago)
        payments[days_ago] = cf.pay(factory, deal.admin, issued, 10_000, paid_date=paid_date)

    admin = api.as_(factory.token(deal.admin))
    body = {
        "period_start": (TODAY - timedelta(days=60)).isoformat(),
        "period_end": TODAY.isoformat(),
    }
    run = admin.post("/settlements", json=body).get_json()

    def shares(days_ago: int) -> dict[str, int]:
        pid = str(payments[days_ago].id)
        return {
            line["payee_id"]: fen(line["amount"])
            for line in run["lines"]
            if line["payment_id"] == pid
        }

    owner, other = str(deal.owner.id), str(partner.id)
    assert shares(30) == {owner: 10_000}  # the first record: sole owner
    assert shares(15) == {owner: 5_000, other: 5_000}
    assert shares(5) == {owner: 1_000, other: 9_000}


def test_income_right_that_ended_returns_to_the_owners(
    factory: Factory, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Recorded ten days ago, so yesterday's payment falls under this record.
    stamp = datetime.combine(TODAY - timedelta(days=10), time(12), UTC)
    monkeypatch.setattr(patent_services, "now", lambda: stamp)
    deal = cf.licensed_patent(factory, "enterprise")
    partner = factory.organisation("enterprise")
    owners = [
        {"organisation_id": deal.owner.id, "title_share": "60", "income_share": "60"},
        {"organisation_id": partner.id, "title_share": "40", "income_share": "30"},
    ]
    team = {
        "name": "课题组（收益权让渡）",
        "basis": "income_right_transfer",
        "income_share": "10",
        "valid_from": (TODAY - timedelta(days=100)).isoformat(),
        "valid_to": (TODAY - timedelta(days=1)).isoformat(),
    }
    cf.set_owners(factory, deal.admin, deal.patent, owners, [team])
    monkeypatch.undo()
    issued = cf.statement(factory, deal.licence, 20_001)
    before = cf.pay(factory, deal.admin, issued, 10_001, paid_date=TODAY - timedelta(days=1))
    after = cf.pay(factory, deal.admin, issued, 10_000)
    admin = api.as_(factory.token(deal.admin))
    body = {
        "period_start": (TODAY - timedelta(days=5)).isoformat(),
        "period_end": TODAY.isoformat(),
    }
    run = admin.post("/settlements", json=body).get_json()

    def split(payment: Payment) -> dict[tuple[str, str], int]:
        return {
            (line["payee_type"], line["payee_name"]): fen(line["amount"])
            for line in run["lines"]
            if line["payment_id"] == str(payment.id)
        }

    # Yesterday the team held 10 %: 10,001 by 60/30/10 = 6,000.6 / 3,000.3 / 1,000.1 → +1 fen
    # to .6. Today its right has ended: its 10 % returns to the owners 60 : 30 → 66.67/33.33.
    assert split(before) == {
        ("organisation", deal.owner.name): 6_001,
        ("organisation", partner.name): 3_000,
        ("beneficiary", "课题组（收益权让渡）"): 1_000,
    }
    assert split(after) == {
        ("organisation", deal.owner.name): 6_667,
        ("organisation", partner.name): 3_333,
    }


def test_a_payment_its_records_cannot_split_is_held(cast: Cast, factory: Factory) -> None:
    # A university whose only inventors work elsewhere: whose reward would its pool be? Held.
    deal = cf.licensed_patent(factory, "university")
    stranger = factory.organisation("enterprise")
    cf.set_inventors(factory, deal.admin, deal.patent, [("孙八", stranger, "100")])
    issued = cf.statement(factory, deal.licence, 5_000)
    stuck = cf.pay(factory, deal.admin, issued, 5_000)
    before = cf.counts(cast.session)
    refused = cast.settle()
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["code"] == "nothing_to_settle"
    assert body["errors"][0]["field"] == f"payments.{stuck.id}"
    assert "record the inventors' organisation" in body["errors"][0]["messages"][0]
    assert cf.counts(cast.session) == before

    cast.pay(1_000)
    run = cast.settle().get_json()
    assert [h["payment_id"] for h in run["held"]] == [str(stuck.id)]
    assert str(stuck.id) not in {line["payment_id"] for line in run["lines"]}
    assert (
        cast.session.scalar(select(SettledPayment).where(SettledPayment.payment_id == stuck.id))
        is None
    )


# Who sees what --------------------------------------------------------------------------------


def test_visibility_of_runs_lines_and_payee_statements(cast: Cast) -> None:
    cast.pay(100_000)
    run = cast.settle().get_json()
    run_id = run["id"]

    assert [r["id"] for r in cast.auditor.get("/settlements").get_json()] == [run_id]
    assert cast.auditor.get(f"/settlements/{run_id}").get_json() == run
    assert [r["id"] for r in cast.u1_tto.get("/settlements").get_json()] == [run_id]
    assert cast.other_tto.get("/settlements").get_json() == []
    assert cast.other_tto.get(f"/settlements/{run_id}").status_code == 404
    assert cast.licensee.get("/settlements").status_code == 403
    assert cast.licensee.get(f"/settlements/{run_id}").status_code == 403
    assert cast.anonymous.get(f"/settlements/{run_id}").status_code == 401

    seen = cast.u1_tto.get(f"/settlements/{run_id}").get_json()
    assert {line["payee_name"] for line in seen["lines"]} == {cast.u1.name, "张三", "李四"}
    assert seen["total_received"] is None
    assert seen["held"] == []
    assert {p["payee_name"] for p in seen["payouts"]} == {cast.u1.name, "张三", "李四"}
    seen = cast.e3_tto.get(f"/settlements/{run_id}").get_json()
    assert {line["payee_name"] for line in seen["lines"]} == {cast.e3.name}  # not 钱七

    zhang = f"/settlements/{run_id}/payees/inventor/{cast.inventors['张三']}"
    u1 = f"/settlements/{run_id}/payees/organisation/{cast.u1.id}"
    for path in (zhang, u1):
        for suffix in ("", ".csv"):
            assert cast.u1_tto.get(path + suffix).status_code == 200
            assert cast.admin.get(path + suffix).status_code == 200
            assert cast.auditor.get(path + suffix).status_code == 200
            assert cast.i2_tto.get(path + suffix).status_code == 404
            assert cast.other_tto.get(path + suffix).status_code == 404
            assert cast.licensee.get(path + suffix).status_code == 403
            assert cast.anonymous.get(path + suffix).status_code == 401
    listing = f"/payees/organisation/{cast.u1.id}/statements"
    assert cast.other_tto.get(listing).status_code == 404
    assert cast.licensee.get(listing).status_code == 403
    assert cast.other_tto.get(f"/payees/organisation/{cast.other.id}/statements").get_json() == []
    inventor_listing = f"/payees/inventor/{cast.inventors['王五']}/statements"
    assert len(cast.i2_tto.get(inventor_listing).get_json()) == 1
    assert cast.u1_tto.get(inventor_listing).status_code == 404
    assert cast.admin.get(f"/payees/robot/{cast.u1.id}/statements").status_code == 404


# Bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "body", "status", "field"),
    [
        (
            "admin",
            {
                "period_start": TODAY.isoformat(),
                "period_end": (TODAY + timedelta(days=1)).isoformat(),
            },
            422,
            "period_end",
        ),
        (
            "admin",
            {
                "period_start": TODAY.isoformat(),
                "period_end": (TODAY - timedelta(days=1)).isoformat(),
            },
            422,
            "period_end",
        ),
        ("admin", {"period_start": TODAY.isoformat()}, 422, "period_end"),
        (
            "admin",
            {"period_start": TODAY.isoformat(), "period_end": "2026-02-30"},
            422,
            "period_end",
        ),
        (
            "admin",
            {"period_start": "2026-01-01", "period_end": TODAY.isoformat(), "fee": "0"},
            422,
            "fee",
        ),
        ("u1_tto", {"period_start": "2026-01-01", "period_end": TODAY.isoformat()}, 403, None),
        ("auditor", {"period_start": "2026-01-01", "period_end": TODAY.isoformat()}, 403, None),
        ("licensee", {"period_start": "2026-01-01", "period_end": TODAY.isoformat()}, 403, None),
        ("anonymous", {"period_start": "2026-01-01", "period_end": TODAY.isoformat()}, 401, None),
    ],
)
def test_bad_settlement_requests_change_nothing(
    cast: Cast, who: str, body: dict[str, Any], status: int, field: str | None
) -> None:
    cast.pay(10_000)
    before = cf.counts(cast.session)
    response = getattr(cast, who).post("/settlements", json=body)
    assert response.status_code == status, response.get_json()
    if field:
        assert field in {e["field"] for e in response.get_json()["errors"]}
    assert cf.counts(cast.session) == before


def test_bad_reversals_change_nothing(cast: Cast) -> None:
    cast.pay(10_000)
    run = cast.settle().get_json()
    before = cf.counts(cast.session)
    assert cast.admin.post(f"/settlements/{uuid.uuid4()}/reverse").status_code == 404
    for who, status in (("u1_tto", 403), ("auditor", 403), ("licensee", 403), ("anonymous", 401)):
        assert getattr(cast, who).post(f"/settlements/{run['id']}/reverse").status_code == status
    assert cf.counts(cast.session) == before


# The command ----------------------------------------------------------------------------------


def _previous_quarter(day: date) -> tuple[str, date, date]:
    quarter = (day.month - 1) // 3  # 0-based current quarter
    year = day.year if quarter else day.year - 1
    number = quarter if quarter else 4
    start = date(year, 3 * (number - 1) + 1, 1)
    end = date(year + (number == 4), (3 * number) % 12 + 1, 1) - timedelta(days=1)
    return f"{year}-Q{number}", start, end


def test_settle_command(cast: Cast) -> None:
    name, start, _end = _previous_quarter(TODAY)
    inside = cast.pay(40_000, paid_date=start + timedelta(days=10))
    cast.pay(20_000)  # today: outside the quarter
    runner = cast.app.test_cli_runner()

    result = runner.invoke(args=["settle", "--period", name])
    assert result.exit_code == 0, result.output
    assert "1 payments" in result.output
    assert "received 400.00" in result.output
    again = runner.invoke(args=["settle", "--period", name])
    assert again.exit_code == 0
    assert "nothing to settle" in again.output
    cast.session.expire_all()
    settled = cast.session.scalars(select(SettledPayment.payment_id)).all()
    assert settled == [inside.id]

    today = runner.invoke(args=["settle", "--from", TODAY.isoformat(), "--to", TODAY.isoformat()])
    assert today.exit_code == 0
    assert "received 200.00" in today.output
    future = runner.invoke(
        args=["settle", "--from", TODAY.isoformat(), "--to", f"{TODAY.year + 1}-01-01"]
    )
    assert future.exit_code == 1
    assert "has not ended" in future.output
    assert runner.invoke(args=["settle", "--period", "2026-Q5"]).exit_code == 2
    assert runner.invoke(args=["settle"]).exit_code == 2
    assert_balanced(cast)
