"""Open-licence declarations over HTTP (issue 3, items 1–4): drafts and their terms, edits,
co-owner consents bound to the terms hash, eligibility, publication and withdrawal.

Every refused request is also checked to have changed nothing: no offer, consent or gazette row
written, no version bumped, no audit event (``unchanged``).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation, User
from registry.core.canonical import canonical_json
from registry.core.clock import today
from registry.offers.models import GazetteEntry
from tests.conftest import Api
from tests.factories import Factory, make_application_number
from tests.factories.offers import (
    CONTACT,
    eligible_patent,
    events,
    fast_admin,
    offer_body,
    refused,
    royalty,
    unchanged,
)

GAZETTE_NUMBER = re.compile(r"^\d{4}-\d{6}$")


@dataclass
class Cast:
    factory: Factory
    session: Session
    uni: Organisation  # university A
    uni2: Organisation  # university B, a co-owner in some tests
    other: Organisation  # university C, no stake
    ent: Organisation
    tto_user: User
    tto2_user: User
    tto: Api
    tto2: Api
    other_tto: Api
    licensee: Api
    auditor: Api
    admin: Api
    anonymous: Api

    def patent(self, **overrides: Any) -> Any:
        return eligible_patent(self.factory, self.tto_user, **overrides)

    def co_owned(self, rule: str = "unanimous", shares: tuple[str, str] = ("50", "50")) -> Any:
        patent = self.patent()
        response = self.tto.put(
            f"/patents/{patent.id}/owners",
            json={
                "owners": [
                    {"organisation_id": str(org.id), "title_share": s, "income_share": s}
                    for org, s in zip((self.uni, self.uni2), shares, strict=True)
                ],
                "decision_rules": {"open_licence": rule},
            },
        )
        assert response.status_code == 200, response.json
        return patent

    def draft(self, patent: Any = None, client: Api | None = None, **overrides: Any) -> Any:
        patent = patent or self.patent()
        response = (client or self.tto).post("/offers", json=offer_body(patent.id, **overrides))
        assert response.status_code == 201, response.json
        return response.json

    def etag(self, offer_id: str, client: Api | None = None) -> str:
        response = (client or self.tto).get(f"/offers/{offer_id}")
        assert response.status_code == 200, response.json
        return str(response.headers["ETag"])

    def publish(self, offer_id: str, client: Api | None = None) -> Any:
        response = (client or self.tto).post(
            f"/offers/{offer_id}/publish", json={"attest_truthful": True}
        )
        assert response.status_code == 200, response.json
        return response.json

    def published(self, patent: Any = None, **overrides: Any) -> Any:
        return self.publish(self.draft(patent, **overrides)["id"])


@pytest.fixture
def cast(api: Api, factory: Factory, session: Session) -> Cast:
    uni = factory.organisation("university", name="甲大学")
    uni2 = factory.organisation("university", name="乙大学")
    other = factory.organisation("university", name="丙大学")
    ent = factory.organisation("enterprise", name="丁科技有限公司")
    audit_body = factory.organisation("audit_body", name="戊审计事务所")
    tto_user = factory.user(uni, "tto")
    tto2_user = factory.user(uni2, "tto")

    def client(organisation: Organisation, role: str) -> Api:
        return api.as_(factory.token(factory.user(organisation, role)))

    return Cast(
        factory=factory,
        session=session,
        uni=uni,
        uni2=uni2,
        other=other,
        ent=ent,
        tto_user=tto_user,
        tto2_user=tto2_user,
        tto=api.as_(factory.token(tto_user)),
        tto2=api.as_(factory.token(tto2_user)),
        other_tto=client(other, "tto"),
        licensee=client(ent, "licensee"),
        auditor=client(audit_body, "auditor"),
        admin=api.as_(factory.token(fast_admin(factory))),
        anonymous=api,
    )


# --- drafts ----------------------------------------------------------------------------------


def test_a_tto_drafts_an_offer(cast: Cast) -> None:
    patent = cast.patent()
    response = cast.tto.post("/offers", json=offer_body(patent.id))
    assert response.status_code == 201, response.json
    offer = response.json
    assert offer["status"] == "draft"
    assert offer["patent_id"] == str(patent.id)
    assert offer["version"] == 1
    assert offer["licence_count"] == 0
    assert offer["gazette_number"] is None
    assert offer["royalty"] == {"kind": "lump_sum", "amount": "50000.00", "payment_due_days": 30}
    assert offer["term_years"] == 3
    assert offer["territory"] == "mainland_china"
    assert offer["contact"] == CONTACT
    assert offer["upfront_amount"] == "50000.00"
    assert offer["has_free_period"] is False
    assert offer["patent"]["owners"] == [{"organisation_id": str(cast.uni.id), "name": "甲大学"}]
    # The hash is SHA-256 of the canonical terms document (what consents bind to).
    expected = hashlib.sha256(canonical_json(offer["terms"]).encode()).hexdigest()
    assert offer["terms_sha256"] == expected
    assert set(offer["terms"]) == {
        "royalty",
        "term_years",
        "licensed_acts",
        "field_of_use",
        "contact",
        "other_matters",
        "territory",
    }
    assert response.headers["ETag"] == cast.etag(offer["id"])
    (event,) = events(cast.session, "offer.created", offer["id"])
    assert event.actor_id == cast.tto_user.id


@pytest.mark.parametrize(
    ("terms", "upfront", "free"),
    [
        ({"royalty": royalty("free")}, "0.00", False),
        (
            {
                "royalty": royalty(
                    "lump_sum",
                    amount="90000",
                    instalments=[
                        {"due_months": 0, "amount": "30000"},
                        {"due_months": 12, "amount": "30000"},
                        {"due_months": 24, "amount": "30000"},
                    ],
                )
            },
            "30000.00",
            False,
        ),
        (
            {
                "royalty": royalty(
                    "running",
                    rate=None,
                    steps=[{"from_year": 1, "rate": "2"}, {"from_year": 2, "rate": "3.5"}],
                    annual_minimum="5000",
                    cap="200000",
                    reporting_period="annual",
                )
            },
            "0.00",
            False,
        ),
        (
            {"royalty": royalty("running", base="units", rate=None, unit_amount="1.20")},
            "0.00",
            False,
        ),
        (
            {
                "royalty": royalty(
                    "entry_plus_running",
                    free_months=12,
                    sme_discount="20",
                    late_interest_rate="3.65",
                    payment_due_days=15,
                )
            },
            "20000.00",
            True,
        ),
        ({"term_years": None, "term_end_date": "2035-12-31"}, "50000.00", False),
    ],
)
def test_every_royalty_kind_and_term_form_is_accepted(
    cast: Cast, terms: dict[str, Any], upfront: str, free: bool
) -> None:
    royalty_sent = terms.get("royalty")
    if royalty_sent:
        terms["royalty"] = {k: v for k, v in royalty_sent.items() if v is not None}
    body = offer_body(cast.patent().id, **terms)
    body = {k: v for k, v in body.items() if v is not None}
    response = cast.tto.post("/offers", json=body)
    assert response.status_code == 201, response.json
    assert response.json["upfront_amount"] == upfront
    assert response.json["has_free_period"] is free
    assert response.json["royalty_kind"] == body["royalty"]["kind"]


def _patent_expiring_in(cast: Cast, days: int) -> Any:
    """An invention whose 20-year term ends ``days`` from today."""
    expiry = today() + timedelta(days=days)
    filing = (expiry + timedelta(days=1)).replace(year=expiry.year - 20)
    return cast.patent(filing_date=filing)


BAD_TERMS: list[tuple[str, dict[str, Any], set[str]]] = [
    (
        "instalments not summing to the lump sum",
        {
            "royalty": royalty(
                amount="90000",
                instalments=[
                    {"due_months": 0, "amount": "30000"},
                    {"due_months": 6, "amount": "30000"},
                ],
            )
        },
        {"royalty.instalments"},
    ),
    (
        "a rate over 100 %",
        {"royalty": royalty("running", rate="100.5")},
        {"royalty.rate"},
    ),
    (
        "a stepped schedule with a gap",
        {
            "royalty": {
                "kind": "running",
                "base": "profit",
                "steps": [{"from_year": 2, "rate": "5"}, {"from_year": 3, "rate": "6"}],
            }
        },
        {"royalty.steps.0.from_year"},
    ),
    (
        "a free period longer than the term",
        {"royalty": royalty(free_months=48)},
        {"royalty.free_months"},
    ),
    (
        "a fixed term past the patent's expiry",
        {"term_years": ..., "term_end_date": "2041-03-15"},
        {"term_end_date"},
    ),
    ("a term of 20 years from today", {"term_years": 20}, {"term_years"}),
    (
        "both term forms",
        {"term_end_date": "2030-01-01"},
        {"term_end_date"},
    ),
    ("no term", {"term_years": ...}, {"term_years"}),
    (
        "a term ending in the past",
        {"term_years": ..., "term_end_date": "2020-01-01"},
        {"term_end_date"},
    ),
    ("a term as a string", {"term_years": "3"}, {"term_years"}),
    ("a term of zero years", {"term_years": 0}, {"term_years"}),
    ("an amount as a float", {"royalty": royalty(amount=50000.5)}, {"royalty.amount"}),
    ("a negative amount", {"royalty": royalty(amount="-1")}, {"royalty.amount"}),
    ("an unknown royalty kind", {"royalty": {"kind": "barter"}}, {"royalty.kind"}),
    (
        "a free licence with an amount",
        {"royalty": royalty("free", amount="10")},
        {"royalty.amount"},
    ),
    (
        "a running royalty without base",
        {"royalty": {"kind": "running", "rate": "3"}},
        {"royalty.base"},
    ),
    (
        "an entry fee missing",
        {"royalty": {"kind": "entry_plus_running", "base": "profit", "rate": "5"}},
        {"royalty.entry_fee"},
    ),
    (
        "a cap below the minimum",
        {"royalty": royalty("running", annual_minimum="100", cap="99")},
        {"royalty.cap"},
    ),
    ("no licensed acts", {"licensed_acts": []}, {"licensed_acts"}),
    ("an unknown act", {"licensed_acts": ["make", "export"]}, {"licensed_acts.1"}),
    ("an act twice", {"licensed_acts": ["make", "make"]}, {"licensed_acts"}),
    ("no way to reach the contact", {"contact": {"name": "李老师"}}, {"contact"}),
    ("a bad e-mail", {"contact": {"name": "李老师", "email": "not-an-email"}}, {"contact.email"}),
    ("an unknown field", {"exclusive": True}, {"exclusive"}),
    ("an empty field of use", {"field_of_use": "  "}, {"field_of_use"}),
    ("a NUL character", {"other_matters": "技术\x00指导"}, {"other_matters"}),
    ("no royalty", {"royalty": ...}, {"royalty"}),
]


@pytest.mark.parametrize(("terms", "fields"), [(t, f) for _, t, f in BAD_TERMS],
                         ids=[name for name, _, _ in BAD_TERMS])  # fmt: skip
def test_bad_terms_are_refused_naming_the_field(
    cast: Cast, terms: dict[str, Any], fields: set[str]
) -> None:
    patent = cast.patent()
    with unchanged(cast.session):
        response = cast.tto.post("/offers", json=offer_body(patent.id, **terms))
        refused(response, 422, *fields, code="validation_error")


def test_every_violation_is_reported_at_once(cast: Cast) -> None:
    body = offer_body(
        cast.patent().id,
        royalty=royalty(amount="100", instalments=[{"due_months": 0, "amount": "99"}]),
        term_years=..., term_end_date="2041-03-15",
        licensed_acts=["make", "make"],
    )  # fmt: skip
    with unchanged(cast.session):
        response = cast.tto.post("/offers", json=body)
    refused(response, 422, "royalty.instalments", "term_end_date", "licensed_acts")


def test_a_term_running_past_a_near_expiry_is_refused(cast: Cast) -> None:
    patent = _patent_expiring_in(cast, 300)
    with unchanged(cast.session):
        refused(cast.tto.post("/offers", json=offer_body(patent.id, term_years=1)), 422,
                "term_years")  # fmt: skip
    ok = cast.tto.post(
        "/offers",
        json=offer_body(patent.id, term_years=..., term_end_date=patent.expiry_date.isoformat()),
    )
    assert ok.status_code == 201, ok.json


def test_a_design_patent_offers_no_use(cast: Cast) -> None:
    patent = cast.patent(
        patent_type="design",
        evaluation_report={"number": "PJ-1", "date": "2024-01-05", "conclusion": "no_defect"},
    )
    with unchanged(cast.session):
        refused(cast.tto.post("/offers", json=offer_body(patent.id)), 422, "licensed_acts")
    body = offer_body(patent.id, licensed_acts=["make", "offer_to_sell", "sell", "import"])
    assert cast.tto.post("/offers", json=body).status_code == 201


def test_who_may_draft(cast: Cast) -> None:
    patent = cast.patent()
    body = offer_body(patent.id)
    with unchanged(cast.session):
        refused(cast.anonymous.post("/offers", json=body), 401, code="unauthenticated")
        refused(cast.licensee.post("/offers", json=body), 403, code="forbidden")
        refused(cast.auditor.post("/offers", json=body), 403, code="forbidden")
        # Another organisation's patent answers like a patent that does not exist.
        other = cast.other_tto.post("/offers", json=body)
        missing = cast.tto.post("/offers", json=offer_body(cast.factory.new_id()))
        refused(other, 422, "patent_id")
        refused(missing, 422, "patent_id")
        assert other.json == missing.json
    assert cast.admin.post("/offers", json=body).status_code == 201


# --- reading ---------------------------------------------------------------------------------


def test_a_draft_is_seen_only_by_its_owners_admins_and_auditors(cast: Cast) -> None:
    patent = cast.co_owned()
    offer_id = cast.draft(patent)["id"]
    for client in (cast.tto, cast.tto2, cast.admin, cast.auditor):
        assert client.get(f"/offers/{offer_id}").status_code == 200
    unknown = cast.anonymous.get(f"/offers/{cast.factory.new_id()}")
    for client in (cast.anonymous, cast.licensee, cast.other_tto):
        response = client.get(f"/offers/{offer_id}")
        refused(response, 404, code="not_found")
        assert response.json == unknown.json  # no existence oracle


def test_a_published_offer_is_public(cast: Cast) -> None:
    offer = cast.published()
    for client in (cast.anonymous, cast.licensee, cast.other_tto, cast.auditor):
        response = client.get(f"/offers/{offer['id']}")
        assert response.status_code == 200
        assert response.json["status"] == "published"
        assert response.json["terms_sha256"] == offer["terms_sha256"]


# --- editing ---------------------------------------------------------------------------------


def test_a_draft_is_edited_with_if_match(cast: Cast) -> None:
    offer = cast.draft()
    etag = cast.etag(offer["id"])
    response = cast.tto.patch(
        f"/offers/{offer['id']}",
        json={"royalty": royalty("free"), "field_of_use": "储能"},
        headers={"If-Match": etag},
    )
    assert response.status_code == 200, response.json
    assert response.json["version"] == 2
    assert response.json["royalty"] == {"kind": "free"}
    assert response.json["field_of_use"] == "储能"
    assert response.json["term_years"] == 3  # untouched fields stay
    assert response.json["terms_sha256"] != offer["terms_sha256"]
    assert response.headers["ETag"] != etag
    (event,) = events(cast.session, "offer.updated", offer["id"])
    assert '"field_of_use"' in event.payload


def test_an_edit_can_switch_the_term_form(cast: Cast) -> None:
    offer = cast.draft()
    response = cast.tto.patch(
        f"/offers/{offer['id']}",
        json={"term_end_date": "2031-06-30"},
        headers={"If-Match": cast.etag(offer["id"])},
    )
    assert response.status_code == 200, response.json
    assert response.json["term_end_date"] == "2031-06-30"
    assert response.json["term_years"] is None
    assert "term_years" not in response.json["terms"]


def test_an_edit_without_change_changes_nothing(cast: Cast) -> None:
    offer = cast.draft()
    with unchanged(cast.session):
        response = cast.tto.patch(
            f"/offers/{offer['id']}",
            json={"licensed_acts": list(reversed(offer["licensed_acts"]))},
            headers={"If-Match": cast.etag(offer["id"])},
        )
        assert response.status_code == 200
        assert response.json["version"] == 1


def test_edits_are_refused_without_a_current_etag(cast: Cast) -> None:
    offer = cast.draft()
    url = f"/offers/{offer['id']}"
    with unchanged(cast.session):
        refused(cast.tto.patch(url, json={"term_years": 2}), 428, code="precondition_required")
        stale = cast.tto.patch(url, json={"term_years": 2}, headers={"If-Match": '"stale"'})
        refused(stale, 412, code="precondition_failed")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"royalty": royalty(amount="10", instalments=[{"due_months": 0, "amount": "9"}])},
         "royalty.instalments"),
        ({"term_years": 30}, "term_years"),
        ({"term_years": None}, "term_years"),
        ({"royalty": None}, "royalty"),
        ({"patent_id": "00000000-0000-0000-0000-000000000000"}, "patent_id"),
        ({"status": "published"}, "status"),
        ({"royalty": royalty(free_months=36)}, "royalty.free_months"),
    ],
)  # fmt: skip
def test_bad_edits_are_refused_naming_the_field(
    cast: Cast, change: dict[str, Any], field: str
) -> None:
    offer = cast.draft()
    etag = cast.etag(offer["id"])
    with unchanged(cast.session):
        response = cast.tto.patch(f"/offers/{offer['id']}", json=change, headers={"If-Match": etag})
        refused(response, 422, field)


def test_who_may_edit(cast: Cast) -> None:
    patent = cast.co_owned()
    offer = cast.draft(patent)
    url = f"/offers/{offer['id']}"
    etag = cast.etag(offer["id"])
    with unchanged(cast.session):
        refused(cast.anonymous.patch(url, json={}, headers={"If-Match": etag}), 401)
        refused(cast.auditor.patch(url, json={}, headers={"If-Match": etag}), 403)
        refused(cast.licensee.patch(url, json={}, headers={"If-Match": etag}), 404)
        refused(cast.other_tto.patch(url, json={}, headers={"If-Match": etag}), 404)
    co_owner = cast.tto2.patch(url, json={"term_years": 4}, headers={"If-Match": etag})
    assert co_owner.status_code == 200, co_owner.json
    admin = cast.admin.patch(
        url, json={"term_years": 5}, headers={"If-Match": co_owner.headers["ETag"]}
    )
    assert admin.status_code == 200, admin.json


def test_published_terms_never_change(cast: Cast) -> None:
    offer = cast.published()
    with unchanged(cast.session):
        response = cast.tto.patch(
            f"/offers/{offer['id']}",
            json={"royalty": royalty("free")},
            headers={"If-Match": cast.etag(offer["id"])},
        )
        refused(response, 409, "status", code="invalid_transition")
        assert "withdraw" in response.json["message"]


# --- consents --------------------------------------------------------------------------------


def test_a_co_owner_consents_to_the_exact_terms(cast: Cast) -> None:
    patent = cast.co_owned()
    offer = cast.draft(patent)
    response = cast.tto2.post(
        f"/offers/{offer['id']}/consents", json={"terms_sha256": offer["terms_sha256"]}
    )
    assert response.status_code == 201, response.json
    assert response.json["organisation_id"] == str(cast.uni2.id)
    assert response.json["purpose"] == "publish"
    assert response.json["terms_sha256"] == offer["terms_sha256"]
    assert response.json["current"] is True
    assert cast.tto.get(f"/offers/{offer['id']}").json["consented_by"] == [str(cast.uni2.id)]
    assert len(events(cast.session, "offer.consented", offer["id"])) == 1
    with unchanged(cast.session):
        again = cast.tto2.post(
            f"/offers/{offer['id']}/consents", json={"terms_sha256": offer["terms_sha256"]}
        )
        refused(again, 409, "terms_sha256", code="duplicate")


def test_an_edit_voids_earlier_consents(cast: Cast) -> None:
    patent = cast.co_owned()
    offer = cast.draft(patent)
    url = f"/offers/{offer['id']}"
    cast.tto2.post(f"{url}/consents", json={"terms_sha256": offer["terms_sha256"]})
    eligibility = cast.tto.get(f"{url}/eligibility").json
    assert eligibility["eligible"] is True
    edited = cast.tto.patch(
        url, json={"term_years": 2}, headers={"If-Match": cast.etag(offer["id"])}
    )
    assert edited.status_code == 200
    assert edited.json["consented_by"] == []
    (event,) = events(cast.session, "offer.updated", offer["id"])
    assert str(cast.uni2.id) in event.payload  # the voided consent is on record
    check = {c["code"]: c for c in cast.tto.get(f"{url}/eligibility").json["checks"]}["E7"]
    assert check["passed"] is False
    assert "乙大学" in check["message_zh"]
    with unchanged(cast.session):
        stale = cast.tto2.post(f"{url}/consents", json={"terms_sha256": offer["terms_sha256"]})
        refused(stale, 409, "terms_sha256", code="terms_changed")
    fresh = cast.tto2.post(f"{url}/consents", json={"terms_sha256": edited.json["terms_sha256"]})
    assert fresh.status_code == 201


def test_who_may_consent(cast: Cast) -> None:
    patent = cast.co_owned()
    offer = cast.draft(patent)
    url = f"/offers/{offer['id']}/consents"
    body = {"terms_sha256": offer["terms_sha256"]}
    with unchanged(cast.session):
        refused(cast.anonymous.post(url, json=body), 401)
        refused(cast.admin.post(url, json=body), 403)  # consent is the owner's own act
        refused(cast.auditor.post(url, json=body), 403)
        refused(cast.licensee.post(url, json=body), 404)
        refused(cast.other_tto.post(url, json=body), 404)
        refused(cast.tto2.post(url, json={"terms_sha256": "abc"}), 422, "terms_sha256")
        refused(cast.tto2.post(url, json={}), 422, "terms_sha256")


def test_a_published_offer_takes_no_more_consents(cast: Cast) -> None:
    offer = cast.published()
    with unchanged(cast.session):
        response = cast.tto.post(
            f"/offers/{offer['id']}/consents", json={"terms_sha256": offer["terms_sha256"]}
        )
        refused(response, 409, "status", code="invalid_transition")


# --- eligibility -----------------------------------------------------------------------------


def test_the_eligibility_report_lists_every_check(cast: Cast) -> None:
    offer = cast.draft()
    response = cast.tto.get(f"/offers/{offer['id']}/eligibility")
    assert response.status_code == 200
    report = response.json
    assert report["eligible"] is True
    assert report["pending"] == ["E13"]
    codes = [c["code"] for c in report["checks"]]
    assert codes == [
        "E1", "E2", "E2b", "E3", "E4", "E5", "E6", "E7", "E8", "E8b", "E9", "E10", "E11",
        "E12", "E13",
    ]  # fmt: skip
    for check in report["checks"]:
        assert set(check) >= {"code", "passed", "severity", "basis", "message", "message_zh"}
    assert [c["code"] for c in report["checks"] if not c["passed"]] == ["E13"]


def test_who_may_read_the_eligibility_report(cast: Cast) -> None:
    offer = cast.draft()
    url = f"/offers/{offer['id']}/eligibility"
    assert cast.admin.get(url).status_code == 200
    assert cast.auditor.get(url).status_code == 200
    refused(cast.anonymous.get(url), 401)
    refused(cast.licensee.get(url), 404)
    refused(cast.other_tto.get(url), 404)
    published = cast.published()
    refused(cast.licensee.get(f"/offers/{published['id']}/eligibility"), 403)


def _set_patent(cast: Cast, patent_id: Any, **fields: Any) -> None:
    etag = cast.tto.get(f"/patents/{patent_id}").headers["ETag"]
    response = cast.tto.patch(f"/patents/{patent_id}", json=fields, headers={"If-Match": etag})
    assert response.status_code == 200, response.json


def _encumber(cast: Cast, patent_id: Any, kind: str, **fields: Any) -> Any:
    body = {"kind": kind, "start_date": "2025-01-01", "reference": f"{kind}-ref", **fields}
    response = cast.tto.post(f"/patents/{patent_id}/encumbrances", json=body)
    assert response.status_code == 201, response.json
    return response.json


def test_publishing_is_refused_listing_every_failed_hard_check(cast: Cast) -> None:
    """A co-owned utility model without its evaluation report, fees unpaid, a preservation
    order, the co-owner's consent missing and no attestation: all five reported at once."""
    patent = cast.patent(
        patent_type="utility_model",
        application_number=make_application_number(2021, "2"),
        annual_fees_paid_through=None,
    )
    cast.tto.put(
        f"/patents/{patent.id}/owners",
        json={
            "owners": [
                {"organisation_id": str(cast.uni.id), "title_share": "50", "income_share": "50"},
                {"organisation_id": str(cast.uni2.id), "title_share": "50", "income_share": "50"},
            ]
        },
    )
    _encumber(cast, patent.id, "preservation_order")
    offer = cast.draft(patent)
    with unchanged(cast.session):
        response = cast.tto.post(f"/offers/{offer['id']}/publish", json={"attest_truthful": False})
        refused(
            response,
            409,
            "eligibility.E2",
            "eligibility.E4",
            "eligibility.E5",
            "eligibility.E7",
            "eligibility.E13",
            code="not_eligible",
        )
        assert len(response.json["errors"]) == 5
        for error in response.json["errors"]:
            assert len(error["messages"]) == 2  # English and Chinese
        assert cast.tto.get(f"/offers/{offer['id']}").json["status"] == "draft"


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        (lambda c, p: _set_patent(c, p, annual_fees_paid_through="2025-01-01"), "E5"),
        (lambda c, p: _encumber(c, p, "exclusive_licence", end_date="2040-01-01"), "E3"),
        (lambda c, p: _encumber(c, p, "dispute_suspension"), "E4"),
        (lambda c, p: _encumber(c, p, "pledge", pledgee_consent=False), "E6"),
        (lambda c, p: _set_patent(c, p, legal_status="surrendered"), "E1"),
    ],
)
def test_each_patent_fact_blocks_publication(cast: Cast, setup: Any, code: str) -> None:
    patent = cast.patent()
    offer = cast.draft(patent)
    setup(cast, patent.id)
    report = cast.tto.get(f"/offers/{offer['id']}/eligibility").json
    assert report["eligible"] is False
    assert [c["code"] for c in report["checks"] if not c["passed"]] == [code, "E13"]
    with unchanged(cast.session):
        response = cast.tto.post(f"/offers/{offer['id']}/publish", json={"attest_truthful": True})
        refused(response, 409, f"eligibility.{code}", code="not_eligible")


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "attest_truthful"), ({"attest_truthful": "true"}, "attest_truthful"),
     ({"attest_truthful": 1}, "attest_truthful"), ({"attest_truthful": True, "x": 1}, "x")],
)  # fmt: skip
def test_the_attestation_is_a_json_boolean(cast: Cast, body: dict[str, Any], field: str) -> None:
    offer = cast.draft()
    with unchanged(cast.session):
        refused(cast.tto.post(f"/offers/{offer['id']}/publish", json=body), 422, field)


