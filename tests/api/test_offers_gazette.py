"""The gazette (issue 3, item 6): publications and withdrawals, newest first, with a terms
summary, as JSON and as an Atom 1.0 feed (RFC 4287), for anyone."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session

from registry.offers import services
from tests.conftest import Api
from tests.factories import Factory
from tests.factories.offers import eligible_patent, fast_admin, published, royalty

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def announced(factory: Factory, session: Session) -> dict[str, Any]:
    uni = factory.organisation("university", name="甲大学")
    tto = factory.user(uni, "tto")
    first = published(
        factory, tto, eligible_patent(factory, tto, title="一种锂电池隔膜及其制备方法")
    )
    second = published(
        factory,
        tto,
        eligible_patent(factory, tto, title="一种光伏逆变器"),
        royalty=royalty("running", base="units", rate=None, unit_amount="2.50"),
        term_years=...,
        term_end_date="2030-06-30",
    )
    withdrawn, _ = services.withdraw(
        session, actor=factory.actor(tto), offer_id=first.id, reason="专利已转让给第三方"
    )
    return {"first": first, "second": second, "withdrawn": withdrawn}


def test_the_json_gazette_lists_newest_first(api: Api, announced: dict[str, Any]) -> None:
    first, second = announced["first"], announced["second"]
    response = api.get("/gazette")
    assert response.status_code == 200
    entries = response.json
    assert [(e["kind"], e["offer_id"]) for e in entries] == [
        ("withdrawal", str(first.id)),
        ("publication", str(second.id)),
        ("publication", str(first.id)),
    ]
    assert [e["number"] for e in entries] == [
        first.withdrawal_gazette_number,
        second.gazette_number,
        first.gazette_number,
    ]
    numbers = [int(e["number"].split("-")[1]) for e in entries]
    assert numbers == [numbers[2] + 2, numbers[2] + 1, numbers[2]]  # one sequence, no gaps
    publication = entries[1]["summary"]
    assert publication["title"] == "一种光伏逆变器"
    assert publication["patentees"] == ["甲大学"]
    assert publication["royalty"] == {
        "kind": "running",
        "base": "units",
        "unit_amount": "2.50",
        "payment_due_days": 30,
        "reporting_period": "quarterly",
    }
    assert publication["term_end_date"] == "2030-06-30"
    assert publication["terms_sha256"] == second.terms_sha256
    withdrawal = entries[0]["summary"]
    assert withdrawal["reason"] == "专利已转让给第三方"
    assert withdrawal["title"] == "一种锂电池隔膜及其制备方法"
    paged = api.get("/gazette", query_string={"page_size": 2})
    assert len(paged.json) == 2
    assert json.loads(paged.headers["X-Pagination"])["total"] == 3


def _text(element: ET.Element, tag: str) -> str:
    found = element.find(ATOM + tag)
    assert found is not None, f"<{tag}> missing"
    assert found.text, f"<{tag}> empty"
    return found.text


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None  # RFC 3339 date-times carry their offset
    return moment


def test_the_atom_feed_is_valid_atom_1_0(api: Api, announced: dict[str, Any]) -> None:
    first, second = announced["first"], announced["second"]
    response = api.get("/gazette.atom")
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    feed = ET.fromstring(response.data)  # noqa: S314 - our own response
    assert feed.tag == ATOM + "feed"
    # RFC 4287 §4.1.1: a feed has exactly one id, title and updated, and an author.
    for tag in ("id", "title", "updated"):
        assert len(feed.findall(ATOM + tag)) == 1
    assert _text(feed, "title").startswith("开放许可公告")
    author = feed.find(ATOM + "author")
    assert author is not None
    assert _text(author, "name")
    self_links = [link for link in feed.findall(ATOM + "link") if link.get("rel") == "self"]
    assert len(self_links) == 1
    assert self_links[0].get("href", "").endswith("/api/v1/gazette.atom")

    entries = feed.findall(ATOM + "entry")
    assert len(entries) == 3
    ids = [_text(entry, "id") for entry in entries]
    assert len(set(ids)) == 3
    assert all(i.startswith("urn:uuid:") for i in ids)
    updated = [_instant(_text(entry, "updated")) for entry in entries]
    assert updated == sorted(updated, reverse=True)  # newest first
    assert _instant(_text(feed, "updated")) == updated[0]
    titles = [_text(entry, "title") for entry in entries]
    assert titles[0].startswith(first.withdrawal_gazette_number)
    assert "撤回" in titles[0]
    assert titles[1].startswith(second.gazette_number)
    assert "一种光伏逆变器" in titles[1]
    assert "专利已转让给第三方" in _text(entries[0], "summary")
    for entry, offer in zip(entries, (first, second, first), strict=True):
        (link,) = entry.findall(ATOM + "link")
        href = link.get("href", "")
        assert href.endswith(f"/api/v1/offers/{offer.id}")
        assert api.get(href.replace("http://localhost", "")).status_code == 200


def test_an_empty_feed_is_still_valid(api: Api) -> None:
    response = api.get("/gazette.atom")
    feed = ET.fromstring(response.data)  # noqa: S314 - our own response
    assert feed.findall(ATOM + "entry") == []
    _instant(_text(feed, "updated"))
    _text(feed, "id")
    assert api.get("/gazette").json == []


def test_the_feed_carries_each_signed_checkpoint_to_keep(
    api: Api, factory: Factory, announced: dict[str, Any]
) -> None:
    """Followers of the gazette keep the audit log's checkpoints (issue 6 §1): each one is an
    entry whose content is the signed note, byte for byte, dated among the announcements."""
    admin = api.as_(factory.token(fast_admin(factory)))
    assert admin.post("/audit/checkpoints").status_code == 201
    note = api.get("/audit/checkpoints/latest").get_data(as_text=True)
    feed = ET.fromstring(api.get("/gazette.atom").data)  # noqa: S314 - our own response
    entries = feed.findall(ATOM + "entry")
    kept = [
        entry
        for entry in entries
        if any(c.get("term") == "audit-checkpoint" for c in entry.findall(ATOM + "category"))
    ]
    assert len(kept) == 1
    assert _text(kept[0], "content") == note
    size = int(note.splitlines()[1])
    assert f"{size} events" in _text(kept[0], "title")
    # The newest entry is the checkpoint, issued after the three announcements.
    assert entries[0] is kept[0]
    assert len(entries) == 4
    assert _instant(_text(feed, "updated")) == _instant(_text(kept[0], "updated"))
