"""The audit log: one event per state change, hashes an auditor can recompute, tamper evidence.

The expected hashes are computed here from the published event fields with ``hashlib`` and
``json`` only — never with the service's helpers — so a change to the event format, the leaf
prefix or the chaining breaks these tests instead of silently changing what auditors verify.

Leaf (RFC 6962 §2.1): SHA-256(0x00 ‖ canonical event), where the canonical event is the JSON
object {seq, time, actor, actor_organisation, action, subject_type, subject_id, payload} with
sorted keys, no white space, UTF-8 text, and ``time`` in UTC as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.
Chain: SHA-256(previous chain ‖ leaf) over the raw 32-byte digests, from 32 zero bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from flask import Flask
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

import registry.patents.services as patent_services
from registry.accounts.models import ApiToken, Organisation, User
from registry.audit import services as audit_services
from registry.audit.models import AuditEvent, AuditHead
from registry.patents.models import Patent
from tests.conftest import Api, TransactionalDatabase
from tests.factories import PASSWORD, Factory, make_application_number, make_uscc
from tests.factories.world import Member, World, build_world

ZERO_CHAIN = "00" * 32
EVENTS = cast(Table, AuditEvent.__table__)
HEADS = cast(Table, AuditHead.__table__)


# Independent re-implementation of the published hash format ----------------------------------


def canonical(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def instant(value: str | datetime) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert moment.tzinfo is not None, "event times carry their zone"
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def leaf_of(event: Mapping[str, Any]) -> str:
    """The leaf hash of an event as GET /audit/events shows it."""
    document = {
        "seq": event["seq"],
        "time": instant(event["event_dt"]),
        "actor": event["actor_id"],
        "actor_organisation": event["actor_organisation_id"],
        "action": event["action"],
        "subject_type": event["subject_type"],
        "subject_id": event["subject_id"],
        "payload": event["payload"],
    }
    return hashlib.sha256(b"\x00" + canonical(document)).hexdigest()


def chain_of(previous: str, leaf: str) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + bytes.fromhex(leaf)).hexdigest()


def as_published(row: Any) -> dict[str, Any]:
    """A raw ``audit_events`` row in the shape the API publishes."""
    return {
        "seq": row.seq,
        "event_dt": row.event_dt.isoformat(),
        "actor_id": str(row.actor_id) if row.actor_id else None,
        "actor_organisation_id": (
            str(row.actor_organisation_id) if row.actor_organisation_id else None
        ),
        "action": row.action,
        "subject_type": row.subject_type,
        "subject_id": row.subject_id,
        "payload": json.loads(row.payload),
    }


# Reading the log through the API -----------------------------------------------------------


class AuditLog:
    """GET /audit/events as an auditor, all pages."""

    def __init__(self, api: Api, token: str) -> None:
        self.api = api.as_(token)

    def events(self, **query: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            response = self.api.get(
                "/audit/events", query_string={**query, "page": page, "page_size": 100}
            )
            assert response.status_code == 200, response.json
            out += response.json
            if "next_page" not in json.loads(response.headers["X-Pagination"]):
                return out
            page += 1

    def last_seq(self) -> int:
        events = self.events()
        return events[-1]["seq"] if events else 0

    def since(self, seq: int) -> list[dict[str, Any]]:
        return self.events(after_seq=seq)

    def verdict(self) -> dict[str, Any]:
        response = self.api.get("/audit/verify")
        assert response.status_code == 200, response.json
        return dict(response.json)


@pytest.fixture
def world(factory: Factory) -> World:
    return build_world(factory)


@pytest.fixture
def log(api: Api, world: World) -> AuditLog:
    return AuditLog(api, world.auditor.token)


def only_new_event(log: AuditLog, before: int) -> dict[str, Any]:
    """The one event appended since ``before``; fails if there are none or several."""
    new = log.since(before)
    assert [e["seq"] for e in new] == [before + 1], [e["action"] for e in new]
    return new[0]


def assert_event(
    event: dict[str, Any],
    *,
    action: str,
    subject_type: str,
    subject_id: object,
    actor: Member | User | None,
) -> None:
    user = actor.user if isinstance(actor, Member) else actor
    assert event["action"] == action
    assert event["subject_type"] == subject_type
    assert event["subject_id"] == str(subject_id)
    assert event["actor_id"] == (str(user.id) if user else None)
    assert event["actor_organisation_id"] == (str(user.organisation_id) if user else None)


# One event per state change -------------------------------------------------------------------


def test_creating_an_organisation_appends_one_event(api: Api, world: World, log: AuditLog) -> None:
    before = log.last_seq()
    body = {
        "name": "某某新材料有限公司",
        "name_en": "Some New Materials Co., Ltd.",
        "kind": "enterprise",
        "uscc": make_uscc(),
        "size": "small",
        "is_sme": True,
    }
    response = api.as_(world.admin.token).post("/organisations", json=body)
    assert response.status_code == 201, response.json

    event = only_new_event(log, before)
    assert_event(
        event,
        action="organisation.created",
        subject_type="organisation",
        subject_id=response.json["id"],
        actor=world.admin,
    )
    assert event["payload"] == body


def test_creating_a_user_appends_one_event_without_the_password(
    api: Api, world: World, log: AuditLog, session: Session
) -> None:
    before = log.last_seq()
    body = {"email": "New.Colleague@Uni-A.test", "name": "新同事", "role": "tto"}
    response = api.as_(world.tto.token).post(
        f"/organisations/{world.university.id}/users", json={**body, "password": PASSWORD}
    )
    assert response.status_code == 201, response.json

    event = only_new_event(log, before)
    assert_event(
        event,
        action="user.created",
        subject_type="user",
        subject_id=response.json["id"],
        actor=world.tto,
    )
    assert event["payload"] == {
        "email": "new.colleague@uni-a.test",
        "name": "新同事",
        "role": "tto",
        "organisation_id": str(world.university.id),
    }
    stored = session.scalar(select(EVENTS.c.payload).where(EVENTS.c.seq == event["seq"]))
    password_hash = session.scalar(
        select(User.password_hash).where(User.email == body["email"].lower())
    )
    assert stored
    assert password_hash
    assert PASSWORD not in stored
    assert password_hash not in stored


def test_issuing_and_revoking_a_token_append_one_event_each(
    api: Api, world: World, log: AuditLog, session: Session
) -> None:
    before = log.last_seq()
    issued = api.post("/tokens", json={"email": world.tto.user.email, "password": PASSWORD})
    assert issued.status_code == 201, issued.json
    token = issued.json["token"]
    api_token = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == hashlib.sha256(token.encode()).hexdigest())
    ).one()

    event = only_new_event(log, before)
    assert_event(
        event,
        action="token.issued",
        subject_type="api_token",
        subject_id=api_token.id,
        actor=world.tto,
    )
    assert event["payload"]["prefix"] == token[:12]
    assert datetime.fromisoformat(event["payload"]["expires_dt"]) == datetime.fromisoformat(
        issued.json["expires_dt"]
    )
    assert set(event["payload"]) == {"prefix", "expires_dt"}

    before = log.last_seq()
    revoked = api.as_(token).delete("/tokens/current")
    assert revoked.status_code == 204
    event = only_new_event(log, before)
    assert_event(
        event,
        action="token.revoked",
        subject_type="api_token",
        subject_id=api_token.id,
        actor=world.tto,
    )
    assert event["payload"] == {"prefix": token[:12]}
    # The secret itself is nowhere in the log.
    assert all(token not in json.dumps(e) for e in log.events())


def test_registering_a_patent_appends_one_event(
    api: Api, world: World, log: AuditLog, factory: Factory
) -> None:
    before = log.last_seq()
    body = factory.patent_data(title="一种测试用的电池隔膜", abstract="摘要", ipc=["h01m 50/403"])
    response = api.as_(world.tto.token).post("/patents", json=body)
    assert response.status_code == 201, response.json
    patent = response.json

    event = only_new_event(log, before)
    assert_event(
        event,
        action="patent.created",
        subject_type="patent",
        subject_id=patent["id"],
        actor=world.tto,
    )
    payload = event["payload"]
    assert payload["application_number"] == patent["application_number"]
    assert payload["patent_type"] == "invention"
    assert payload["title"] == "一种测试用的电池隔膜"
    assert payload["abstract"] == "摘要"
    assert payload["ipc"] == patent["ipc"] == ["H01M 50/403"]
    assert payload["filing_date"] == body["filing_date"]
    assert payload["grant_date"] == body["grant_date"]
    assert payload["expiry_date"] == patent["expiry_date"]
    assert payload["legal_status"] == patent["legal_status"]
    assert payload["owner_organisation_id"] == str(world.university.id)


def _etag(api: Api, member: Member, patent_id: uuid.UUID) -> str:
    response = api.as_(member.token).get(f"/patents/{patent_id}")
    assert response.status_code == 200, response.json
    return str(response.headers["ETag"])


def test_correcting_a_patent_appends_one_event_with_old_and_new_values(
    api: Api, world: World, log: AuditLog
) -> None:
    patent = world.patents[world.university.id]
    old_title = patent.title
    tto = api.as_(world.tto.token)
    before = log.last_seq()
    response = tto.patch(
        f"/patents/{patent.id}",
        json={"title": "更正后的标题", "title_en": "Corrected title"},
        headers={"If-Match": _etag(api, world.tto, patent.id)},
    )
    assert response.status_code == 200, response.json

    event = only_new_event(log, before)
    assert_event(
        event, action="patent.updated", subject_type="patent", subject_id=patent.id, actor=world.tto
    )
    assert event["payload"] == {
        "changes": {"title": [old_title, "更正后的标题"], "title_en": [None, "Corrected title"]},
        "version": response.json["version"],
    }

    # Sending the values the record already has changes nothing and records nothing.
    before = log.last_seq()
    same = tto.patch(
        f"/patents/{patent.id}",
        json={"title": "更正后的标题"},
        headers={"If-Match": response.headers["ETag"]},
    )
    assert same.status_code == 200, same.json
    assert log.since(before) == []


def test_setting_owners_appends_one_event_with_before_and_after(
    api: Api, world: World, log: AuditLog
) -> None:
    patent = world.patents[world.university.id]
    before = log.last_seq()
    response = api.as_(world.tto.token).put(
        f"/patents/{patent.id}/owners",
        json={
            "owners": [
                {
                    "organisation_id": str(world.university.id),
                    "title_share": "66.67",
                    "income_share": "50",
                },
                {
                    "organisation_id": str(world.enterprise.id),
                    "title_share": "33.33",
                    "income_share": "30",
                    "basis": "cooperation_agreement",
                    "clause_set": "joint",
                    "agreement_ref": "合作协议-2021-07",
                },
            ],
            "beneficiaries": [
                {
                    "name": "课题组",
                    "basis": "income_right_transfer",
                    "income_share": "20",
                    "valid_from": "2024-01-01",
                }
            ],
            "decision_rules": {"open_licence": "majority_title_share"},
        },
    )
    assert response.status_code == 200, response.json

    event = only_new_event(log, before)
    assert_event(
        event,
        action="patent.ownership_set",
        subject_type="patent",
        subject_id=patent.id,
        actor=world.tto,
    )
    payload = event["payload"]
    assert payload["version"] == response.json["version"]
    assert [
        (o["organisation_id"], o["title_share"], o["income_share"])
        for o in payload["before"]["owners"]
    ] == [(str(world.university.id), "100.00", "100.00")]
    assert [
        (o["organisation_id"], o["title_share"], o["income_share"], o["clause_set"])
        for o in payload["after"]["owners"]
    ] == [
        (str(world.university.id), "66.67", "50.00", None),
        (str(world.enterprise.id), "33.33", "30.00", "joint"),
    ]
    assert [(b["name"], b["income_share"]) for b in payload["after"]["beneficiaries"]] == [
        ("课题组", "20.00")
    ]
    assert payload["after"]["decision_rules"]["open_licence"] == "majority_title_share"


def test_setting_inventors_appends_one_event(api: Api, world: World, log: AuditLog) -> None:
    patent = world.patents[world.university.id]
    before = log.last_seq()
    response = api.as_(world.tto.token).put(
        f"/patents/{patent.id}/inventors",
        json={
            "inventors": [
                {"name": "张三", "share": "60", "organisation_id": str(world.university.id)},
                {"name": "李四", "share": "40"},
            ]
        },
    )
    assert response.status_code == 200, response.json

    event = only_new_event(log, before)
    assert_event(
        event,
        action="patent.inventors_set",
        subject_type="patent",
        subject_id=patent.id,
        actor=world.tto,
    )
    assert event["payload"] == {
        "before": [],
        "after": [
            {"name": "张三", "share": "60.00", "organisation_id": str(world.university.id)},
            {"name": "李四", "share": "40.00", "organisation_id": None},
        ],
        "version": response.json["version"],
    }


def test_adding_and_releasing_an_encumbrance_append_one_event_each(
    api: Api, world: World, log: AuditLog
) -> None:
    patent = world.patents[world.university.id]
    tto = api.as_(world.tto.token)
    before = log.last_seq()
    added = tto.post(
        f"/patents/{patent.id}/encumbrances",
        json={
            "kind": "exclusive_licence",
            "start_date": "2025-01-01",
            "end_date": "2027-12-31",
            "holder": "某某公司",
            "reference": "独占许可备案-2025-001",
        },
    )
    assert added.status_code == 201, added.json
    event = only_new_event(log, before)
    assert_event(
        event,
        action="patent.encumbrance_added",
        subject_type="patent",
        subject_id=patent.id,
        actor=world.tto,
    )
    assert event["payload"] == {
        "encumbrance_id": added.json["id"],
        "kind": "exclusive_licence",
        "start_date": "2025-01-01",
        "end_date": "2027-12-31",
        "holder": "某某公司",
        "reference": "独占许可备案-2025-001",
        "version": event["payload"]["version"],
    }

    before = log.last_seq()
    released = tto.delete(
        f"/patents/{patent.id}/encumbrances/{added.json['id']}",
        query_string={"reason": "许可合同解除"},
    )
    assert released.status_code == 200, released.json
    event = only_new_event(log, before)
    assert_event(
        event,
        action="patent.encumbrance_released",
        subject_type="patent",
        subject_id=patent.id,
        actor=world.tto,
    )
    assert event["payload"]["encumbrance_id"] == added.json["id"]
    assert event["payload"]["reason"] == "许可合同解除"


def test_setting_the_reward_policy_appends_one_event(api: Api, world: World, log: AuditLog) -> None:
    before = log.last_seq()
    response = api.as_(world.tto.token).put(
        f"/organisations/{world.university.id}/reward-policy",
        json={
            "inventor_share": "40",
            "policy_reference": "甲大学科技成果转化管理办法（2023）第十二条",
            "deductions": ["taxes", "maintenance_fees"],
            "remainder_split": [
                {"recipient": "学校", "share": "50"},
                {"recipient": "学院", "share": "50"},
            ],
        },
    )
    assert response.status_code == 200, response.json
    event = only_new_event(log, before)
    assert_event(
        event,
        action="reward_policy.set",
        subject_type="organisation",
        subject_id=world.university.id,
        actor=world.tto,
    )
    assert event["payload"] == {
        "inventor_share": "40.00",
        "policy_reference": "甲大学科技成果转化管理办法（2023）第十二条",
        "deductions": ["maintenance_fees", "taxes"],
        "remainder_split": [
            {"recipient": "学校", "share": "50.00"},
            {"recipient": "学院", "share": "50.00"},
        ],
    }


def _csv(*numbers: str) -> bytes:
    lines = ["application_number,patent_type,title,filing_date"]
    lines += [f"{number},invention,导入的专利,2021-03-15" for number in numbers]
    return ("\n".join(lines) + "\n").encode("utf-8")


def test_an_import_appends_one_event_per_patent_and_a_dry_run_none(
    api: Api, world: World, log: AuditLog
) -> None:
    numbers = [make_application_number(2021, "1") for _ in range(2)]
    tto = api.as_(world.tto.token)

    before = log.last_seq()
    dry = tto.post(
        "/patents/import",
        query_string={"dry_run": "true"},
        data={"file": (io.BytesIO(_csv(*numbers)), "patents.csv")},
    )
    assert dry.status_code == 200, dry.json
    assert log.since(before) == []

    imported = tto.post(
        "/patents/import", data={"file": (io.BytesIO(_csv(*numbers)), "patents.csv")}
    )
    assert imported.status_code == 200, imported.json
    events = log.since(before)
    assert [e["seq"] for e in events] == [before + 1, before + 2]
    assert [e["action"] for e in events] == ["patent.created"] * 2
    assert [e["subject_id"] for e in events] == imported.json["patent_ids"]
    assert [e["payload"]["application_number"] for e in events] == numbers


# Refused and failed calls leave no trace ----------------------------------------------------


def _bad_calls(world: World, factory: Factory) -> dict[str, tuple[str, str, str, dict[str, Any]]]:
    patent = world.patents[world.university.id]
    taken = patent.application_number
    return {
        "malformed IPC": (
            world.tto.token,
            "POST",
            "/patents",
            {"json": factory.patent_data(ipc=["H01M4587"])},
        ),
        "duplicate application number": (
            world.tto.token,
            "POST",
            "/patents",
            {"json": factory.patent_data(application_number=taken)},
        ),
        "shares summing to 99.99": (
            world.tto.token,
            "PUT",
            f"/patents/{patent.id}/owners",
            {
                "json": {
                    "owners": [
                        {
                            "organisation_id": str(world.university.id),
                            "title_share": "99.99",
                            "income_share": "100",
                        }
                    ]
                }
            },
        ),
        "TTO creating an organisation": (
            world.tto.token,
            "POST",
            "/organisations",
            {"json": {"name": "某大学", "kind": "university", "uscc": make_uscc()}},
        ),
        "wrong password": (
            "",
            "POST",
            "/tokens",
            {"json": {"email": world.tto.user.email, "password": "wrong!"}},
        ),
        "other organisation's patent": (
            world.tto.token,
            "PUT",
            f"/patents/{world.patents[world.other_university.id].id}/inventors",
            {"json": {"inventors": [{"name": "王五", "share": "100"}]}},
        ),
        "bad import row": (
            world.tto.token,
            "POST",
            "/patents/import",
            {
                "data": {
                    "file": (
                        io.BytesIO(_csv(make_application_number(), "2021100000001.0")),
                        "patents.csv",
                    )
                }
            },
        ),
    }


BAD_CALLS = {  # name: the status it must get
    "malformed IPC": 422,
    "duplicate application number": 409,
    "shares summing to 99.99": 422,
    "TTO creating an organisation": 403,
    "wrong password": 401,
    "other organisation's patent": 404,
    "bad import row": 422,
}


@pytest.mark.parametrize("name", BAD_CALLS)
def test_a_refused_call_appends_nothing(
    name: str, api: Api, world: World, log: AuditLog, factory: Factory, session: Session
) -> None:
    token, method, path, kwargs = _bad_calls(world, factory)[name]
    before = log.last_seq()
    patents = session.scalar(select(func.count()).select_from(Patent))
    organisations = session.scalar(select(func.count()).select_from(Organisation))

    response = api.as_(token or None)._call(method, path, **kwargs)

    assert response.status_code == BAD_CALLS[name], response.json
    assert log.since(before) == []
    assert log.verdict()["size"] == before
    assert session.scalar(select(func.count()).select_from(Patent)) == patents
    assert session.scalar(select(func.count()).select_from(Organisation)) == organisations


def test_the_change_and_its_event_commit_together(
    api: Api,
    world: World,
    log: AuditLog,
    factory: Factory,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def failing_record(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr(patent_services, "record", failing_record)
    before = log.last_seq()
    body = factory.patent_data()
    response = api.as_(world.tto.token).post("/patents", json=body)

    assert response.status_code == 500
    assert response.json["code"] == "internal_error"
    assert log.since(before) == []
    assert (
        session.scalar(
            select(func.count())
            .select_from(Patent)
            .where(Patent.application_number == body["application_number"])
        )
        == 0
    )


# The chain ------------------------------------------------------------------------------------


def test_leaf_format_known_answer() -> None:
    """The leaf format is frozen: an auditor's old hashes must keep verifying."""
    event_dt = datetime(2026, 11, 26, 8, 30, 0, 123456, tzinfo=UTC)
    payload = {"title": "一种电池", "share": "33.34", "n": 1, "ipc": ["H01M 4/587"]}
    published: dict[str, Any] = {
        "seq": 7,
        "event_dt": "2026-11-26T16:30:00.123456+08:00",
        "actor_id": "6f1c1f8e-0000-4000-8000-000000000001",
        "actor_organisation_id": None,
        "action": "patent.created",
        "subject_type": "patent",
        "subject_id": "P-1",
        "payload": payload,
    }
    expected = leaf_of(published)
    assert expected == "c46a0816d760dfb3a599a391708e211337261972e1b44c7f4bf4b6bae04816fd"
    text_form = (
        '{"action":"patent.created","actor":"6f1c1f8e-0000-4000-8000-000000000001",'
        '"actor_organisation":null,"payload":{"ipc":["H01M 4/587"],"n":1,"share":"33.34",'
        '"title":"一种电池"},"seq":7,"subject_id":"P-1","subject_type":"patent",'
        '"time":"2026-11-26T08:30:00.123456Z"}'
    )
    assert expected == hashlib.sha256(b"\x00" + text_form.encode("utf-8")).hexdigest()
    built = audit_services.canonical_event(
        seq=7,
        event_dt=event_dt,
        actor_id=uuid.UUID("6f1c1f8e-0000-4000-8000-000000000001"),
        actor_organisation_id=None,
        action="patent.created",
        subject_type="patent",
        subject_id="P-1",
        payload=payload,
    )
    assert built.decode("utf-8") == text_form
    assert audit_services.leaf_hash(built) == expected
    first_chain = "9555b52d9f54024065e09521ef03949e521e1a556fad4ba07c4261b721e2bf24"
    assert chain_of(ZERO_CHAIN, expected) == first_chain
    assert audit_services.chain_hash(ZERO_CHAIN, expected) == first_chain


