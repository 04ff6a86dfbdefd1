"""``GET /exports/<register>.csv``: each register scoped exactly as its own list endpoint.

A registry with two licences (the world's SME on university A's patent; another SME on
university B's), statements, payments and a settlement paying both universities. Every role —
admin, TTO A, TTO B, a TTO with nothing, the SME, an all-organisation auditor and an auditor
granted university A only — downloads every register; the rows must be exactly those the
register's list endpoint shows that caller, and a role the list refuses is refused the export.
Every download is an audit event carrying the file's SHA-256.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.audit import export_format as fmt
from registry.audit.models import AuditEvent
from registry.audit.services import count_events
from registry.offers.models import OfferStatus
from tests.api.test_export_bundle import Traded, trade
from tests.conftest import Api
from tests.factories import Factory
from tests.factories.world import World, build_world

REGISTERS = ("patents", "offers", "licences", "statements", "payments", "settlements")
ALL = (*REGISTERS, "payee-lines")


@dataclass
class Scene:
    world: World
    traded: Traded
    callers: dict[str, Api]


@pytest.fixture
def scene(factory: Factory, api: Api) -> Scene:
    world = build_world(factory)
    traded = trade(factory, api, world)
    nobody = factory.user(factory.organisation("university", name="戊大学"), "tto")
    scoped = factory.user(world.audit_body, "auditor", audits_all_organisations=False)
    admin = api.as_(world.admin.token)
    granted = admin.put(
        f"/users/{scoped.id}/audit-scope",
        json={"all_organisations": False, "organisation_ids": [str(world.university.id)]},
    )
    assert granted.status_code == 200, granted.json
    callers = {
        "admin": admin,
        "tto": api.as_(world.tto.token),
        "other_tto": api.as_(world.other_tto.token),
        "empty_tto": api.as_(factory.token(nobody)),
        "licensee": api.as_(world.licensee.token),
        "auditor": api.as_(world.auditor.token),
        "scoped_auditor": api.as_(factory.token(scoped)),
    }
    return Scene(world, traded, callers)


def exported(caller: Api, register: str) -> list[dict[str, str]]:
    response = caller.get(f"/exports/{register}.csv")
    assert response.status_code == 200, response.get_json()
    rows = fmt.read_csv(response.data)
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def listed(caller: Api, path: str, **query: Any) -> list[dict[str, Any]] | int:
    """Every item of a list endpoint (all pages), or its refusal's status."""
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        response = caller.get(path, query_string={**query, "page": page, "page_size": 100})
        if response.status_code != 200:
            return int(response.status_code)
        items += response.json
        if "next_page" not in json.loads(response.headers.get("X-Pagination", "{}")):
            return items
        page += 1


def from_lists(caller: Api, register: str) -> Counter[str] | int:
    """What the list endpoints show the caller, in the export's terms (ids, or line tuples)."""
    if register == "offers":
        found: list[dict[str, Any]] = []
        for status in OfferStatus:
            found += listed(caller, "/offers", status=status.value)  # type: ignore[arg-type]
        return Counter(item["id"] for item in found)
    if register == "payee-lines":
        runs = listed(caller, "/settlements")
        if isinstance(runs, int):
            return runs
        lines = [
            _line(line)
            for run in runs
            for line in caller.get(f"/settlements/{run['id']}").json["lines"]
        ]
        return Counter(lines)
    found_or_refused = listed(caller, f"/{register}")
    if isinstance(found_or_refused, int):
        return found_or_refused
    return Counter(item["id"] for item in found_or_refused)


def _line(line: dict[str, Any]) -> str:
    keys = ("payment_id", "payee_type", "payee_id", "role", "amount")
    return "|".join(str(line[key] or "") for key in keys)


def test_every_register_shows_each_role_what_its_list_shows(scene: Scene) -> None:
    wrong: list[str] = []
    empty_for = {"empty_tto"}
    for role, caller in scene.callers.items():
        for register in ALL:
            expected = from_lists(caller, register)
            response = caller.get(f"/exports/{register}.csv")
            if isinstance(expected, int):
                if response.status_code != expected or response.json["code"] != "forbidden":
                    wrong.append(f"{role} {register}: list {expected}, export {response.status}")
                continue
            if response.status_code != 200:
                wrong.append(f"{role} {register}: list 200, export {response.status_code}")
                continue
            rows = exported(caller, register)
            got = Counter(_line(r) if register == "payee-lines" else r["id"] for r in rows)
            if got != expected:
                wrong.append(f"{role} {register}: export {sorted(got)} != list {sorted(expected)}")
            if role in empty_for and register != "offers" and rows:
                wrong.append(f"{role} {register}: {len(rows)} rows for an organisation with none")
    assert not wrong, "\n".join(wrong)


