"""Taking up an open licence over HTTP (issue 3, item 7): the licence a written notice creates,
who may give one, on which offers, and bad input.

Every refused take-up is also checked to have changed nothing: no licence, no audit event, no
offer version or uptake bump (``counts`` before and after).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation, User
from registry.audit.models import AuditEvent
from registry.core import clock
from registry.core.canonical import canonical_json
from registry.core.clock import today
from registry.licences import services as licence_services
from registry.licences.models import Licence
from registry.offers.lifecycle import add_months, add_years
from registry.offers.models import Offer
from registry.patents import services as patent_services
from registry.patents.models import LegalStatus
from tests.conftest import Api
from tests.factories import Factory
from tests.factories import licences as lf


@dataclass
class Cast:
    factory: Factory
    session: Session
    api: Api
    university: Organisation
    tto: User
    other_tto: User
    sme: Organisation
    sme_user: User
    sme_api: Api
    sme2: Organisation
    sme2_api: Api

    def as_(self, user: User) -> Api:
        return self.api.as_(self.factory.token(user))

    def offer(self, **kwargs: Any) -> Offer:
        return lf.published_offer(self.factory, self.tto, **kwargs)

    def take_up(self, offer: Offer, client: Api | None = None, **kwargs: Any) -> Any:
        body = kwargs.pop("json", None) or lf.notice()
        return (client or self.sme_api).post(f"/offers/{offer.id}/take-up", json=body, **kwargs)


@pytest.fixture
def cast(factory: Factory, session: Session, api: Api) -> Cast:
    university = factory.organisation("university", name="甲大学")
    other_university = factory.organisation("university", name="乙大学")
    sme, sme_user, sme_token = lf.enterprise_licensee(factory, name="丙科技有限公司")
    sme2, _, sme2_token = lf.enterprise_licensee(factory, name="丁新材料有限公司")
    return Cast(
        factory=factory,
        session=session,
        api=api,
        university=university,
        tto=factory.user(university, "tto"),
        other_tto=factory.user(other_university, "tto"),
        sme=sme,
        sme_user=sme_user,
        sme_api=api.as_(sme_token),
        sme2=sme2,
        sme2_api=api.as_(sme2_token),
    )


def _events(session: Session, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# --- the licence a take-up creates ---------------------------------------------------------------


def test_a_take_up_of_a_free_offer_creates_an_active_licence(cast: Cast) -> None:
    offer = cast.offer()
    version_before = offer.version
    response = cast.take_up(offer)
    assert response.status_code == 201, response.json
    licence = response.json
    day = today()
    assert licence["reference"].startswith(f"OL-{day.year}-")
    assert len(licence["reference"]) == len("OL-2026-000123")
    assert licence["status"] == "active"
    assert licence["offer_id"] == str(offer.id)
    assert licence["licensee_id"] == str(cast.sme.id)
    assert licence["licensee_name"] == "丙科技有限公司"
    assert licence["licensee_user_id"] == str(cast.sme_user.id)
    assert licence["patent_id"] == str(offer.patent_id)
    assert licence["effective_date"] == day.isoformat()
    assert licence["end_date"] == (add_years(day, 3) - timedelta(days=1)).isoformat()
    assert licence["recordation_due_date"] == add_months(day, 3).isoformat()
    assert licence["recordation"] is None

    lf.reread(cast.session)
    stored_offer = cast.session.get_one(Offer, offer.id)
    # The take-up wrote the offer row: its version is the one the licence carries.
    assert stored_offer.version == version_before + 1 == licence["offer_version"]
    assert stored_offer.licence_count == 1
    # The terms are a snapshot of the offer's, hashed the same way.
    assert licence["terms"] == stored_offer.terms
    assert licence["terms_sha256"] == stored_offer.terms_sha256
    assert (
        licence["terms_sha256"]
        == hashlib.sha256(canonical_json(licence["terms"]).encode()).hexdigest()
    )

    [event] = _events(cast.session, "licence.taken_up")
    assert event.subject_id == licence["id"]
    assert event.actor_id == cast.sme_user.id
    assert f'"offer_version":{licence["offer_version"]}' in event.payload
    assert "wang@sme.example.cn" not in event.payload  # contact details stay out of the log

    fetched = cast.sme_api.get(f"/licences/{licence['id']}")
    assert fetched.status_code == 200
    assert fetched.json == licence


def test_the_notice_is_kept_verbatim_with_its_time_and_address(cast: Cast) -> None:
    offer = cast.offer()
    written = lf.notice(intended_use="生产  锂电池负极\n（一期）", notes=None)
    response = cast.take_up(offer, json=written, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert response.status_code == 201, response.json
    notice = response.json["notice"]
    assert {k: notice[k] for k in written} == written
    assert notice["client_address"] == "203.0.113.9"
    received = datetime.fromisoformat(notice["received_dt"])
    assert received == datetime.fromisoformat(response.json["notice_dt"])
    assert abs(received - datetime.now(UTC)) < timedelta(minutes=1)
    licence = cast.session.get_one(Licence, uuid.UUID(response.json["id"]))
    assert licence.notice == notice


@pytest.mark.parametrize(
    ("royalty", "status"),
    [
        ({"kind": "lump_sum", "amount": "50000.00"}, "pending_payment"),
        ({"kind": "lump_sum", "amount": "50000.00", "free_months": 6}, "active"),
        (
            {
                "kind": "lump_sum",
                "amount": "50000.00",
                "instalments": [
                    {"due_months": 0, "amount": "20000.00"},
                    {"due_months": 12, "amount": "30000.00"},
                ],
            },
            "pending_payment",
        ),
        (
            {
                "kind": "lump_sum",
                "amount": "50000.00",
                "instalments": [
                    {"due_months": 6, "amount": "20000.00"},
                    {"due_months": 12, "amount": "30000.00"},
                ],
            },
            "active",
        ),
        (
            {
                "kind": "entry_plus_running",
                "entry_fee": "8000.00",
                "base": "net_sales",
                "rate": "3",
            },
            "pending_payment",
        ),
        ({"kind": "running", "base": "net_sales", "rate": "3"}, "active"),
        ({"kind": "free"}, "active"),
    ],
    ids=[
        "lump-sum",
        "lump-sum-use-first",
        "instalment-at-take-up",
        "instalments-later",
        "entry-fee",
        "running",
        "free",
    ],
)
def test_a_licence_awaits_payment_while_an_upfront_amount_is_due(
    cast: Cast, royalty: dict[str, Any], status: str
) -> None:
    offer = cast.offer(royalty=royalty)
    response = cast.take_up(offer)
    assert response.status_code == 201, response.json
    assert response.json["status"] == status
    assert response.json["terms"]["royalty"]["kind"] == royalty["kind"]


def test_the_licence_ends_at_a_fixed_term_end(cast: Cast) -> None:
    end = today() + timedelta(days=400)
    offer = cast.offer(term_years=None, term_end_date=end.isoformat())
    response = cast.take_up(offer)
    assert response.status_code == 201, response.json
    assert response.json["end_date"] == end.isoformat()


def test_the_licence_never_outlasts_the_patent(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    # A 3-year term declared while the invention has 4 years left, taken up 2 years later.
    filing = add_years(today(), -16)
    patent = cast.factory.patent(cast.tto, filing_date=filing, title="一种即将届满的发明")
    offer = cast.offer(patent=patent, term_years=3)
    later = add_years(today(), 2)
    monkeypatch.setattr(clock, "today", lambda: later)
    response = cast.take_up(offer)
    assert response.status_code == 201, response.json
    assert response.json["effective_date"] == later.isoformat()
    assert response.json["end_date"] == patent.expiry_date.isoformat()
    assert patent.expiry_date < add_years(later, 3) - timedelta(days=1)


def test_references_count_up_without_gaps(cast: Cast) -> None:
    first = cast.take_up(cast.offer())
    second = cast.take_up(cast.offer(), client=cast.sme2_api)
    assert first.status_code == second.status_code == 201
    number = int(first.json["reference"].rsplit("-", 1)[1])
    assert second.json["reference"] == f"OL-{today().year}-{number + 1:06d}"


def test_two_enterprises_each_take_a_licence_and_the_uptake_counts_both(cast: Cast) -> None:
    offer = cast.offer()
    first = cast.take_up(offer)
    second = cast.take_up(offer, client=cast.sme2_api)
    assert first.status_code == second.status_code == 201
    assert second.json["offer_version"] == first.json["offer_version"] + 1
    lf.reread(cast.session)
    assert cast.session.get_one(Offer, offer.id).licence_count == 2


# --- refusals ------------------------------------------------------------------------------------


def test_one_live_licence_per_enterprise_per_offer(cast: Cast) -> None:
    offer = cast.offer()
    first = cast.take_up(offer)
    assert first.status_code == 201
    # Another user of the same enterprise counts as the same licensee.
    colleague = cast.as_(cast.factory.user(cast.sme, "licensee"))
    before = lf.counts(cast.session)
    again = cast.take_up(offer, client=colleague)
    assert again.status_code == 409, again.json
    assert again.json["code"] == "already_licensed"
    assert lf.counts(cast.session) == before

    # Once terminated, the enterprise may take a new licence on the same terms.
    ended = cast.sme_api.post(
        f"/licences/{first.json['id']}/terminate", json={"reason": "生产线搬迁"}
    )
    assert ended.status_code == 200, ended.json
    renewed = cast.take_up(offer)
    assert renewed.status_code == 201, renewed.json
    assert renewed.json["id"] != first.json["id"]


def test_the_unique_index_backs_up_the_one_licence_rule(
    cast: Cast, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were the check ever to miss a live licence, the database still refuses the second."""
    offer = cast.offer()
    assert cast.take_up(offer).status_code == 201
    monkeypatch.setattr(licence_services, "_live_licence_exists", lambda *_: False)
    before = lf.counts(cast.session)
    again = cast.take_up(offer)
    assert again.status_code == 409, again.json
    assert again.json["code"] == "already_licensed"
    assert lf.counts(cast.session) == before