def test_every_event_hashes_and_chains_as_published(
    api: Api, world: World, log: AuditLog, session: Session
) -> None:
    # A few more kinds of change on top of the world's own events.
    admin = api.as_(world.admin.token)
    assert (
        admin.post(
            "/tokens", json={"email": world.licensee.user.email, "password": PASSWORD}
        ).status_code
        == 201
    )
    assert (
        api.as_(world.other_tto.token)
        .put(
            f"/patents/{world.patents[world.other_university.id].id}/inventors",
            json={"inventors": [{"name": "王五", "share": "100"}]},
        )
        .status_code
        == 200
    )

    events = log.events()
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    previous = ZERO_CHAIN
    for event in events:
        assert event["leaf_hash"] == leaf_of(event), event["seq"]
        assert event["chain_hash"] == chain_of(previous, event["leaf_hash"]), event["seq"]
        previous = event["chain_hash"]
    # The stored payload is exactly the canonical text of what the API shows.
    stored = {
        seq: payload for seq, payload in session.execute(select(EVENTS.c.seq, EVENTS.c.payload))
    }
    assert all(stored[e["seq"]] == canonical(e["payload"]).decode() for e in events)
    verdict = log.verdict()
    assert verdict == {
        "ok": True,
        "size": len(events),
        "chain_hash": previous,
        "first_bad_seq": None,
        "problem": None,
    }


