"""The patent registry over HTTP (issue 2, item 5): registration and its identity rules, who may
read and change what, edits guarded by ``If-Match``, versioned ownership, inventors and
encumbrances, paging and filters.

Every refused write is also checked to have changed nothing: no new or superseded row, no
version bump and no audit event (``unchanged``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation
from registry.core.clock import today
from registry.patents.models import PatentOwner
from tests.conftest import Api
from tests.factories import Factory
from tests.factories.patents import (
    TYPE_DIGIT,
    app_no,
    events,
    refused,
    snapshot,
    unchanged,
    wrong_check,
)


def body(
    patent_type: str = "invention", filing_date: str = "2021-03-15", **overrides: Any
) -> dict[str, Any]:
    filing = date.fromisoformat(filing_date)
    data: dict[str, Any] = {
        "application_number": app_no(filing.year, TYPE_DIGIT[patent_type]),
        "patent_type": patent_type,
        "title": "一种锂离子电池负极材料及其制备方法",
        "title_en": "Anode material for lithium-ion batteries and its preparation",
        "abstract": "本发明公开了一种负极材料。",
        "ipc": ["H01M 4/587", "h01m10/0525"],
        "filing_date": filing_date,
        "grant_date": (filing + timedelta(days=600)).isoformat(),
    }
    data.update(overrides)
    return data


# --- the cast -------------------------------------------------------------------------------


@dataclass
class World:
    factory: Factory
    session: Session
    uni: Organisation
    ent: Organisation
    inst: Organisation
    audit_body: Organisation
    uni_tto: Api
    ent_tto: Api
    inst_tto: Api
    licensee: Api
    auditor: Api
    admin: Api
    anonymous: Api

    def register(self, client: Api | None = None, **overrides: Any) -> dict[str, Any]:
        response = (client or self.uni_tto).post("/patents", json=body(**overrides))
        assert response.status_code == 201, response.json
        return dict(response.json)

    def etag(self, patent_id: str, client: Api | None = None) -> str:
        response = (client or self.uni_tto).get(f"/patents/{patent_id}")
        assert response.status_code == 200, response.json
        return str(response.headers["ETag"])


@pytest.fixture
def world(api: Api, factory: Factory, session: Session) -> World:
    uni = factory.organisation("university", name="华东理工测试大学")
    ent = factory.organisation("enterprise", name="杭州测试新能源有限公司")
    inst = factory.organisation("institute", name="测试材料研究所")
    audit_body = factory.organisation("audit_body", name="测试审计事务所")

    def client_for(organisation: Organisation, role: str) -> Api:
        return api.as_(factory.token(factory.user(organisation, role)))

    return World(
        factory=factory,
        session=session,
        uni=uni,
        ent=ent,
        inst=inst,
        audit_body=audit_body,
        uni_tto=client_for(uni, "tto"),
        ent_tto=client_for(ent, "tto"),
        inst_tto=client_for(inst, "tto"),
        licensee=client_for(ent, "licensee"),
        auditor=client_for(audit_body, "auditor"),
        admin=api.as_(factory.token(factory.admin())),
        anonymous=api,
    )


def owners_body(*owners: tuple[Organisation, str, str], **extra: Any) -> dict[str, Any]:
    return {
        "owners": [
            {"organisation_id": str(org.id), "title_share": title, "income_share": income}
            for org, title, income in owners
        ],
        **extra,
    }


# --- registration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "canonical", "filing_date"),
    [
        ("202110123456.7", "202110123456.7", "2021-03-15"),
        ("2021101234567", "202110123456.7", "2021-03-15"),
        ("CN202110123456.7", "202110123456.7", "2021-03-15"),
        ("ZL 2021 1012 3456.7", "202110123456.7", "2021-03-15"),
        ("cn2021101234567", "202110123456.7", "2021-03-15"),
        ("200710308494x", "200710308494.X", "2007-08-01"),
        ("ZL200710308494.x", "200710308494.X", "2007-08-01"),
    ],
)
def test_tto_registers_a_patent_under_its_canonical_number(
    world: World, spelling: str, canonical: str, filing_date: str
) -> None:
    before = snapshot(world.session)
    response = world.uni_tto.post(
        "/patents",
        json=body(filing_date=filing_date, application_number=spelling, grant_date=None),
    )
    assert response.status_code == 201, response.json
    patent = response.json
    assert patent["application_number"] == canonical
    assert patent["patent_type"] == "invention"
    assert patent["title"] == "一种锂离子电池负极材料及其制备方法"
    assert patent["ipc"] == ["H01M 4/587", "H01M 10/0525"]
    assert patent["version"] == 1
    # The creating TTO's organisation is the sole owner, 100 % of title and of income.
    assert [
        (o["organisation_id"], o["title_share"], o["income_share"], o["basis"])
        for o in patent["owners"]
    ] == [(str(world.uni.id), "100.00", "100.00", "service_invention")]
    assert patent["owners"][0]["organisation_name"] == "华东理工测试大学"
    assert patent["decision_rules"]["open_licence"] == "unanimous"
    assert patent["decision_rules"]["assignment"] == "unanimous"
    # The ETag of the creation answer is the one a later GET gives (usable for If-Match).
    assert response.headers["ETag"]
    assert world.etag(patent["id"]) == response.headers["ETag"]
    after = snapshot(world.session)
    assert after["patents"] == before["patents"] + 1
    assert after["owners_current"] == before["owners_current"] + 1
    created = events(world.session, "patent.created", patent["id"])
    assert len(created) == 1
    payload = json.loads(created[0].payload)
    assert payload["application_number"] == canonical
    assert payload["owner_organisation_id"] == str(world.uni.id)


@pytest.mark.parametrize(
    ("patent_type", "filing_date", "expiry"),
    [
        ("invention", "2021-03-15", "2041-03-14"),
        ("utility_model", "2021-03-15", "2031-03-14"),
        ("design", "2021-06-01", "2036-05-31"),  # 15 years from the 2020 amendment on
        ("design", "2021-05-31", "2031-05-30"),  # filed before 2021-06-01: the old 10 years
        ("design", "2019-07-02", "2029-07-01"),
        ("invention", "2024-02-29", "2044-02-28"),  # 2044 has a 29 February
        ("utility_model", "2024-02-29", "2034-02-28"),  # 2034 has none: ends 28 February
        ("design", "2024-02-29", "2039-02-28"),
        ("invention", "2020-12-31", "2040-12-30"),
    ],
)
def test_expiry_is_the_last_day_of_the_term(
    world: World, patent_type: str, filing_date: str, expiry: str
) -> None:
    patent = world.register(patent_type=patent_type, filing_date=filing_date, grant_date=None)
    assert patent["expiry_date"] == expiry
    assert patent["status"] == "pending"
    assert patent["legal_status"] == "pending"


def test_status_shows_valid_granted_and_expired(world: World) -> None:
    granted = world.register(grant_date="2022-11-08")
    assert (granted["legal_status"], granted["status"]) == ("valid", "valid")
    old = world.register(
        patent_type="utility_model", filing_date="2014-05-06", grant_date="2015-01-07"
    )
    assert old["expiry_date"] == "2024-05-05"
    assert (old["legal_status"], old["status"]) == ("valid", "expired")
    lapsed = world.register(legal_status="lapsed_fees")
    assert lapsed["status"] == "lapsed_fees"


def test_evaluation_report_is_kept_for_a_utility_model(world: World) -> None:
    report = {"number": "PJ2023-000123", "date": "2023-04-01", "conclusion": "no_defect"}
    patent = world.register(patent_type="utility_model", evaluation_report=report)
    assert patent["evaluation_report"] == report


def test_an_invention_has_no_evaluation_report(world: World) -> None:
    report = {"number": "PJ2023-000123", "date": "2023-04-01", "conclusion": "no_defect"}
    with unchanged(world.session):
        response = world.uni_tto.post("/patents", json=body(evaluation_report=report))
    refused(response, 422, "evaluation_report")


def test_wrong_check_character_is_refused(world: World) -> None:
    with unchanged(world.session):
        response = world.uni_tto.post(
            "/patents", json=body(application_number=wrong_check(app_no(2021, "1")))
        )
    refused(response, 422, "application_number")
    assert response.json["code"] == "validation_error"


@pytest.mark.parametrize(
    "number",
    ["2021101234", "20211012345678.1", "202140123456.0", "1999101234567", "A202110123456.7", ""],
)
def test_malformed_application_numbers_are_refused(world: World, number: str) -> None:
    with unchanged(world.session):
        response = world.uni_tto.post("/patents", json=body(application_number=number))
    refused(response, 422, "application_number")


def test_patent_type_must_match_the_type_digit(world: World) -> None:
    with unchanged(world.session):
        response = world.uni_tto.post(
            "/patents", json=body(patent_type="invention", application_number=app_no(2021, "2"))
        )
    refused(response, 422, "patent_type")


def test_pct_national_phase_number_carries_its_type(world: World) -> None:
    patent = world.register(
        patent_type="utility_model", filing_date="2022-01-10", application_number=app_no(2022, "9")
    )
    assert patent["patent_type"] == "utility_model"
    with unchanged(world.session):
        response = world.uni_tto.post(
            "/patents",
            json=body(
                patent_type="design", filing_date="2022-01-10", application_number=app_no(2022, "8")
            ),
        )
    refused(response, 422, "patent_type")


def test_filing_year_must_match_the_number(world: World) -> None:
    with unchanged(world.session):
        response = world.uni_tto.post(
            "/patents", json=body(filing_date="2021-03-15", application_number=app_no(2020, "1"))
        )
    refused(response, 422, "filing_date")


def test_dates_in_the_future_or_out_of_order_are_refused(world: World) -> None:
    tomorrow = (today() + timedelta(days=1)).isoformat()
    with unchanged(world.session):
        future = world.uni_tto.post(
            "/patents",
            json=body(
                filing_date=tomorrow, application_number=app_no(today().year, "1"), grant_date=None
            ),
        )
        early_grant = world.uni_tto.post("/patents", json=body(grant_date="2020-01-01"))
    refused(future, 422, "filing_date")
    refused(early_grant, 422, "grant_date")


@pytest.mark.parametrize("ipc", [["H01M10-052"], ["H01M 10"], ["Z99Z 1/00"], "H01M 10/052", [7]])
def test_ipc_of_the_wrong_form_is_refused(world: World, ipc: Any) -> None:
    with unchanged(world.session):
        response = world.uni_tto.post("/patents", json=body(ipc=ipc))
    refused(response, 422, "ipc")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("filing_date", "2021-13-01"),
        ("filing_date", "15/03/2021"),
        ("filing_date", "2021-02-30"),
        ("grant_date", "yesterday"),
        ("annual_fees_paid_through", "2023-1-1x"),
    ],
)
def test_malformed_dates_are_refused(world: World, field: str, value: str) -> None:
    data = body()
    data[field] = value
    with unchanged(world.session):
        response = world.uni_tto.post("/patents", json=data)
    refused(response, 422, field)


def test_unknown_missing_and_mistyped_fields_are_refused_together(world: World) -> None:
    data = body(colour="blue", title=123)
    del data["patent_type"]
    with unchanged(world.session):
        response = world.uni_tto.post("/patents", json=data)
    refused(response, 422, "colour", "title", "patent_type")


@pytest.mark.parametrize("payload", [[], "patent", 42, None])
def test_a_body_that_is_not_an_object_is_refused(world: World, payload: Any) -> None:
    with unchanged(world.session):
        response = world.uni_tto.post("/patents", json=payload)
    assert response.status_code in (400, 422), response.json
    assert response.json["status"] == response.status_code


def test_a_ten_megabyte_body_is_refused(world: World) -> None:
    with unchanged(world.session):
        response = world.uni_tto.post(
            "/patents", json=body(abstract="摘" * (10 * 1024 * 1024 // 3))
        )
    assert response.status_code == 413
    assert response.json["code"] == "payload_too_large"


def test_same_number_in_another_spelling_is_a_duplicate(world: World) -> None:
    world.register(application_number="202110123456.7")
    with unchanged(world.session):
        response = world.ent_tto.post("/patents", json=body(application_number="CN 2021101234567"))
    refused(response, 409, "application_number")
    assert response.json["code"] == "duplicate"


# --- who may read and register ------------------------------------------------------------------


def test_anonymous_callers_are_refused(world: World) -> None:
    assert world.anonymous.get("/patents").status_code == 401
    with unchanged(world.session):
        response = world.anonymous.post("/patents", json=body())
    assert response.status_code == 401
    assert response.json["code"] == "unauthenticated"


def test_licensee_may_neither_list_nor_register_nor_read(world: World) -> None:
    patent = world.register()
    listing = world.licensee.get("/patents")
    assert listing.status_code == 403
    assert listing.json["code"] == "forbidden"
    with unchanged(world.session):
        assert world.licensee.post("/patents", json=body()).status_code == 403
    # Scope never leaks: a patent outside the caller's reach is "not found".
    assert world.licensee.get(f"/patents/{patent['id']}").status_code == 404


def test_auditor_reads_every_patent_and_changes_none(world: World) -> None:
    mine = world.register()
    theirs = world.register(client=world.ent_tto)
    listing = world.auditor.get("/patents")
    assert listing.status_code == 200
    assert {p["id"] for p in listing.json} >= {mine["id"], theirs["id"]}
    got = world.auditor.get(f"/patents/{theirs['id']}")
    assert got.status_code == 200
    etag = got.headers["ETag"]
    with unchanged(world.session):
        assert world.auditor.post("/patents", json=body()).status_code == 403
        patch = world.auditor.patch(
            f"/patents/{theirs['id']}", json={"title": "审计员改的"}, headers={"If-Match": etag}
        )
        owners = world.auditor.put(
            f"/patents/{theirs['id']}/owners",
            json=owners_body((world.audit_body, "100", "100")),
        )
        inventors = world.auditor.put(
            f"/patents/{theirs['id']}/inventors",
            json={"inventors": [{"name": "张三", "share": "100"}]},
        )
        encumbrance = world.auditor.post(
            f"/patents/{theirs['id']}/encumbrances",
            json={"kind": "dispute_suspension", "start_date": "2024-01-01", "reference": "X"},
        )
    assert patch.status_code == 403, patch.json
    assert owners.status_code == 403
    assert inventors.status_code == 403
    assert encumbrance.status_code == 403


def test_tto_of_another_organisation_sees_not_found(world: World) -> None:
    patent = world.register()
    pid = patent["id"]
    etag = world.etag(pid)
    assert pid not in {p["id"] for p in world.ent_tto.get("/patents").json}
    # Asking the list for another organisation's patents returns none of them.
    other = world.ent_tto.get("/patents", query_string={"organisation_id": str(world.uni.id)})
    assert other.status_code == 200
    assert other.json == []
    with unchanged(world.session):
        responses = [
            world.ent_tto.get(f"/patents/{pid}"),
            world.ent_tto.patch(
                f"/patents/{pid}", json={"title": "改"}, headers={"If-Match": etag}
            ),
            world.ent_tto.put(
                f"/patents/{pid}/owners", json=owners_body((world.ent, "100", "100"))
            ),
            world.ent_tto.put(
                f"/patents/{pid}/inventors", json={"inventors": [{"name": "李四", "share": "100"}]}
            ),
            world.ent_tto.post(
                f"/patents/{pid}/encumbrances",
                json={"kind": "dispute_suspension", "start_date": "2024-01-01", "reference": "X"},
            ),
        ]
    assert [r.status_code for r in responses] == [404] * 5
    assert all(r.json["code"] == "not_found" for r in responses)


def test_unknown_patent_is_not_found(world: World) -> None:
    assert world.admin.get(f"/patents/{uuid.uuid4()}").status_code == 404
    assert world.admin.get("/patents/not-a-uuid").status_code == 404


def test_admin_registers_for_a_named_owner(world: World) -> None:
    patent = world.register(client=world.admin, owner_organisation_id=str(world.inst.id))
    assert [o["organisation_id"] for o in patent["owners"]] == [str(world.inst.id)]
    # The owner's TTO now sees and may edit it.
    assert world.inst_tto.get(f"/patents/{patent['id']}").status_code == 200


def test_admin_must_name_an_owner_that_can_own(world: World) -> None:
    with unchanged(world.session):
        no_owner = world.admin.post("/patents", json=body())  # the clearing house cannot own
        audit_owner = world.admin.post(
            "/patents", json=body(owner_organisation_id=str(world.audit_body.id))
        )
        unknown = world.admin.post("/patents", json=body(owner_organisation_id=str(uuid.uuid4())))
    for response in (no_owner, audit_owner, unknown):
        refused(response, 422, "owner_organisation_id")


def test_tto_cannot_register_for_another_organisation(world: World) -> None:
    with unchanged(world.session):
        response = world.uni_tto.post(
            "/patents", json=body(owner_organisation_id=str(world.ent.id))
        )
    assert response.status_code == 403


# --- corrections with If-Match ------------------------------------------------------------------


def test_patch_needs_if_match(world: World) -> None:
    patent = world.register()
    with unchanged(world.session):
        response = world.uni_tto.patch(f"/patents/{patent['id']}", json={"title": "新标题"})
    assert response.status_code == 428
    assert response.json["code"] == "precondition_required"


def test_patch_with_stale_etag_is_refused(world: World) -> None:
    patent = world.register()
    pid = patent["id"]
    first = world.etag(pid)
    ok = world.uni_tto.patch(
        f"/patents/{pid}", json={"title": "第一次更正"}, headers={"If-Match": first}
    )
    assert ok.status_code == 200
    with unchanged(world.session):
        stale = world.uni_tto.patch(
            f"/patents/{pid}", json={"title": "第二次更正"}, headers={"If-Match": first}
        )
    assert stale.status_code == 412
    assert stale.json["code"] == "precondition_failed"
    assert world.uni_tto.get(f"/patents/{pid}").json["title"] == "第一次更正"


def test_patch_with_fresh_etag_changes_and_audits(world: World) -> None:
    patent = world.register(title_en=None)
    pid = patent["id"]
    etag = world.etag(pid)
    response = world.uni_tto.patch(
        f"/patents/{pid}",
        json={
            "title": "一种改进的锂离子电池负极材料",
            "title_en": "Improved anode material",
            "ipc": ["H01M 4/36"],
            "annual_fees_paid_through": "2025-03-14",
        },
        headers={"If-Match": etag},
    )
    assert response.status_code == 200, response.json
    assert response.json["title"] == "一种改进的锂离子电池负极材料"
    assert response.json["ipc"] == ["H01M 4/36"]
    assert response.json["annual_fees_paid_through"] == "2025-03-14"
    assert response.json["version"] == 2
    assert response.headers["ETag"] != etag
    assert world.etag(pid) == response.headers["ETag"]
    (event,) = events(world.session, "patent.updated", pid)
    changes = json.loads(event.payload)["changes"]
    assert changes["title"] == [
        "一种锂离子电池负极材料及其制备方法",
        "一种改进的锂离子电池负极材料",
    ]
    assert changes["title_en"] == [None, "Improved anode material"]
    assert changes["ipc"] == [["H01M 4/587", "H01M 10/0525"], ["H01M 4/36"]]
    assert changes["annual_fees_paid_through"] == [None, "2025-03-14"]
    assert "abstract" not in changes  # only what changed is recorded


def test_patch_recomputes_expiry_from_a_corrected_filing_date(world: World) -> None:
    patent = world.register(patent_type="design", filing_date="2021-06-02", grant_date=None)
    assert patent["expiry_date"] == "2036-06-01"
    response = world.uni_tto.patch(
        f"/patents/{patent['id']}",
        json={"filing_date": "2021-05-20"},
        headers={"If-Match": world.etag(patent["id"])},
    )
    assert response.status_code == 200, response.json
    assert response.json["expiry_date"] == "2031-05-19"
    (event,) = events(world.session, "patent.updated", patent["id"])
    assert json.loads(event.payload)["changes"] == {
        "filing_date": ["2021-06-02", "2021-05-20"],
        "expiry_date": ["2036-06-01", "2031-05-19"],
    }


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"application_number": "202110123456.7"}, "application_number"),
        ({"patent_type": "design"}, "patent_type"),
        ({"expiry_date": "2050-01-01"}, "expiry_date"),
        ({"version": 9}, "version"),
        ({"id": str(uuid.UUID(int=1))}, "id"),
        ({"filing_date": "2019-03-15"}, "filing_date"),  # year no longer matches the number
        ({"ipc": ["bad"]}, "ipc"),
        ({"grant_date": "2020-01-01"}, "grant_date"),  # before filing
        ({"legal_status": "pending"}, "legal_status"),  # granted, so not pending
        ({"title": ""}, "title"),
    ],
)
def test_patch_refuses_fixed_unknown_or_invalid_fields(
    world: World, patch: dict[str, Any], field: str
) -> None:
    patent = world.register()
    etag = world.etag(patent["id"])
    with unchanged(world.session):
        response = world.uni_tto.patch(
            f"/patents/{patent['id']}", json=patch, headers={"If-Match": etag}
        )
    refused(response, 422, field)
    assert world.etag(patent["id"]) == etag


# --- ownership ------------------------------------------------------------------------------------


def test_co_owners_with_shares_summing_to_exactly_100(world: World) -> None:
    patent = world.register()
    pid = patent["id"]
    etag = world.etag(pid)
    before = snapshot(world.session)
    response = world.uni_tto.put(
        f"/patents/{pid}/owners",
        json=owners_body(
            (world.uni, "33.34", "50"), (world.ent, "33.33", "25.5"), (world.inst, "33.33", "24.50")
        ),
    )
    assert response.status_code == 200, response.json
    owners = response.json["owners"]
    assert [(o["organisation_id"], o["title_share"], o["income_share"]) for o in owners] == [
        (str(world.uni.id), "33.34", "50.00"),
        (str(world.ent.id), "33.33", "25.50"),
        (str(world.inst.id), "33.33", "24.50"),
    ]
    # Unless agreed otherwise, open licences and assignments need every co-owner (PL Art. 14).
    assert response.json["decision_rules"] == {
        "open_licence": "unanimous",
        "ordinary_licence": "any_owner",
        "exclusive_licence": "unanimous",
        "assignment": "unanimous",
    }
    assert response.headers["ETag"] != etag
    after = snapshot(world.session)
    assert after["owners_current"] == before["owners_current"] + 2  # 1 superseded, 3 added
    assert after["audit_events"] == before["audit_events"] + 1
    (event,) = events(world.session, "patent.ownership_set", pid)
    payload = json.loads(event.payload)
    assert [o["title_share"] for o in payload["before"]["owners"]] == ["100.00"]
    assert [o["title_share"] for o in payload["after"]["owners"]] == ["33.34", "33.33", "33.33"]


def test_ownership_history_is_kept(world: World) -> None:
    patent = world.register()
    pid = uuid.UUID(patent["id"])
    assert (
        world.uni_tto.put(
            f"/patents/{pid}/owners",
            json=owners_body((world.uni, "60", "60"), (world.ent, "40", "40")),
        ).status_code
        == 200
    )
    assert (
        world.uni_tto.put(
            f"/patents/{pid}/owners", json=owners_body((world.uni, "100", "100"))
        ).status_code
        == 200
    )
    world.session.expire_all()
    rows = world.session.scalars(
        select(PatentOwner)
        .where(PatentOwner.patent_id == pid)
        .order_by(PatentOwner.effective_from_dt, PatentOwner.position)
    ).all()
    assert [(r.organisation_id, str(r.title_share), r.superseded_dt is None) for r in rows] == [
        (world.uni.id, "100.00", False),
        (world.uni.id, "60.00", False),
        (world.ent.id, "40.00", False),
        (world.uni.id, "100.00", True),
    ]
    # Each superseded row ended when its successor took effect.
    assert rows[0].superseded_dt == rows[1].effective_from_dt
    assert rows[1].superseded_dt == rows[3].effective_from_dt


@pytest.mark.parametrize(
    ("owners", "field"),
    [
        ([("uni", "50", "50"), ("ent", "49.99", "50")], "owners"),  # title 99.99
        ([("uni", "50", "50"), ("ent", "50.01", "50")], "owners"),  # title 100.01
        ([("uni", "50", "50"), ("ent", "50", "49.99")], "owners"),  # income 99.99
        ([("uni", "50", "50.01"), ("ent", "50", "50")], "owners"),  # income 100.01
        ([("uni", "110", "50"), ("ent", "-10", "50")], "owners.1.title_share"),
        ([("uni", "100", "100"), ("ent", "0", "0")], "owners.1.title_share"),  # zero title
        ([("uni", "100", "100.001")], "owners.0.income_share"),  # three decimals
        ([("uni", "1e2", "100")], "owners.0.title_share"),
        ([("uni", "NaN", "100")], "owners.0.title_share"),
        ([("uni", "50", "50"), ("uni", "50", "50")], "owners.1.organisation_id"),  # twice
        ([("uni", "50", "50"), ("audit_body", "50", "50")], "owners.1.organisation_id"),
    ],
)
def test_ownership_errors_are_refused_and_change_nothing(
    world: World, owners: list[tuple[str, str, str]], field: str
) -> None:
    patent = world.register()
    resolved = [(getattr(world, name), title, income) for name, title, income in owners]
    with unchanged(world.session):
        response = world.uni_tto.put(f"/patents/{patent['id']}/owners", json=owners_body(*resolved))
    refused(response, 422, field)


@pytest.mark.parametrize("share", [33.5, 100.0, True, None, {"value": "50"}])
def test_a_share_that_is_not_an_exact_decimal_string_is_refused(world: World, share: Any) -> None:
    patent = world.register()
    data = owners_body((world.uni, "66.5", "50"), (world.ent, "33.5", "50"))
    data["owners"][1]["title_share"] = share
    with unchanged(world.session):
        response = world.uni_tto.put(f"/patents/{patent['id']}/owners", json=data)
    refused(response, 422, "owners.1.title_share")


def test_unknown_owner_organisation_is_refused(world: World) -> None:
    patent = world.register()
    data = owners_body((world.uni, "50", "50"), (world.uni, "50", "50"))
    data["owners"][1]["organisation_id"] = str(uuid.uuid4())
    with unchanged(world.session):
        response = world.uni_tto.put(f"/patents/{patent['id']}/owners", json=data)
    refused(response, 422, "owners.1.organisation_id")


def test_cooperation_agreement_names_its_clause_set(world: World) -> None:
    patent = world.register()
    data = owners_body((world.uni, "50", "50"), (world.ent, "50", "50"))
    data["owners"][1] |= {"basis": "cooperation_agreement", "agreement_ref": "HT-2021-007"}
    with unchanged(world.session):
        response = world.uni_tto.put(f"/patents/{patent['id']}/owners", json=data)
    refused(response, 422, "owners.1.clause_set")
    data["owners"][1]["clause_set"] = "joint"
    ok = world.uni_tto.put(f"/patents/{patent['id']}/owners", json=data)
    assert ok.status_code == 200, ok.json
    assert ok.json["owners"][1]["basis"] == "cooperation_agreement"
    assert ok.json["owners"][1]["clause_set"] == "joint"
    assert ok.json["owners"][1]["agreement_ref"] == "HT-2021-007"


def test_beneficiaries_share_income_with_the_owners(world: World) -> None:
    patent = world.register()
    data = owners_body(
        (world.uni, "100", "60"),
        beneficiaries=[
            {
                "name": "储能材料课题组",
                "basis": "income_right_transfer",
                "income_share": "30",
                "valid_from": "2023-01-01",
                "valid_to": "2032-12-31",
                "agreement_ref": "收益权让渡协议 2022-15",
            },
            {
                "name": "测试新能源公司",
                "organisation_id": str(world.ent.id),
                "basis": "third_party",
                "income_share": "10.00",
                "valid_from": "2023-01-01",
            },
        ],
    )
    response = world.uni_tto.put(f"/patents/{patent['id']}/owners", json=data)
    assert response.status_code == 200, response.json
    beneficiaries = response.json["beneficiaries"]
    assert [(b["name"], b["income_share"]) for b in beneficiaries] == [
        ("储能材料课题组", "30.00"),
        ("测试新能源公司", "10.00"),
    ]
    assert response.json["owners"][0]["income_share"] == "60.00"
    # A beneficiary does not hold title, so it gains no access to the patent.
    assert world.ent_tto.get(f"/patents/{patent['id']}").status_code == 404


@pytest.mark.parametrize(
    ("owner_income", "beneficiary", "field"),
    [
        ("100", {"income_share": "10"}, "owners"),  # income totals 110
        ("60", {"income_share": "39.99"}, "owners"),  # income totals 99.99
        ("60", {"income_share": "40", "valid_to": "2022-12-31"}, "beneficiaries.0.valid_to"),
        ("60", {"income_share": "40", "basis": "gift"}, "beneficiaries.0.basis"),
        ("60", {"income_share": "40", "valid_from": "2023-02-30"}, "beneficiaries.0.valid_from"),
        ("60", {"income_share": 40.0}, "beneficiaries.0.income_share"),
    ],
)
def test_beneficiary_errors_are_refused(
    world: World, owner_income: str, beneficiary: dict[str, Any], field: str
) -> None:
    patent = world.register()
    entry = {
        "name": "课题组",
        "basis": "income_right_transfer",
        "valid_from": "2023-01-01",
        **beneficiary,
    }
    with unchanged(world.session):
        response = world.uni_tto.put(
            f"/patents/{patent['id']}/owners",
            json=owners_body((world.uni, "100", owner_income), beneficiaries=[entry]),
        )
    refused(response, 422, field)


def test_owner_with_zero_income_keeps_title(world: World) -> None:
    patent = world.register()
    response = world.uni_tto.put(
        f"/patents/{patent['id']}/owners",
        json=owners_body((world.uni, "50", "100"), (world.ent, "50", "0")),
    )
    assert response.status_code == 200, response.json
    assert response.json["owners"][1]["income_share"] == "0.00"


def test_decision_rules_are_recorded(world: World) -> None:
    patent = world.register()
    response = world.uni_tto.put(
        f"/patents/{patent['id']}/owners",
        json=owners_body(
            (world.uni, "50", "50"),
            (world.ent, "50", "50"),
            decision_rules={"ordinary_licence": "unanimous", "exclusive_licence": "any_owner"},
        ),
    )
    assert response.status_code == 200, response.json
    assert response.json["decision_rules"] == {
        "open_licence": "unanimous",
        "ordinary_licence": "unanimous",
        "exclusive_licence": "any_owner",
        "assignment": "unanimous",
    }
    with unchanged(world.session):
        bad = world.uni_tto.put(
            f"/patents/{patent['id']}/owners",
            json=owners_body((world.uni, "100", "100"), decision_rules={"assignment": "anyone"}),
        )
    refused(bad, 422, "decision_rules.assignment")


def test_new_co_owner_tto_can_see_and_edit(world: World) -> None:
    patent = world.register()
    pid = patent["id"]
    assert world.ent_tto.get(f"/patents/{pid}").status_code == 404
    response = world.uni_tto.put(
        f"/patents/{pid}/owners", json=owners_body((world.uni, "50", "50"), (world.ent, "50", "50"))
    )
    assert response.status_code == 200
    got = world.ent_tto.get(f"/patents/{pid}")
    assert got.status_code == 200
    assert pid in {p["id"] for p in world.ent_tto.get("/patents").json}
    patched = world.ent_tto.patch(
        f"/patents/{pid}",
        json={"abstract": "企业方补充的摘要"},
        headers={"If-Match": got.headers["ETag"]},
    )
    assert patched.status_code == 200, patched.json
    assert patched.json["abstract"] == "企业方补充的摘要"


def test_tto_cannot_remove_its_own_organisation(world: World) -> None:
    patent = world.register()
    with unchanged(world.session):
        response = world.uni_tto.put(
            f"/patents/{patent['id']}/owners", json=owners_body((world.ent, "100", "100"))
        )
    refused(response, 422, "owners")
    assert world.uni_tto.get(f"/patents/{patent['id']}").status_code == 200


def test_admin_may_record_an_assignment_away(world: World) -> None:
    patent = world.register()
    data = owners_body((world.ent, "100", "100"))
    data["owners"][0] |= {"basis": "assignment", "agreement_ref": "转让登记 2024-001"}
    response = world.admin.put(f"/patents/{patent['id']}/owners", json=data)
    assert response.status_code == 200, response.json
    assert world.uni_tto.get(f"/patents/{patent['id']}").status_code == 404
    assert world.ent_tto.get(f"/patents/{patent['id']}").status_code == 200


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "owners"),
        ({"owners": []}, "owners"),
        (
            {"owners": [{"organisation_id": "x", "title_share": "100", "income_share": "100"}]},
            "owners.0.organisation_id",
        ),
        ({"owners": [{"title_share": "100", "income_share": "100"}]}, "owners.0.organisation_id"),
        ({"owners": "all of us"}, "owners"),
    ],
)
def test_malformed_ownership_bodies_are_refused(
    world: World, data: dict[str, Any], field: str
) -> None:
    patent = world.register()
    with unchanged(world.session):
        response = world.uni_tto.put(f"/patents/{patent['id']}/owners", json=data)
    refused(response, 422, field)


def test_unknown_owner_field_is_refused(world: World) -> None:
    patent = world.register()
    data = owners_body((world.uni, "100", "100"))
    data["owners"][0]["role"] = "patentee"
    with unchanged(world.session):
        response = world.uni_tto.put(f"/patents/{patent['id']}/owners", json=data)
    refused(response, 422, "owners.0.role")


# --- inventors ----------------------------------------------------------------------------------


def test_inventors_with_shares_summing_to_100(world: World) -> None:
    patent = world.register()
    pid = patent["id"]
    first = world.uni_tto.put(
        f"/patents/{pid}/inventors",
        json={
            "inventors": [
                {"name": "王小明", "organisation_id": str(world.uni.id), "share": "50"},
                {"name": "李华", "share": "33.33"},
                {"name": "赵敏", "share": "16.67"},
            ]
        },
    )
    assert first.status_code == 200, first.json
    assert [(i["name"], i["share"]) for i in first.json["inventors"]] == [
        ("王小明", "50.00"),
        ("李华", "33.33"),
        ("赵敏", "16.67"),
    ]
    second = world.uni_tto.put(
        f"/patents/{pid}/inventors", json={"inventors": [{"name": "王小明", "share": "100"}]}
    )
    assert second.status_code == 200
    assert [i["name"] for i in second.json["inventors"]] == ["王小明"]
    counts = snapshot(world.session)
    assert (counts["inventors"], counts["inventors_current"]) == (4, 1)  # history kept
    (_, event) = events(world.session, "patent.inventors_set", pid)
    payload = json.loads(event.payload)
    assert [i["name"] for i in payload["before"]] == ["王小明", "李华", "赵敏"]
    assert payload["after"] == [{"name": "王小明", "share": "100.00", "organisation_id": None}]


@pytest.mark.parametrize(
    ("inventors", "field"),
    [
        ([{"name": "甲", "share": "50"}, {"name": "乙", "share": "49.99"}], "inventors"),
        ([{"name": "甲", "share": "50"}, {"name": "乙", "share": "50.01"}], "inventors"),
        ([{"name": "甲", "share": "150"}, {"name": "乙", "share": "-50"}], "inventors.1.share"),
        ([{"name": "甲", "share": 100.0}], "inventors.0.share"),
        ([{"name": "", "share": "100"}], "inventors.0.name"),
        (
            [{"name": "甲", "share": "100", "organisation_id": str(uuid.UUID(int=7))}],
            "inventors.0.organisation_id",
        ),
        ([], "inventors"),
    ],
)
def test_inventor_errors_are_refused(
    world: World, inventors: list[dict[str, Any]], field: str
) -> None:
    patent = world.register()
    with unchanged(world.session):
        response = world.uni_tto.put(
            f"/patents/{patent['id']}/inventors", json={"inventors": inventors}
        )
    refused(response, 422, field)


# --- encumbrances -------------------------------------------------------------------------------


def encumbrance(kind: str, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "start_date": "2024-01-01", "reference": f"{kind}-登记-001", **extra}


@pytest.mark.parametrize(
    "data",
    [
        encumbrance("exclusive_licence", end_date="2026-12-31", holder="杭州某公司"),
        encumbrance("sole_licence", holder="上海某公司"),
        encumbrance("pledge", pledgee_consent=True, holder="某银行"),
        encumbrance("pledge", pledgee_consent=False, holder="某银行"),
        encumbrance("dispute_suspension", holder="国家知识产权局"),
        encumbrance("preservation_order", end_date="2025-01-01", holder="某人民法院"),
    ],
)
def test_each_kind_of_encumbrance_is_recorded(world: World, data: dict[str, Any]) -> None:
    patent = world.register()
    before = snapshot(world.session)
    response = world.uni_tto.post(f"/patents/{patent['id']}/encumbrances", json=data)
    assert response.status_code == 201, response.json
    recorded = response.json
    for name, value in data.items():
        assert recorded[name] == value
    assert recorded["released_dt"] is None
    assert recorded["in_force"] is (
        data.get("end_date") is None or data["end_date"] >= today().isoformat()
    )
    after = snapshot(world.session)
    assert after["encumbrances"] == before["encumbrances"] + 1
    assert after["versions"] == before["versions"] + 1  # the patent's ETag changes
    assert after["audit_events"] == before["audit_events"] + 1
    shown = world.uni_tto.get(f"/patents/{patent['id']}").json["encumbrances"]
    assert [e["id"] for e in shown] == [recorded["id"]]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (encumbrance("pledge"), "pledgee_consent"),
        (encumbrance("pledge", pledgee_consent=None), "pledgee_consent"),
        (encumbrance("exclusive_licence", pledgee_consent=True), "pledgee_consent"),
        (encumbrance("dispute_suspension", pledgee_consent=False), "pledgee_consent"),
        (encumbrance("sole_licence", end_date="2023-12-31"), "end_date"),
        (encumbrance("mortgage"), "kind"),
        (encumbrance("pledge", pledgee_consent=True, start_date="2024-02-30"), "start_date"),
        ({"kind": "pledge", "pledgee_consent": True, "start_date": "2024-01-01"}, "reference"),
        (encumbrance("sole_licence", released_dt="2024-01-02T00:00:00Z"), "released_dt"),
    ],
)
def test_encumbrance_errors_are_refused(world: World, data: dict[str, Any], field: str) -> None:
    patent = world.register()
    with unchanged(world.session):
        response = world.uni_tto.post(f"/patents/{patent['id']}/encumbrances", json=data)
    refused(response, 422, field)


@pytest.mark.parametrize(
    ("first", "second", "conflict"),
    [
        (
            ("exclusive_licence", "2024-01-01", "2026-12-31"),
            ("sole_licence", "2026-12-31", None),
            True,
        ),
        (
            ("sole_licence", "2024-01-01", None),
            ("exclusive_licence", "2030-01-01", "2031-01-01"),
            True,
        ),
        (
            ("exclusive_licence", "2024-01-01", "2024-12-31"),
            ("exclusive_licence", "2025-01-01", None),
            False,
        ),
        (("exclusive_licence", "2024-01-01", None), ("pledge", "2024-06-01", None), False),
    ],
)
def test_exclusive_and_sole_licences_may_not_overlap(
    world: World,
    first: tuple[str, str, str | None],
    second: tuple[str, str, str | None],
    conflict: bool,
) -> None:
    patent = world.register()
    url = f"/patents/{patent['id']}/encumbrances"

    def data(kind: str, start: str, end: str | None) -> dict[str, Any]:
        extra = {"pledgee_consent": True} if kind == "pledge" else {}
        return encumbrance(kind, start_date=start, end_date=end, **extra)

    assert world.uni_tto.post(url, json=data(*first)).status_code == 201
    if conflict:
        with unchanged(world.session):
            response = world.uni_tto.post(url, json=data(*second))
        assert response.status_code == 409, response.json
        assert response.json["code"] == "rule_violation"
    else:
        assert world.uni_tto.post(url, json=data(*second)).status_code == 201


def test_release_keeps_the_record(world: World) -> None:
    patent = world.register()
    pid = patent["id"]
    created = world.uni_tto.post(
        f"/patents/{pid}/encumbrances", json=encumbrance("exclusive_licence", holder="甲公司")
    ).json
    assert created["in_force"] is True
    before = snapshot(world.session)
    released = world.uni_tto.delete(
        f"/patents/{pid}/encumbrances/{created['id']}", query_string={"reason": "合同提前解除"}
    )
    assert released.status_code == 200, released.json
    assert released.json["released_dt"] is not None
    assert released.json["release_reason"] == "合同提前解除"
    assert released.json["in_force"] is False
    after = snapshot(world.session)
    assert after["encumbrances"] == before["encumbrances"]  # the row stays
    assert after["released"] == before["released"] + 1
    assert after["audit_events"] == before["audit_events"] + 1
    shown = world.uni_tto.get(f"/patents/{pid}").json["encumbrances"]
    assert [(e["id"], e["in_force"]) for e in shown] == [(created["id"], False)]
    with unchanged(world.session):
        again = world.uni_tto.delete(f"/patents/{pid}/encumbrances/{created['id']}")
    assert again.status_code == 409
    # Once released, a new exclusive licence for the same period may be recorded.
    assert (
        world.uni_tto.post(
            f"/patents/{pid}/encumbrances", json=encumbrance("exclusive_licence", holder="乙公司")
        ).status_code
        == 201
    )


def test_release_of_unknown_or_foreign_encumbrance_is_not_found(world: World) -> None:
    mine = world.register()
    theirs = world.register(client=world.ent_tto)
    foreign = world.ent_tto.post(
        f"/patents/{theirs['id']}/encumbrances", json=encumbrance("dispute_suspension")
    ).json
    with unchanged(world.session):
        unknown = world.uni_tto.delete(f"/patents/{mine['id']}/encumbrances/{uuid.uuid4()}")
        # An encumbrance of another patent, reached through one's own patent.
        crossed = world.uni_tto.delete(f"/patents/{mine['id']}/encumbrances/{foreign['id']}")
        outsider = world.uni_tto.delete(f"/patents/{theirs['id']}/encumbrances/{foreign['id']}")
    assert [unknown.status_code, crossed.status_code, outsider.status_code] == [404, 404, 404]


# --- lists ----------------------------------------------------------------------------------------


def test_list_is_paginated_with_a_total(world: World) -> None:
    ids = {world.register()["id"] for _ in range(3)}
    first = world.uni_tto.get("/patents", query_string={"page_size": 2})
    assert first.status_code == 200
    meta = json.loads(first.headers["X-Pagination"])
    assert meta["total"] == 3
    assert meta["total_pages"] == 2
    assert len(first.json) == 2
    second = world.uni_tto.get("/patents", query_string={"page_size": 2, "page": 2})
    assert len(second.json) == 1
    assert {p["id"] for p in first.json + second.json} == ids


@pytest.mark.parametrize(
    ("args", "field"),
    [({"page_size": 101}, "page_size"), ({"page_size": 0}, "page_size"), ({"page": 0}, "page")],
)
def test_out_of_range_paging_is_refused(world: World, args: dict[str, int], field: str) -> None:
    response = world.uni_tto.get("/patents", query_string=args)
    refused(response, 422, field)


def test_list_filters(world: World) -> None:
    battery = world.register(title="一种固态电池电解质")
    number = app_no(2021, "2")
    valve = world.register(
        patent_type="utility_model", title="一种节能阀门", application_number=number
    )
    design = world.register(patent_type="design", title="充电桩外观")

    def ids(**args: str) -> set[str]:
        response = world.uni_tto.get("/patents", query_string=args)
        assert response.status_code == 200, response.json
        return {p["id"] for p in response.json}

    assert ids(q="电池") == {battery["id"]}
    assert ids(q=number[:10]) == {valve["id"]}
    assert ids(patent_type="design") == {design["id"]}
    assert ids(patent_type="utility_model", q="阀门") == {valve["id"]}
    assert ids(q="%") == set()  # wildcards are searched for literally
    assert ids(q="_") == set()
    refused(
        world.uni_tto.get("/patents", query_string={"patent_type": "plant"}), 422, "patent_type"
    )