# --- publication -----------------------------------------------------------------------------


def test_publication_numbers_announces_and_freezes_the_offer(cast: Cast) -> None:
    offer = cast.draft()
    response = cast.tto.post(f"/offers/{offer['id']}/publish", json={"attest_truthful": True})
    assert response.status_code == 200, response.json
    published = response.json
    assert published["status"] == "published"
    assert GAZETTE_NUMBER.match(published["gazette_number"])
    assert published["gazette_number"].startswith(f"{today().year}-")
    assert published["published_dt"]
    assert published["version"] == offer["version"] + 1
    assert published["terms_sha256"] == offer["terms_sha256"]
    assert published["consented_by"] == [str(cast.uni.id)]  # publishing is the owner's consent
    assert published["warnings"] == []
    (entry,) = cast.session.scalars(
        select(GazetteEntry).where(GazetteEntry.offer_id == uuid.UUID(offer["id"]))
    ).all()
    assert entry.number == published["gazette_number"]
    assert entry.kind == "publication"
    assert entry.summary["patentees"] == ["甲大学"]
    assert entry.summary["royalty"] == offer["royalty"]
    (event,) = events(cast.session, "offer.published", offer["id"])
    assert published["gazette_number"] in event.payload


def test_gazette_numbers_count_up_without_gaps(cast: Cast) -> None:
    first = cast.published()["gazette_number"]
    second = cast.published()["gazette_number"]
    year, number = first.split("-")
    assert second == f"{year}-{int(number) + 1:06d}"