# Reading the log --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/audit/events", "/audit/verify"])
def test_only_admins_and_auditors_read_the_log(api: Api, world: World, path: str) -> None:
    assert api.get(path).status_code == 401
    assert api.as_("olr_not-a-real-token").get(path).status_code == 401
    for member in (world.admin, world.auditor):
        assert api.as_(member.token).get(path).status_code == 200
    for member in (world.tto, world.licensee):
        response = api.as_(member.token).get(path)
        assert response.status_code == 403
        assert response.json["code"] == "forbidden"


def test_events_filter_by_subject_and_action(api: Api, world: World, log: AuditLog) -> None:
    patent = world.patents[world.university.id]
    everything = log.events()

    mine = log.events(subject_type="patent", subject_id=str(patent.id))
    assert [e["action"] for e in mine] == ["patent.created", "patent.encumbrance_added"]
    assert all(e["subject_id"] == str(patent.id) for e in mine)

    tokens = log.events(action="token.issued")
    assert tokens == [e for e in everything if e["action"] == "token.issued"]
    assert len(tokens) == 5

    organisations = log.events(subject_type="organisation")
    assert organisations == [e for e in everything if e["subject_type"] == "organisation"]
    assert log.events(action="no.such.action") == []
    assert log.events(after_seq=len(everything) - 2) == everything[-2:]


