"""Licences after the take-up (issue 3, item 9): who sees which, termination by the licensee,
CNIPA recordation by either party, the recordation-due list and expiry by command.

Refused writes are checked to have changed nothing (``lf.counts`` and the licence itself).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation, User
from registry.audit.models import AuditEvent
from registry.core import clock
from registry.core.clock import today
from registry.licences.models import Licence, LicenceStatus
from registry.offers.lifecycle import add_months
from registry.offers.models import Offer
from tests.conftest import Api, TransactionalDatabase
from tests.factories import Factory
from tests.factories import licences as lf


@dataclass
class Cast:
    factory: Factory
    session: Session
    api: Api
    tto: User  # university A, owns the offered patents
    tto_api: Api
    other_tto_api: Api  # university B, owns none of them
    sme: Organisation
    sme_user: User
    sme_api: Api
    sme2_user: User
    sme2_api: Api
    auditor_api: Api
    admin_api: Api

    def offer(self, **kwargs: Any) -> Offer:
        return lf.published_offer(self.factory, self.tto, **kwargs)

    def licence(self, user: User | None = None, offer: Offer | None = None) -> Licence:
        return lf.take_up(self.factory, user or self.sme_user, offer or self.offer())


def _client(api: Api, factory: Factory, user: User) -> Api:
    return api.as_(factory.token(user))


@pytest.fixture
def cast(factory: Factory, session: Session, api: Api) -> Cast:
    university = factory.organisation("university", name="甲大学")
    other = factory.organisation("university", name="乙大学")
    sme, sme_user, sme_token = lf.enterprise_licensee(factory, name="丙科技有限公司")
    _, sme2_user, sme2_token = lf.enterprise_licensee(factory, name="丁新材料有限公司")
    tto = factory.user(university, "tto")
    auditor = factory.user(factory.organisation("audit_body"), "auditor")
    admin = factory.user(factory.organisation("clearing_house"), "admin")
    return Cast(
        factory=factory,
        session=session,
        api=api,
        tto=tto,
        tto_api=_client(api, factory, tto),
        other_tto_api=_client(api, factory, factory.user(other, "tto")),
        sme=sme,
        sme_user=sme_user,
        sme_api=api.as_(sme_token),
        sme2_user=sme2_user,
        sme2_api=api.as_(sme2_token),
        auditor_api=_client(api, factory, auditor),
        admin_api=_client(api, factory, admin),
    )


def _ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.json
    return {item["id"] for item in response.json}


def _events(session: Session, action: str) -> list[AuditEvent]:
    lf.reread(session)
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _fresh(session: Session, licence: Licence) -> Licence:
    lf.reread(session)
    return session.get_one(Licence, licence.id)


# --- reading -------------------------------------------------------------------------------------


def test_each_party_lists_only_its_licences(cast: Cast) -> None:
    offer = cast.offer()
    mine = cast.licence(cast.sme_user, offer)
    theirs = cast.licence(cast.sme2_user, offer)
    # A licence on university B's patent, which university A's TTO must not see.
    other_tto_user = cast.factory.user(cast.factory.organisation("university"), "tto")
    elsewhere = cast.licence(cast.sme_user, lf.published_offer(cast.factory, other_tto_user))
    everything = {str(mine.id), str(theirs.id), str(elsewhere.id)}

    assert _ids(cast.sme_api.get("/licences")) == {str(mine.id), str(elsewhere.id)}
    assert _ids(cast.sme2_api.get("/licences")) == {str(theirs.id)}
    assert _ids(cast.tto_api.get("/licences")) == {str(mine.id), str(theirs.id)}
    assert _ids(cast.other_tto_api.get("/licences")) == set()
    for reader in (cast.auditor_api, cast.admin_api):
        assert everything <= _ids(reader.get("/licences", query_string={"page_size": 100}))


def test_licences_filter_by_offer_patent_and_status(cast: Cast) -> None:
    first, second = cast.offer(), cast.offer()
    a = cast.licence(cast.sme_user, first)
    b = cast.licence(cast.sme2_user, first)
    c = cast.licence(cast.sme_user, second)
    cast.sme_api.post(f"/licences/{a.id}/terminate", json={"reason": "停产"})
    tto = cast.tto_api
    assert _ids(tto.get("/licences", query_string={"offer_id": str(first.id)})) == {
        str(a.id),
        str(b.id),
    }
    assert _ids(tto.get("/licences", query_string={"patent_id": str(second.patent_id)})) == {
        str(c.id)
    }
    assert _ids(tto.get("/licences", query_string={"status": "terminated"})) == {str(a.id)}
    assert _ids(tto.get("/licences", query_string={"status": "active"})) == {str(b.id), str(c.id)}
    bad = tto.get("/licences", query_string={"status": "cancelled", "offer_id": "x"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json["errors"]} == {"status", "offer_id"}


def test_the_list_is_paged_newest_first(cast: Cast) -> None:
    licences = [cast.licence(cast.sme_user) for _ in range(3)]
    response = cast.sme_api.get("/licences", query_string={"page_size": 2})
    assert response.status_code == 200
    assert [item["id"] for item in response.json] == [str(licences[2].id), str(licences[1].id)]
    assert json.loads(response.headers["X-Pagination"])["total"] == 3
    page2 = cast.sme_api.get("/licences", query_string={"page_size": 2, "page": 2})
    assert [item["id"] for item in page2.json] == [str(licences[0].id)]


def test_a_licence_outside_your_view_looks_missing(cast: Cast) -> None:
    licence = cast.licence()
    for outsider in (cast.sme2_api, cast.other_tto_api):
        seen = outsider.get(f"/licences/{licence.id}")
        unseen = outsider.get(f"/licences/{uuid.uuid4()}")
        assert seen.status_code == unseen.status_code == 404
        assert seen.json == unseen.json
    for party in (cast.sme_api, cast.tto_api, cast.auditor_api, cast.admin_api):
        response = party.get(f"/licences/{licence.id}")
        assert response.status_code == 200
        assert response.json["reference"] == licence.reference
    assert cast.api.get(f"/licences/{licence.id}").status_code == 401


# --- termination ---------------------------------------------------------------------------------


def test_the_licensee_terminates_with_a_reason(cast: Cast) -> None:
    offer = cast.offer()
    licence = cast.licence(offer=offer)
    count_before = _fresh(cast.session, licence).offer.licence_count
    response = cast.sme_api.post(
        f"/licences/{licence.id}/terminate", json={"reason": "  产品线调整  "}
    )
    assert response.status_code == 200, response.json
    assert response.json["status"] == "terminated"
    assert response.json["termination_reason"] == "产品线调整"
    assert response.json["terminated_dt"] is not None
    [event] = _events(cast.session, "licence.terminated")
    assert event.subject_id == str(licence.id)
    assert "产品线调整" in event.payload
    # The uptake counts take-ups; ending one does not rewrite the offer.
    assert _fresh(cast.session, licence).offer.licence_count == count_before


def test_a_terminated_licence_cannot_be_terminated_again(cast: Cast) -> None:
    licence = cast.licence()
    assert (
        cast.sme_api.post(f"/licences/{licence.id}/terminate", json={"reason": "停产"}).status_code
        == 200
    )
    before = lf.counts(cast.session)
    again = cast.sme_api.post(f"/licences/{licence.id}/terminate", json={"reason": "再次"})
    assert again.status_code == 409
    assert again.json["code"] == "invalid_transition"
    assert lf.counts(cast.session) == before
    assert _fresh(cast.session, licence).termination_reason == "停产"


@pytest.mark.parametrize(
    ("who", "status"),
    [("tto_api", 403), ("auditor_api", 403), ("admin_api", 403), ("sme2_api", 404)],
)
def test_only_the_licensee_terminates(cast: Cast, who: str, status: int) -> None:
    licence = cast.licence()
    before = lf.counts(cast.session)
    response = getattr(cast, who).post(f"/licences/{licence.id}/terminate", json={"reason": "x"})
    assert response.status_code == status, response.json
    assert lf.counts(cast.session) == before
    assert _fresh(cast.session, licence).status is LicenceStatus.ACTIVE


@pytest.mark.parametrize("body", [{}, {"reason": "   "}, {"reason": "x" * 2001}, {"why": "x"}])
def test_termination_needs_a_reason(cast: Cast, body: dict[str, Any]) -> None:
    licence = cast.licence()
    before = lf.counts(cast.session)
    response = cast.sme_api.post(f"/licences/{licence.id}/terminate", json=body)
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] in {"reason", "why"}
    assert lf.counts(cast.session) == before
    assert _fresh(cast.session, licence).status is LicenceStatus.ACTIVE


# --- recordation ---------------------------------------------------------------------------------


def _recordation(**overrides: Any) -> dict[str, Any]:
    body = {"number": "X2026990000123", "date": today().isoformat(), "filed_by": "licensee"}
    body.update(overrides)
    return body


def test_either_party_records_the_cnipa_recordation(cast: Cast) -> None:
    licence = cast.licence()
    first = cast.sme_api.put(f"/licences/{licence.id}/recordation", json=_recordation())
    assert first.status_code == 200, first.json
    assert first.json["recordation"] == {
        "number": "X2026990000123",
        "date": today().isoformat(),
        "filed_by": "licensee",
    }
    # The licensor corrects it: the change is logged with before and after.
    corrected = cast.tto_api.put(
        f"/licences/{licence.id}/recordation",
        json=_recordation(number="X2026990000124", filed_by="licensor"),
    )
    assert corrected.status_code == 200, corrected.json
    assert corrected.json["recordation"]["number"] == "X2026990000124"
    events = _events(cast.session, "licence.recordation_set")
    assert len(events) == 2
    assert '"recordation_number":["X2026990000123","X2026990000124"]' in events[1].payload
    # Sending the same again changes nothing and logs nothing.
    same = cast.tto_api.put(
        f"/licences/{licence.id}/recordation",
        json=_recordation(number="X2026990000124", filed_by="licensor"),
    )
    assert same.status_code == 200
    assert len(_events(cast.session, "licence.recordation_set")) == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_recordation(date=(today() + timedelta(days=1)).isoformat()), "date"),
        (_recordation(date=(today() - timedelta(days=1)).isoformat()), "date"),
        (_recordation(number="备案号"), "number"),
        (_recordation(number=""), "number"),
        (_recordation(filed_by="agent"), "filed_by"),
        ({"number": "X2026990000123"}, "date"),
        (_recordation(date="2026-02-30"), "date"),
    ],
    ids=["future", "before-effective", "chinese-number", "empty", "filer", "missing", "bad-date"],
)
def test_a_bad_recordation_names_the_field(cast: Cast, body: dict[str, Any], field: str) -> None:
    licence = cast.licence()
    before = lf.counts(cast.session)
    response = cast.sme_api.put(f"/licences/{licence.id}/recordation", json=body)
    assert response.status_code == 422, response.json
    assert field in {e["field"] for e in response.json["errors"]}
    assert lf.counts(cast.session) == before
    assert _fresh(cast.session, licence).recordation_number is None


@pytest.mark.parametrize(("who", "status"), [("auditor_api", 403), ("other_tto_api", 404)])
def test_outsiders_do_not_record(cast: Cast, who: str, status: int) -> None:
    licence = cast.licence()
    before = lf.counts(cast.session)
    response = getattr(cast, who).put(f"/licences/{licence.id}/recordation", json=_recordation())
    assert response.status_code == status
    assert lf.counts(cast.session) == before


def test_the_recordation_due_list(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    soon = cast.licence(cast.sme_user)  # due three months from today
    recorded = cast.licence(cast.sme_user)
    ended = cast.licence(cast.sme_user)
    cast.sme_api.put(f"/licences/{recorded.id}/recordation", json=_recordation())
    cast.sme_api.post(f"/licences/{ended.id}/terminate", json={"reason": "停产"})
    assert _ids(cast.sme_api.get("/licences/recordation-due")) == set()

    # Seventy days later the first licence's recordation falls due within 30 days.
    later = today() + timedelta(days=70)
    monkeypatch.setattr(clock, "today", lambda: later)
    assert add_months(soon.effective_date, 3) <= later + timedelta(days=30)
    late = cast.licence(cast.sme2_user)  # taken "today" (day 70): not due yet
    for party in (cast.sme_api, cast.tto_api, cast.auditor_api):
        assert _ids(party.get("/licences/recordation-due")) & {
            str(soon.id),
            str(late.id),
            str(recorded.id),
            str(ended.id),
        } == {str(soon.id)}
    assert _ids(cast.sme2_api.get("/licences/recordation-due")) == set()
    assert _ids(cast.other_tto_api.get("/licences/recordation-due")) == set()
    # A wider window takes in the later one too; a negative one is refused.
    wide = cast.tto_api.get("/licences/recordation-due", query_string={"days": 120})
    assert {str(soon.id), str(late.id)} <= _ids(wide)
    assert (
        cast.tto_api.get("/licences/recordation-due", query_string={"days": -1}).status_code == 422
    )


# --- expiry --------------------------------------------------------------------------------------


def test_licences_past_their_end_expire_by_command(
    cast: Cast, app: Flask, db: TransactionalDatabase
) -> None:
    short = cast.licence(
        offer=cast.offer(term_years=None, term_end_date=(today() + timedelta(days=20)).isoformat())
    )
    long = cast.licence(offer=cast.offer(term_years=3))
    day = (today() + timedelta(days=21)).isoformat()

    result = app.test_cli_runner().invoke(args=["licences", "expire", "--date", day])
    assert result.exit_code == 0, result.output
    assert f"expired {short.reference}" in result.output
    assert "1 licences expired" in result.output
    assert _fresh(cast.session, short).status is LicenceStatus.EXPIRED
    assert _fresh(cast.session, long).status is LicenceStatus.ACTIVE
    [event] = _events(cast.session, "licence.expired")
    assert event.subject_id == str(short.id)
    assert event.actor_id is None

    again = app.test_cli_runner().invoke(args=["licences", "expire", "--date", day])
    assert "0 licences expired" in again.output
    assert len(_events(cast.session, "licence.expired")) == 1
    # An expired licence is no longer live: it cannot be terminated.
    refused = cast.sme_api.post(f"/licences/{short.id}/terminate", json={"reason": "x"})
    assert refused.status_code == 409


def test_expiry_on_the_last_day_waits_until_the_day_after(
    cast: Cast, app: Flask, db: TransactionalDatabase
) -> None:
    end = today() + timedelta(days=20)
    licence = cast.licence(offer=cast.offer(term_years=None, term_end_date=end.isoformat()))
    result = app.test_cli_runner().invoke(args=["licences", "expire", "--date", end.isoformat()])
    assert "0 licences expired" in result.output
    assert _fresh(cast.session, licence).status is LicenceStatus.ACTIVE