def test_warnings_are_recorded_and_do_not_block(cast: Cast) -> None:
    offer = cast.draft(
        royalty=royalty("running", base="profit", rate="45"),
        other_matters="国内领先的最佳技术",
    )
    published = cast.publish(offer["id"])
    assert [w["code"] for w in published["warnings"]] == ["E8b", "E10"]
    assert all(w["basis"] and w["message_zh"] for w in published["warnings"])


def test_one_published_offer_per_patent(cast: Cast) -> None:
    patent = cast.patent()
    first = cast.published(patent)
    second = cast.draft(patent, term_years=5)
    with unchanged(cast.session):
        response = cast.tto.post(f"/offers/{second['id']}/publish", json={"attest_truthful": True})
        refused(response, 409, "patent_id", code="already_published")
        assert first["gazette_number"] in response.json["message"]
    with unchanged(cast.session):
        again = cast.tto.post(f"/offers/{first['id']}/publish", json={"attest_truthful": True})
        refused(again, 409, "status", code="invalid_transition")


def test_an_admin_publishes_for_the_owners_once_each_consented(cast: Cast) -> None:
    patent = cast.co_owned()
    offer = cast.draft(patent, client=cast.admin)
    url = f"/offers/{offer['id']}"
    with unchanged(cast.session):
        refused(cast.admin.post(f"{url}/publish", json={"attest_truthful": True}), 409,
                "eligibility.E7")  # fmt: skip
    for client in (cast.tto, cast.tto2):
        assert (
            client.post(f"{url}/consents", json={"terms_sha256": offer["terms_sha256"]}).status_code
            == 201
        )
    assert cast.publish(offer["id"], client=cast.admin)["status"] == "published"


