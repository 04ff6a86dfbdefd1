"""``Idempotency-Key`` on take-ups (issue 3, item 7; reliability.md §1, T1, T2, T4): scoped to
the caller, a retry gets the stored response, the same key with another request answers 422,
malformed keys 400, and stored outcomes expire after 24 hours.

Concurrent duplicates (409 while the first runs) need a real server: tests/race/.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from registry.accounts.models import User
from registry.core.idempotency import RETENTION, IdempotencyRecord
from registry.licences.models import Licence
from registry.offers import services as offer_services
from registry.offers.models import Offer
from tests.conftest import Api
from tests.factories import Factory
from tests.factories import licences as lf

KEY = "3f1c9a52-7d4e-4b8a-9c61-0e2d5f7a8b90"


@dataclass
class Cast:
    factory: Factory
    session: Session
    api: Api
    tto: User
    sme_user: User
    sme_api: Api
    sme_token: str
    other_api: Api

    def offer(self) -> Offer:
        return lf.published_offer(self.factory, self.tto)

    def take_up(
        self, offer: Offer, key: str | None = KEY, client: Api | None = None, **body: Any
    ) -> Any:
        headers = {"Idempotency-Key": key} if key is not None else {}
        return (client or self.sme_api).post(
            f"/offers/{offer.id}/take-up", json=body or lf.notice(), headers=headers
        )


@pytest.fixture
def cast(factory: Factory, session: Session, api: Api) -> Cast:
    university = factory.organisation("university")
    _, sme_user, token = lf.enterprise_licensee(factory)
    _, _, other_token = lf.enterprise_licensee(factory)
    return Cast(
        factory=factory,
        session=session,
        api=api,
        tto=factory.user(university, "tto"),
        sme_user=sme_user,
        sme_api=api.as_(token),
        sme_token=token,
        other_api=api.as_(other_token),
    )


def _licences(session: Session) -> list[Licence]:
    lf.reread(session)
    return list(session.scalars(select(Licence)))


def test_a_retry_gets_the_stored_response_and_takes_nothing_twice(cast: Cast) -> None:
    offer = cast.offer()
    first = cast.take_up(offer)
    assert first.status_code == 201, first.json
    assert "Idempotent-Replayed" not in first.headers
    after_first = lf.counts(cast.session)

    for _ in range(3):
        retry = cast.take_up(offer)
        assert retry.status_code == 201
        assert retry.data == first.data  # byte for byte
        assert retry.headers["Idempotent-Replayed"] == "true"
    # One licence, one audit event, one offer version bump: the retries changed nothing.
    assert lf.counts(cast.session) == after_first
    assert [licence.id for licence in _licences(cast.session)] == [uuid.UUID(first.json["id"])]


def test_the_fingerprint_ignores_key_order_and_white_space(cast: Cast) -> None:
    offer = cast.offer()
    first = cast.take_up(offer)
    reordered = dict(reversed(list(lf.notice().items())))
    raw = cast.sme_api.post(
        f"/offers/{offer.id}/take-up",
        data="  " + json.dumps(reordered, ensure_ascii=False, indent=4),
        content_type="application/json",
        headers={"Idempotency-Key": KEY},
    )
    assert raw.status_code == 201
    assert raw.headers["Idempotent-Replayed"] == "true"
    assert raw.data == first.data


@pytest.mark.parametrize(
    "change",
    [
        {"intended_use": "改为用于储能电池"},
        {"notes": None},
        {"contact_email": "li@sme.example.cn"},
    ],
    ids=["use", "notes-dropped", "email"],
)
def test_the_same_key_with_another_body_is_refused(cast: Cast, change: dict[str, Any]) -> None:
    offer = cast.offer()
    assert cast.take_up(offer).status_code == 201
    before = lf.counts(cast.session)
    body = {k: v for k, v in {**lf.notice(), **change}.items() if v is not None}
    response = cast.take_up(offer, **body)
    assert response.status_code == 422, response.json
    assert response.json["code"] == "idempotency_key_reused"
    assert [e["field"] for e in response.json["errors"]] == ["Idempotency-Key"]
    assert lf.counts(cast.session) == before


def test_the_same_key_on_another_offer_is_refused(cast: Cast) -> None:
    assert cast.take_up(cast.offer()).status_code == 201
    other = cast.offer()
    before = lf.counts(cast.session)
    response = cast.take_up(other)
    assert response.status_code == 422
    assert response.json["code"] == "idempotency_key_reused"
    assert lf.counts(cast.session) == before


def test_keys_are_scoped_to_the_caller(cast: Cast) -> None:
    offer = cast.offer()
    mine = cast.take_up(offer)
    theirs = cast.take_up(offer, client=cast.other_api)
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.json["id"] != mine.json["id"]
    assert theirs.json["licensee_id"] != mine.json["licensee_id"]
    assert len(_licences(cast.session)) == 2


def test_without_a_key_a_retry_is_stopped_by_the_one_licence_rule(cast: Cast) -> None:
    offer = cast.offer()
    assert cast.take_up(offer, key=None).status_code == 201
    retry = cast.take_up(offer, key=None)
    assert retry.status_code == 409
    assert retry.json["code"] == "already_licensed"
    assert len(_licences(cast.session)) == 1


def test_a_refusal_by_the_operation_is_stored_too(cast: Cast) -> None:
    draft = lf.draft_offer(cast.factory, cast.tto)
    refused = cast.take_up(draft)
    assert refused.status_code == 409
    assert refused.json["code"] == "offer_not_published"
    # The offer is published afterwards: the key still answers what it answered.
    offer_services.publish(
        cast.session, actor=cast.factory.actor(cast.tto), offer_id=draft.id, attest=True
    )
    retry = cast.take_up(draft)
    assert retry.status_code == 409
    assert retry.data == refused.data
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert _licences(cast.session) == []
    # A new key is a new request.
    fresh = cast.take_up(draft, key=str(uuid.uuid4()))
    assert fresh.status_code == 201, fresh.json


def test_invalid_input_is_not_stored_so_the_corrected_request_runs(cast: Cast) -> None:
    offer = cast.offer()
    bad = cast.take_up(offer, **lf.notice(contact_email="nobody"))
    assert bad.status_code == 422
    assert cast.session.scalar(select(IdempotencyRecord)) is None
    good = cast.take_up(offer)
    assert good.status_code == 201, good.json
    assert "Idempotent-Replayed" not in good.headers


def test_a_refused_role_stores_nothing(cast: Cast) -> None:
    offer = cast.offer()
    tto_api = cast.api.as_(cast.factory.token(cast.tto))
    response = cast.take_up(offer, client=tto_api)
    assert response.status_code == 403
    lf.reread(cast.session)
    assert cast.session.scalar(select(IdempotencyRecord)) is None


def test_an_anonymous_key_is_refused_before_anything(cast: Cast) -> None:
    offer = cast.offer()
    before = lf.counts(cast.session)
    response = cast.take_up(offer, client=cast.api)
    assert response.status_code == 401
    assert lf.counts(cast.session) == before


def test_a_stored_outcome_expires_after_the_retention_period(cast: Cast) -> None:
    offer = cast.offer()
    first = cast.take_up(offer)
    assert first.status_code == 201
    [stored] = cast.session.scalars(select(IdempotencyRecord)).all()
    cast.session.execute(
        update(IdempotencyRecord).values(
            created_dt=stored.created_dt - RETENTION - timedelta(minutes=1)
        )
    )
    # The key runs afresh; the one-licence rule, not the key, now stops a duplicate.
    late = cast.take_up(offer)
    assert late.status_code == 409, late.json
    assert late.json["code"] == "already_licensed"
    assert "Idempotent-Replayed" not in late.headers
    assert len(_licences(cast.session)) == 1
    again = cast.take_up(offer)  # and that refusal is what the key now holds
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.data == late.data


@pytest.mark.parametrize(
    "key",
    [
        "short-key",  # under 16 characters
        "x" * 201,  # over 200
        "aaaaaaaaaaaaaaaaaaaaaaaa",  # guessable
        "0000000000000000001",  # guessable
        "含有中文的幂等键含有中文的幂等键",  # not ASCII
        "key with spaces in it 12345",
        "",
    ],
    ids=["short", "long", "one-letter", "digits", "chinese", "spaces", "empty"],
)
def test_a_malformed_key_is_refused(cast: Cast, key: str) -> None:
    offer = cast.offer()
    before = lf.counts(cast.session)
    response = cast.sme_api.post(
        f"/offers/{offer.id}/take-up",
        json=lf.notice(),
        headers={"Idempotency-Key": key.encode().decode("latin-1")},
    )
    assert response.status_code == 400, response.json
    assert response.json["code"] == "invalid_idempotency_key"
    assert [e["field"] for e in response.json["errors"]] == ["Idempotency-Key"]
    assert lf.counts(cast.session) == before


def test_two_keys_in_one_request_are_refused(cast: Cast) -> None:
    offer = cast.offer()
    before = lf.counts(cast.session)
    response = cast.sme_api.client.post(
        f"/api/v1/offers/{offer.id}/take-up",
        json=lf.notice(),
        headers=[
            ("Authorization", f"Bearer {cast.sme_token}"),
            ("Idempotency-Key", KEY),
            ("Idempotency-Key", str(uuid.uuid4())),
        ],
    )
    assert response.status_code == 400
    assert response.json["code"] == "invalid_idempotency_key"
    assert lf.counts(cast.session) == before


def test_a_structured_field_string_key_is_the_same_key(cast: Cast) -> None:
    offer = cast.offer()
    first = cast.take_up(offer)
    quoted = cast.take_up(offer, key=f'"{KEY}"')
    assert quoted.headers["Idempotent-Replayed"] == "true"
    assert quoted.data == first.data


def test_the_key_is_documented_in_the_api_description(api: Api) -> None:
    spec = api.get("/api/v1/openapi.json").json
    operation = spec["paths"]["/api/v1/offers/{offer_id}/take-up"]
    parameters = operation.get("parameters", []) + operation["post"].get("parameters", [])
    [header] = [p for p in parameters if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key"
    assert header["required"] is False