@pytest.mark.parametrize("role", ["tto", "auditor", "admin"])
def test_only_enterprise_licensees_take_up(cast: Cast, role: str) -> None:
    offer = cast.offer()
    kind = {"tto": "university", "auditor": "audit_body", "admin": "clearing_house"}[role]
    client = cast.as_(cast.factory.user(cast.factory.organisation(kind), role))
    before = lf.counts(cast.session)
    response = cast.take_up(offer, client=client)
    assert response.status_code == 403, response.json
    assert response.json["code"] == "forbidden"
    assert lf.counts(cast.session) == before


def test_a_licensee_user_outside_an_enterprise_is_refused(cast: Cast) -> None:
    offer = cast.offer()
    stray = cast.as_(cast.factory.user(cast.factory.organisation("institute"), "licensee"))
    before = lf.counts(cast.session)
    response = cast.take_up(offer, client=stray)
    assert response.status_code == 403, response.json
    assert lf.counts(cast.session) == before


def test_anonymous_take_up_is_refused(cast: Cast) -> None:
    offer = cast.offer()
    before = lf.counts(cast.session)
    response = cast.take_up(offer, client=cast.api)
    assert response.status_code == 401
    assert response.json["code"] == "unauthenticated"
    assert lf.counts(cast.session) == before