def test_who_may_publish(cast: Cast) -> None:
    offer = cast.draft()
    url = f"/offers/{offer['id']}/publish"
    body = {"attest_truthful": True}
    with unchanged(cast.session):
        refused(cast.anonymous.post(url, json=body), 401)
        refused(cast.auditor.post(url, json=body), 403)
        refused(cast.licensee.post(url, json=body), 404)
        refused(cast.other_tto.post(url, json=body), 404)


# --- withdrawal ------------------------------------------------------------------------------


def test_a_sole_owner_withdraws_with_a_reason(cast: Cast) -> None:
    offer = cast.published()
    response = cast.tto.post(f"/offers/{offer['id']}/withdraw", json={"reason": "技术已转让"})
    assert response.status_code == 200, response.json
    assert response.json["withdrawn"] is True
    assert response.json["awaiting"] == []
    withdrawn = response.json["offer"]
    assert withdrawn["status"] == "withdrawn"
    assert withdrawn["withdrawal_reason"] == "技术已转让"
    assert withdrawn["withdrawn_dt"]
    assert withdrawn["version"] == offer["version"] + 1
    assert withdrawn["withdrawn_version"] == withdrawn["version"]
    number = withdrawn["withdrawal_gazette_number"]
    assert GAZETTE_NUMBER.match(number)
    assert number != offer["gazette_number"]
    entry = cast.session.scalar(select(GazetteEntry).where(GazetteEntry.number == number))
    assert entry is not None
    assert entry.kind == "withdrawal"
    assert entry.summary["reason"] == "技术已转让"
    assert len(events(cast.session, "offer.withdrawn", offer["id"])) == 1
    # Terms and the public record stay as announced.
    public = cast.anonymous.get(f"/offers/{offer['id']}").json
    assert public["status"] == "withdrawn"
    assert public["terms"] == offer["terms"]