def test_events_are_paginated(api: Api, world: World, log: AuditLog) -> None:
    everything = log.events()
    auditor = api.as_(world.auditor.token)
    first = auditor.get("/audit/events", query_string={"page_size": 5})
    second = auditor.get("/audit/events", query_string={"page_size": 5, "page": 2})
    assert first.status_code == second.status_code == 200
    assert first.json + second.json == everything[:10]
    pagination = json.loads(first.headers["X-Pagination"])
    assert pagination["total"] == len(everything)
    assert pagination["total_pages"] == -(-len(everything) // 5)
    assert pagination["next_page"] == 2
    for bad in ({"page_size": 0}, {"page": 0}, {"after_seq": -1}, {"page_size": "many"}):
        response = auditor.get("/audit/events", query_string=bad)
        assert response.status_code == 422, bad
        assert response.json["errors"][0]["field"] == next(iter(bad))


# Tampering is named ----------------------------------------------------------------------------


def lift_append_only_guard(connection: Connection) -> None:
    """What an operator with DDL rights could do; undone when the test's transaction rolls back."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("DROP TRIGGER audit_events_no_update")
        connection.exec_driver_sql("DROP TRIGGER audit_events_no_delete")
    else:
        connection.exec_driver_sql(
            "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"
        )


def _row(connection: Connection, seq: int) -> Any:
    return connection.execute(select(EVENTS).where(EVENTS.c.seq == seq)).one()


def _set(connection: Connection, at: int, **values: Any) -> None:
    connection.execute(update(EVENTS).where(EVENTS.c.seq == at).values(**values))


def _edit_payload(connection: Connection, seq: int) -> None:
    payload = json.loads(_row(connection, seq).payload)
    payload["title"] = "篡改后的标题"
    _set(connection, seq, payload=canonical(payload).decode())


def _rehash(connection: Connection, seq: int) -> None:
    """A forger who also recomputes the edited event's own leaf and chain hash."""
    _edit_payload(connection, seq)
    leaf = leaf_of(as_published(_row(connection, seq)))
    _set(
        connection,
        seq,
        leaf_hash=leaf,
        chain_hash=chain_of(_row(connection, seq - 1).chain_hash, leaf),
    )


def _swap(connection: Connection, seq: int) -> None:
    _set(connection, seq, seq=1_000_000 + seq)
    _set(connection, seq + 1, seq=seq)
    _set(connection, 1_000_000 + seq, seq=seq + 1)


def _append_forged(connection: Connection, last: int) -> None:
    event: dict[str, Any] = {
        "seq": last + 1,
        "event_dt": datetime.now(UTC).isoformat(),
        "actor_id": None,
        "actor_organisation_id": None,
        "action": "patent.created",
        "subject_type": "patent",
        "subject_id": str(uuid.uuid4()),
        "payload": {"title": "伪造"},
    }
    leaf = leaf_of(event)
    connection.execute(
        insert(EVENTS).values(
            seq=last + 1,
            event_dt=datetime.fromisoformat(event["event_dt"]),
            action=event["action"],
            subject_type="patent",
            subject_id=event["subject_id"],
            payload=canonical(event["payload"]).decode(),
            leaf_hash=leaf,
            chain_hash=chain_of(_row(connection, last).chain_hash, leaf),
        )
    )


K = 9  # the second patent.created event of the world


Tamper = Callable[[Connection, int], object]
TAMPERING: dict[str, tuple[Tamper, Callable[[int], int], str]] = {
    # name: (what is done, given N events; the seq verify must name; words in its problem)
    "payload edited": (lambda c, n: _edit_payload(c, K), lambda n: K, "leaf hash"),
    "payload re-spaced": (
        lambda c, n: _set(c, K, payload=_row(c, K).payload.replace(",", ", ")),
        lambda n: K,
        "canonical",
    ),
    "action edited": (lambda c, n: _set(c, K, action="patent.withdrawn"), lambda n: K, "leaf"),
    "time moved by 1 µs": (
        lambda c, n: _set(c, K, event_dt=_row(c, K).event_dt + timedelta(microseconds=1)),
        lambda n: K,
        "leaf",
    ),
    "actor replaced": (lambda c, n: _set(c, K, actor_id=uuid.uuid4()), lambda n: K, "leaf"),
    "actor organisation replaced": (
        lambda c, n: _set(c, K, actor_organisation_id=uuid.uuid4()),
        lambda n: K,
        "leaf",
    ),
    "subject replaced": (
        lambda c, n: _set(c, K, subject_id=str(uuid.uuid4())),
        lambda n: K,
        "leaf",
    ),
    "leaf hash replaced": (
        lambda c, n: _set(c, K, leaf_hash=hashlib.sha256(b"forged").hexdigest()),
        lambda n: K,
        "leaf",
    ),
    "event deleted in the middle": (
        lambda c, n: c.execute(delete(EVENTS).where(EVENTS.c.seq == K)),
        lambda n: K,
        "missing",
    ),
    "last event deleted": (
        lambda c, n: c.execute(delete(EVENTS).where(EVENTS.c.seq == n)),
        lambda n: n,
        "missing",
    ),
    "two events swapped": (lambda c, n: _swap(c, K), lambda n: K, "leaf"),
    "edited event rehashed": (lambda c, n: _rehash(c, K), lambda n: K + 1, "chain"),
    "forged event appended": (_append_forged, lambda n: n + 1, "not covered"),
    "head rewound": (
        lambda c, n: c.execute(
            update(HEADS).values(size=n - 1, chain_hash=_row(c, n - 1).chain_hash)
        ),
        lambda n: n,
        "not covered",
    ),
    "head chain replaced": (
        lambda c, n: c.execute(update(HEADS).values(chain_hash=hashlib.sha256(b"x").hexdigest())),
        lambda n: n,
        "does not match the log head",
    ),
    "head deleted": (lambda c, n: c.execute(delete(HEADS)), lambda n: 1, "head is missing"),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_verify_names_the_first_tampered_event(
    name: str, app: Flask, db: TransactionalDatabase, world: World, log: AuditLog
) -> None:
    tamper, first_bad, words = TAMPERING[name]
    runner = app.test_cli_runner()
    n = log.last_seq()
    assert n >= K + 1
    clean = runner.invoke(args=["audit", "verify"])
    assert clean.exit_code == 0, clean.output
    assert f"ok: {n} events" in clean.output

    lift_append_only_guard(db.connection)
    tamper(db.connection, n)

    expected = first_bad(n)
    verdict = log.verdict()
    assert verdict["ok"] is False
    assert verdict["first_bad_seq"] == expected, verdict
    assert words in verdict["problem"], verdict
    assert verdict["size"] == (expected - 1 if name != "forged event appended" else n)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1, result.output
    assert f"BROKEN at event {expected}:" in result.output


def test_verify_flags_a_doctored_head_on_an_empty_log(
    app: Flask, db: TransactionalDatabase
) -> None:
    runner = app.test_cli_runner()
    clean = runner.invoke(args=["audit", "verify"])
    assert clean.exit_code == 0, clean.output
    assert f"ok: 0 events, chain head {ZERO_CHAIN}" in clean.output

    db.connection.execute(update(HEADS).values(chain_hash=hashlib.sha256(b"x").hexdigest()))

    with db.session(write=False) as session:
        verdict = audit_services.verify(session)
    assert (verdict.ok, verdict.size, verdict.first_bad_seq) == (False, 0, None)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN: the log head says 0 events" in result.output


# Append-only in the database and in the ORM --------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'patent.withdrawn' WHERE seq = 1",
        "UPDATE audit_events SET seq = seq + 100",
        "DELETE FROM audit_events WHERE seq = 1",
        "DELETE FROM audit_events",
    ],
)
def test_the_database_refuses_to_rewrite_events(
    statement: str, db: TransactionalDatabase, world: World, log: AuditLog
) -> None:
    connection = db.connection
    before = log.events()
    savepoint = connection.begin_nested()
    with pytest.raises(DBAPIError, match="append-only"):
        connection.exec_driver_sql(statement)
    savepoint.rollback()
    assert log.events() == before
    assert log.verdict()["ok"] is True