def test_each_party_sees_only_its_own(scene: Scene) -> None:
    lump, running = scene.traded.lump.reference, scene.traded.running.reference
    references = {
        role: [row["reference"] for row in exported(scene.callers[role], "licences")]
        for role in ("licensee", "tto", "other_tto", "empty_tto", "scoped_auditor", "admin")
    }
    assert references["licensee"] == [lump]
    assert references["tto"] == [lump]  # the licence on university A's patent
    assert references["other_tto"] == [running]
    assert references["empty_tto"] == []
    assert references["scoped_auditor"] == [lump]  # granted university A only
    assert sorted(references["admin"]) == sorted([lump, running])

    world = scene.world
    patents = {row["id"] for row in exported(scene.callers["tto"], "patents")}
    assert str(world.patents[world.university.id].id) in patents
    assert str(world.patents[world.other_university.id].id) not in patents
    licensee_payments = exported(scene.callers["licensee"], "payments")
    assert {row["licence_id"] for row in licensee_payments} == {str(scene.traded.lump.id)}
    for register in ("patents", "settlements", "payee-lines"):
        refused = scene.callers["licensee"].get(f"/exports/{register}.csv")
        assert refused.status_code == 403, register
    # A TTO sees only its organisation's and its inventors' settlement lines.
    lines = exported(scene.callers["tto"], "payee-lines")
    assert lines
    assert all(
        world.university.id.hex in (row["payee_id"] + row["owner_organisation_id"]).replace("-", "")
        for row in lines
    )


def test_a_download_is_an_audit_event_with_the_files_hash(scene: Scene, session: Session) -> None:
    caller = scene.callers["scoped_auditor"]
    before = count_events(session)
    response = caller.get("/exports/statements.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "statements.csv" in response.headers["Content-Disposition"]
    assert response.data.startswith(b"\xef\xbb\xbf")
    rows = fmt.read_csv(response.data)
    assert rows[0][:3] == ["id", "number", "licence_id"]
    assert count_events(session) == before + 1
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert event.action == "export.downloaded"
    assert (event.subject_type, event.subject_id) == ("register", "statements")
    assert json.loads(event.payload) == {
        "register": "statements",
        "rows": len(rows) - 1,
        "sha256": fmt.sha256(response.data),
    }
    assert str(event.actor_id) != str(scene.world.admin.user.id)
    # Money as decimal strings to the fen: the lump sum of 1000 yuan.
    lump = [r for r in rows[1:] if r[rows[0].index("licence_id")] == str(scene.traded.lump.id)]
    assert lump
    assert lump[0][rows[0].index("amount_due")] == "1000.00"
    # The same registry exports the same bytes: a stable order.
    assert caller.get("/exports/statements.csv").data == response.data


def test_refusals_are_envelopes_and_record_nothing(
    scene: Scene, api: Api, session: Session
) -> None:
    before = count_events(session)
    for caller, path, status, code in (
        (scene.callers["admin"], "/exports/ledger.csv", 404, "not_found"),
        (scene.callers["admin"], "/exports/patents.json", 404, "not_found"),
        (scene.callers["licensee"], "/exports/patents.csv", 403, "forbidden"),
        (api, "/exports/licences.csv", 401, "unauthenticated"),
    ):
        response = caller.get(path)
        assert response.status_code == status, path
        assert response.json["code"] == code
        assert set(response.json) == {"code", "status", "message", "errors"}
    assert count_events(session) == before


def test_text_a_spreadsheet_would_run_is_defused(factory: Factory, api: Api) -> None:
    world = build_world(factory)
    factory.patent(world.tto.user, title='=HYPERLINK("http://evil.test","点击")')
    rows = exported(api.as_(world.tto.token), "patents")
    titles = {row["title"] for row in rows}
    assert '\'=HYPERLINK("http://evil.test","点击")' in titles
    assert not any(title.startswith("=") for title in titles)