def test_co_owners_each_ask_before_a_withdrawal(cast: Cast) -> None:
    patent = cast.co_owned()
    offer = cast.draft(patent)
    cast.tto2.post(f"/offers/{offer['id']}/consents", json={"terms_sha256": offer["terms_sha256"]})
    cast.publish(offer["id"])
    url = f"/offers/{offer['id']}/withdraw"
    first = cast.tto.post(url, json={"reason": "拟调整许可费后重新声明"})
    assert first.status_code == 200, first.json
    assert first.json["withdrawn"] is False
    assert first.json["offer"]["status"] == "published"
    assert first.json["awaiting"] == [{"organisation_id": str(cast.uni2.id), "name": "乙大学"}]
    assert first.json["offer"]["withdrawal_requested_by"] == [str(cast.uni.id)]
    assert len(events(cast.session, "offer.withdrawal_requested", offer["id"])) == 1
    with unchanged(cast.session):
        refused(cast.tto.post(url, json={"reason": "再次"}), 409, "reason", code="duplicate")
    second = cast.tto2.post(url, json={"reason": "同意撤回"})
    assert second.status_code == 200, second.json
    assert second.json["withdrawn"] is True
    assert second.json["offer"]["status"] == "withdrawn"
    assert second.json["offer"]["withdrawal_reason"] == "拟调整许可费后重新声明\n同意撤回"


