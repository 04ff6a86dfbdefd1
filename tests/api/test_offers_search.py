"""The public registry (issue 3, item 5): no login, published offers only by default, Chinese
substring search on SQLite and PostgreSQL, filters, sorting and paging; drafts only for their
owners' TTOs, admins and auditors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session

from registry.offers import services
from registry.offers.models import Offer
from tests.conftest import Api
from tests.factories import Factory
from tests.factories.offers import draft, eligible_patent, fast_admin, published, royalty

REPORT = {"number": "PJ2024-0001", "date": "2024-03-01", "conclusion": "no_defect"}


@dataclass
class Registry:
    separator: Offer  # 一种锂电池隔膜及其制备方法, lump sum 50000 (published first)
    solar: Offer  # utility model, free
    composite: Offer  # 锂电池 in the abstract, running royalty with a free period
    toothbrush: Offer  # university B's design, entry fee 8000 (published last)
    electrolyte: Offer  # a draft
    recycling: Offer  # withdrawn
    tto: Api
    other_tto: Api
    uni_b_id: str


@pytest.fixture
def registry(api: Api, factory: Factory, session: Session) -> Registry:
    uni = factory.organisation("university", name="甲大学")
    uni_b = factory.organisation("university", name="乙大学")
    tto = factory.user(uni, "tto")
    tto_b = factory.user(uni_b, "tto")

    def patent(owner: Any, **fields: Any) -> Any:
        return eligible_patent(factory, owner, **fields)

    separator = published(
        factory,
        tto,
        patent(
            tto,
            title="一种锂电池隔膜及其制备方法",
            title_en="Separator for lithium batteries and its preparation",
            abstract="本发明公开了一种多孔隔膜。",
            ipc=["H01M 50/403"],
        ),
    )
    solar = published(
        factory,
        tto,
        patent(
            tto,
            patent_type="utility_model",
            title="一种太阳能电池板清洁装置",
            title_en="Solar Panel Cleaning Device",
            ipc=["H02S 40/10"],
            evaluation_report=REPORT,
        ),
        royalty=royalty("free"),
    )
    composite = published(
        factory,
        tto,
        patent(tto, title="一种导电复合材料", abstract="用于锂电池的导电剂", ipc=["C08K 3/04"]),
        royalty=royalty("running", free_months=6),
        field_of_use="新能源汽车动力电池",
    )
    toothbrush = published(
        factory,
        tto_b,
        patent(tto_b, patent_type="design", title="电动牙刷", ipc=[], evaluation_report=REPORT),
        royalty=royalty("entry_plus_running", entry_fee="8000"),
        licensed_acts=["make", "offer_to_sell", "sell", "import"],
    )
    electrolyte = draft(factory, tto, patent(tto, title="一种锂电池电解液"))
    recycling = published(factory, tto, patent(tto, title="废旧锂电池回收方法"))
    services.withdraw(session, actor=factory.actor(tto), offer_id=recycling.id, reason="停止推广")
    other = factory.organisation("university", name="丙大学")
    return Registry(
        separator=separator,
        solar=solar,
        composite=composite,
        toothbrush=toothbrush,
        electrolyte=electrolyte,
        recycling=recycling,
        tto=api.as_(factory.token(tto)),
        other_tto=api.as_(factory.token(factory.user(other, "tto"))),
        uni_b_id=str(uni_b.id),
    )


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.json
    return [item["id"] for item in response.json]


def offers(*items: Offer) -> list[str]:
    return [str(item.id) for item in items]


def test_anyone_lists_published_offers_newest_first(api: Api, registry: Registry) -> None:
    r = registry
    response = api.get("/offers")
    assert ids(response) == offers(r.toothbrush, r.composite, r.solar, r.separator)
    assert json.loads(response.headers["X-Pagination"])["total"] == 4
    item = response.json[-1]
    assert item["patent"]["title"] == "一种锂电池隔膜及其制备方法"
    assert item["patent"]["application_number"]
    assert item["patent"]["owners"] == [{"organisation_id": item["patent"]["owners"][0][
        "organisation_id"], "name": "甲大学"}]  # fmt: skip
    assert item["royalty"]["amount"] == "50000.00"
    assert item["terms"]["territory"] == "mainland_china"
    assert item["licence_count"] == 0


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("锂电池", ["composite", "separator"]),  # a substring of the title, and of an abstract
        ("隔膜", ["separator"]),
        ("solar", ["solar"]),  # English, any case
        ("LITHIUM", ["separator"]),
        ("新能源汽车", ["composite"]),  # the field of use
        ("锂电池 导电剂", ["composite"]),  # every word must match
        ("锂电池 太阳能", []),
        ("%", []),  # LIKE wildcards are plain characters
        ("_", []),
        ("\\", []),
        ("牙刷", ["toothbrush"]),
    ],
)
def test_words_find_chinese_substrings_and_english(
    api: Api, registry: Registry, q: str, expected: list[str]
) -> None:
    found = ids(api.get("/offers", query_string={"q": q}))
    assert found == [str(getattr(registry, name).id) for name in expected]


def test_a_chinese_substring_finds_the_issue_s_example(api: Api, registry: Registry) -> None:
    # Issue 3: "锂电池" must find "一种锂电池隔膜及其制备方法" on both databases.
    found = api.get("/offers", query_string={"q": "锂电池"}).json
    assert "一种锂电池隔膜及其制备方法" in [o["patent"]["title"] for o in found]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"ipc": "H01M"}, ["separator"]),
        ({"ipc": "h01m50"}, ["separator"]),  # spelled loosely, matched canonically
        ({"ipc": "H01M 50/403"}, ["separator"]),
        ({"ipc": "H01L"}, []),
        ({"ipc": "C08K"}, ["composite"]),
        ({"patent_type": "utility_model"}, ["solar"]),
        ({"patent_type": "design"}, ["toothbrush"]),
        ({"royalty_kind": "free"}, ["solar"]),
        ({"royalty_kind": "running"}, ["composite"]),
        ({"max_upfront": "8000"}, ["toothbrush", "composite", "solar"]),
        ({"max_upfront": "7999.99"}, ["composite", "solar"]),
        ({"max_upfront": "0"}, ["composite", "solar"]),
        ({"free_period": "true"}, ["composite"]),
        ({"free_period": "false"}, ["toothbrush", "solar", "separator"]),
        ({"q": "锂电池", "royalty_kind": "lump_sum"}, ["separator"]),
    ],
)
def test_filters(api: Api, registry: Registry, query: dict[str, str], expected: list[str]) -> None:
    found = ids(api.get("/offers", query_string=query))
    assert found == [str(getattr(registry, name).id) for name in expected]


def test_filter_by_owner(api: Api, registry: Registry) -> None:
    found = ids(api.get("/offers", query_string={"organisation": registry.uni_b_id}))
    assert found == offers(registry.toothbrush)


def test_sorting_by_upfront_amount(api: Api, registry: Registry) -> None:
    r = registry
    cheapest = ids(api.get("/offers", query_string={"sort": "upfront_amount"}))
    assert cheapest == offers(r.composite, r.solar, r.toothbrush, r.separator)
    dearest = ids(api.get("/offers", query_string={"sort": "-upfront_amount"}))
    assert dearest == offers(r.separator, r.toothbrush, r.composite, r.solar)
    oldest = ids(api.get("/offers", query_string={"sort": "published_dt"}))
    assert oldest == offers(r.separator, r.solar, r.composite, r.toothbrush)


def test_paging(api: Api, registry: Registry) -> None:
    r = registry
    first = api.get("/offers", query_string={"page_size": 3})
    assert ids(first) == offers(r.toothbrush, r.composite, r.solar)
    paging = json.loads(first.headers["X-Pagination"])
    assert (paging["total"], paging["total_pages"], paging["next_page"]) == (4, 2, 2)
    assert ids(api.get("/offers", query_string={"page_size": 3, "page": 2})) == offers(r.separator)
    assert ids(api.get("/offers", query_string={"page": 99})) == []


def test_withdrawn_offers_are_listed_on_request(api: Api, registry: Registry) -> None:
    found = ids(api.get("/offers", query_string={"status": "withdrawn", "q": "锂电池"}))
    assert found == offers(registry.recycling)


def test_drafts_are_listed_only_for_owners_admins_and_auditors(
    api: Api, factory: Factory, registry: Registry
) -> None:
    query = {"status": "draft"}
    assert ids(api.get("/offers", query_string=query)) == []
    assert ids(registry.other_tto.get("/offers", query_string=query)) == []
    enterprise = factory.organisation("enterprise")
    licensee = api.as_(factory.token(factory.user(enterprise, "licensee")))
    assert ids(licensee.get("/offers", query_string=query)) == []
    assert ids(registry.tto.get("/offers", query_string=query)) == offers(registry.electrolyte)
    auditor = api.as_(factory.token(factory.user(factory.organisation("audit_body"), "auditor")))
    admin = api.as_(factory.token(fast_admin(factory)))
    for client in (auditor, admin):
        assert ids(client.get("/offers", query_string=query)) == offers(registry.electrolyte)
    # A draft never shows in the default (published) list, even to its owner.
    assert str(registry.electrolyte.id) not in ids(registry.tto.get("/offers"))


def test_the_uptake_is_shown(api: Api, session: Session, registry: Registry) -> None:
    services.claim_for_take_up(session, offer_id=registry.separator.id)
    (item,) = api.get("/offers", query_string={"q": "隔膜"}).json
    assert item["licence_count"] == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"sort": "cheapest"}, "sort"),
        ({"max_upfront": "abc"}, "max_upfront"),
        ({"max_upfront": "-1"}, "max_upfront"),
        ({"status": "archived"}, "status"),
        ({"patent_type": "software"}, "patent_type"),
        ({"royalty_kind": "barter"}, "royalty_kind"),
        ({"free_period": "maybe"}, "free_period"),
        ({"organisation": "not-a-uuid"}, "organisation"),
        ({"q": "锂" * 201}, "q"),
        ({"ipc": "H" * 21}, "ipc"),
    ],
)
def test_bad_queries_name_the_argument(
    api: Api, registry: Registry, query: dict[str, str], field: str
) -> None:
    response = api.get("/offers", query_string=query)
    assert response.status_code == 422, response.json
    assert field in {e["field"] for e in response.json["errors"]}