def test_an_owner_takes_no_licence_on_its_own_patent(cast: Cast) -> None:
    # The enterprise's own IP staff declare its patent open.
    ip_staff = cast.factory.user(cast.sme, "tto")
    offer = lf.published_offer(cast.factory, ip_staff)
    before = lf.counts(cast.session)
    response = cast.take_up(offer)
    assert response.status_code == 409, response.json
    assert response.json["code"] == "own_patent"
    assert lf.counts(cast.session) == before


def _draft(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> Offer:
    return lf.draft_offer(cast.factory, cast.tto)


def _withdrawn(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> Offer:
    return lf.withdraw(cast.factory, cast.tto, cast.offer())


def _expired(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> Offer:
    # Published with a fixed last day; then that day passes (read-time expiry applies).
    last_day = today() + timedelta(days=10)
    offer = cast.offer(term_years=None, term_end_date=last_day.isoformat())
    monkeypatch.setattr(clock, "today", lambda: last_day + timedelta(days=1))
    return offer


def _lapsed(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> Offer:
    offer = cast.offer()
    patent_services.update_patent(
        cast.session,
        actor=cast.factory.actor(cast.tto),
        patent=offer.patent,
        data={"legal_status": LegalStatus.LAPSED_FEES},
    )
    return offer


@pytest.mark.parametrize(
    ("make", "status"),
    [(_draft, "draft"), (_withdrawn, "withdrawn"), (_expired, "expired"), (_lapsed, "lapsed")],
    ids=["draft", "withdrawn", "expired", "lapsed"],
)
def test_only_a_published_offer_in_force_can_be_taken_up(
    cast: Cast, monkeypatch: pytest.MonkeyPatch, make: Any, status: str
) -> None:
    offer = make(cast, monkeypatch)
    before = lf.counts(cast.session)
    response = cast.take_up(offer)
    assert response.status_code == 409, response.json
    assert response.json["code"] == "offer_not_published"
    assert status in response.json["message"]
    assert lf.counts(cast.session) == before


def test_an_unknown_offer_is_not_found(cast: Cast) -> None:
    before = lf.counts(cast.session)
    response = cast.sme_api.post(f"/offers/{cast.factory.new_id()}/take-up", json=lf.notice())
    assert response.status_code == 404
    assert response.json["code"] == "not_found"
    assert lf.counts(cast.session) == before


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"intended_use", "contact_name", "contact_phone", "contact_email"}),
        (lf.notice(contact_email="not-an-email"), {"contact_email"}),
        (lf.notice(contact_phone="call me"), {"contact_phone"}),
        (lf.notice(intended_use="   "), {"intended_use"}),
        (lf.notice(intended_use="用" * 2001), {"intended_use"}),
        (lf.notice(contact_name=42), {"contact_name"}),
        (lf.notice(licence_fee="0"), {"licence_fee"}),
        (lf.notice(notes="x" * 5001), {"notes"}),
        (lf.notice(contact_name="王\x00经理"), {"contact_name"}),
    ],
    ids=[
        "empty",
        "email",
        "phone",
        "blank-use",
        "long-use",
        "number-name",
        "unknown-field",
        "long-notes",
        "nul",
    ],
)
def test_a_bad_notice_names_each_field_and_changes_nothing(
    cast: Cast, body: dict[str, Any], fields: set[str]
) -> None:
    offer = cast.offer()
    before = lf.counts(cast.session)
    response = cast.sme_api.post(f"/offers/{offer.id}/take-up", json=body)
    assert response.status_code == 422, response.json
    assert response.json["code"] == "validation_error"
    assert {e["field"] for e in response.json["errors"]} == fields
    assert lf.counts(cast.session) == before


def test_a_notice_not_sent_as_json_is_refused(cast: Cast) -> None:
    offer = cast.offer()
    before = lf.counts(cast.session)
    response = cast.sme_api.post(
        f"/offers/{offer.id}/take-up", data="intended_use=x", content_type="text/plain"
    )
    assert response.status_code == 415
    assert lf.counts(cast.session) == before