@pytest.mark.parametrize(
    ("rule", "shares", "first_withdraws"),
    [("any_owner", ("50", "50"), True), ("majority_title_share", ("60", "40"), True),
     ("majority_title_share", ("40", "60"), False)],
)  # fmt: skip
def test_withdrawal_follows_the_agreed_rule(
    cast: Cast, rule: str, shares: tuple[str, str], first_withdraws: bool
) -> None:
    patent = cast.co_owned(rule, shares)
    offer = cast.draft(patent)
    cast.tto2.post(f"/offers/{offer['id']}/consents", json={"terms_sha256": offer["terms_sha256"]})
    cast.publish(offer["id"])
    response = cast.tto.post(f"/offers/{offer['id']}/withdraw", json={"reason": "理由"})
    assert response.json["withdrawn"] is first_withdraws


def test_what_cannot_be_withdrawn(cast: Cast) -> None:
    draft = cast.draft()
    offer = cast.published()
    with unchanged(cast.session):
        refused(cast.tto.post(f"/offers/{draft['id']}/withdraw", json={"reason": "x"}), 409,
                "status", code="invalid_transition")  # fmt: skip
        url = f"/offers/{offer['id']}/withdraw"
        refused(cast.tto.post(url, json={}), 422, "reason")
        refused(cast.tto.post(url, json={"reason": "   "}), 422, "reason")
        refused(cast.tto.post(url, json={"reason": "x" * 2001}), 422, "reason")
        refused(cast.anonymous.post(url, json={"reason": "x"}), 401)
        # The offer is public, so others are refused, not told it is missing.
        for client in (cast.admin, cast.auditor, cast.licensee, cast.other_tto):
            refused(client.post(url, json={"reason": "x"}), 403, code="forbidden")
    cast.tto.post(f"/offers/{offer['id']}/withdraw", json={"reason": "x"})
    with unchanged(cast.session):
        refused(cast.tto.post(f"/offers/{offer['id']}/withdraw", json={"reason": "y"}), 409,
                "status", code="invalid_transition")  # fmt: skip