def test_the_database_refuses_to_truncate_events(
    db: TransactionalDatabase, world: World, log: AuditLog
) -> None:
    connection = db.connection
    before = log.events()
    savepoint = connection.begin_nested()
    statement = (
        "TRUNCATE audit_events"
        if connection.dialect.name == "postgresql"
        else "DELETE FROM audit_events"  # SQLite's TRUNCATE
    )
    with pytest.raises(DBAPIError, match="append-only"):
        connection.exec_driver_sql(statement)
    savepoint.rollback()
    assert log.events() == before


def test_the_orm_refuses_to_rewrite_events(
    db: TransactionalDatabase, world: World, log: AuditLog
) -> None:
    before = log.events()
    with db.session(write=True) as session:
        event = session.get_one(AuditEvent, 1)
        event.action = "patent.withdrawn"
        with pytest.raises(RuntimeError, match="append-only"):
            session.flush()
        session.rollback()

        session.delete(session.get_one(AuditEvent, 2))
        with pytest.raises(RuntimeError, match="append-only"):
            session.flush()
        session.rollback()

        # A bulk UPDATE skips the ORM's unit of work; the database trigger still refuses it.
        with pytest.raises(DBAPIError, match="append-only"):
            session.execute(update(AuditEvent).values(action="patent.withdrawn"))
        session.rollback()
    assert log.events() == before
    assert log.verdict()["ok"] is True


def test_no_route_rewrites_events(app: Flask) -> None:
    """The log is read over HTTP; the one write is issuing a checkpoint, which appends."""
    writes = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/audit")
        for method in rule.methods or ()
        if method not in {"GET", "HEAD", "OPTIONS"}
    }
    assert writes == {("POST", "/api/v1/audit/checkpoints")}


def test_appending_rereads_a_head_it_already_holds(
    api: Api, world: World, log: AuditLog, factory: Factory, session: Session
) -> None:
    """A session that read the head before another writer appended must not reuse its seq."""
    held = session.get_one(AuditHead, 1)  # kept in this session's identity map
    seen = held.size
    assert (
        api.post("/tokens", json={"email": world.tto.user.email, "password": PASSWORD}).status_code
        == 201
    )  # appended through another session

    factory.token(world.tto.user)

    assert held.size == seen + 2
    assert [e["seq"] for e in log.events()] == list(range(1, seen + 3))
    assert log.verdict()["ok"] is True