def test_a_new_declaration_after_a_withdrawal(cast: Cast) -> None:
    patent = cast.patent()
    first = cast.published(patent)
    cast.tto.post(f"/offers/{first['id']}/withdraw", json={"reason": "调整条款"})
    second = cast.published(patent, royalty=royalty("free"))
    assert second["status"] == "published"
    assert cast.anonymous.get(f"/offers/{first['id']}").json["status"] == "withdrawn"


# --- Patent Law Art. 51(3): no exclusive licence while published -----------------------------


@pytest.mark.parametrize("kind", ["exclusive_licence", "sole_licence"])
def test_an_exclusive_licence_is_refused_while_an_offer_is_published(cast: Cast, kind: str) -> None:
    patent = cast.patent()
    offer = cast.published(patent)
    body = {"kind": kind, "start_date": today().isoformat(), "reference": "独占-2026-1"}
    url = f"/patents/{patent.id}/encumbrances"
    with unchanged(cast.session):
        response = cast.tto.post(url, json=body)
        refused(response, 409)
        assert "51(3)" in response.json["message"]
        assert offer["gazette_number"] in response.json["message"]
    pledge = {"kind": "pledge", "start_date": "2026-01-01", "reference": "质押-1",
              "pledgee_consent": True}  # fmt: skip
    assert cast.tto.post(url, json=pledge).status_code == 201  # other encumbrances still go
    cast.tto.post(f"/offers/{offer['id']}/withdraw", json={"reason": "拟独占许可"})
    assert cast.tto.post(url, json=body).status_code == 201


def test_a_draft_does_not_block_an_exclusive_licence(cast: Cast) -> None:
    patent = cast.patent()
    cast.draft(patent)
    body = {"kind": "exclusive_licence", "start_date": "2026-01-01", "reference": "独占-1"}
    assert cast.tto.post(f"/patents/{patent.id}/encumbrances", json=body).status_code == 201
