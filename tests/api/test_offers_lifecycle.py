"""How an offer ends by itself, and the claim a take-up makes on it (issue 3, items 4 and 8).

A published offer expires at the end of its fixed term or of the patent's term, and lapses when
the patent lapses (reference/law.md A2). Reads show that at once; ``flask --app wsgi offers
expire`` stores it. ``claim_for_take_up`` is the conditional write on the offer row that orders a
take-up against a withdrawal (reliability.md §2.4).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from click.testing import Result
from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session

from registry.core import clock
from registry.core.errors import NotFound
from registry.offers import services
from registry.offers.models import Offer, OfferStatus
from tests.conftest import Api
from tests.factories import Factory
from tests.factories.offers import (
    draft,
    eligible_patent,
    events,
    published,
    refused,
    unchanged,
)


@pytest.fixture
def tto(factory: Factory) -> Any:
    return factory.user(factory.organisation("university", name="甲大学"), "tto")


@pytest.fixture
def tto_api(api: Api, factory: Factory, tto: Any) -> Api:
    return api.as_(factory.token(tto))


def run_expire(app: Flask) -> Result:
    result = app.test_cli_runner().invoke(args=["offers", "expire"])
    assert result.exit_code == 0, result.output
    return result


def travel(monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    """Make the registry's calendar (Beijing date) read ``day``."""
    monkeypatch.setattr(clock, "today", lambda: day)


def stored(session: Session, offer_id: Any) -> Offer:
    session.expire_all()
    offer = session.get(Offer, offer_id)
    assert offer is not None
    return offer


def test_an_offer_past_its_fixed_term_reads_expired_and_the_command_stores_it(
    app: Flask,
    api: Api,
    factory: Factory,
    session: Session,
    tto: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    last_day = clock.today() + timedelta(days=400)
    offer = published(factory, tto, term_years=..., term_end_date=last_day.isoformat())
    version = offer.version
    travel(monkeypatch, last_day)
    assert api.get(f"/offers/{offer.id}").json["status"] == "published"  # the last day counts
    travel(monkeypatch, last_day + timedelta(days=1))
    assert api.get(f"/offers/{offer.id}").json["status"] == "expired"
    assert stored(session, offer.id).status == OfferStatus.PUBLISHED  # a read writes nothing
    assert api.get("/offers").json == []
    listed = api.get("/offers", query_string={"status": "expired"}).json
    assert [o["id"] for o in listed] == [str(offer.id)]
    with pytest.raises(services.OfferNotPublished):
        services.claim_for_take_up(session, offer_id=offer.id)

    result = run_expire(app)
    assert f"{offer.gazette_number} {offer.id} expired" in result.output
    ended = stored(session, offer.id)
    assert ended.status == OfferStatus.EXPIRED
    assert ended.ended_date == last_day + timedelta(days=1)
    assert ended.version == version + 1
    (event,) = events(session, "offer.expired", offer.id)
    assert event.actor_id is None  # the registry's own act
    assert "0 offers ended" in run_expire(app).output  # nothing left to do
    assert len(events(session, "offer.expired")) == 1


def test_an_offer_ends_with_the_patent_s_term(
    app: Flask, api: Api, factory: Factory, session: Session, tto: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    expiry = clock.today() + timedelta(days=200)
    filing = (expiry + timedelta(days=1)).replace(year=expiry.year - 20)
    patent = eligible_patent(factory, tto, filing_date=filing)
    assert patent.expiry_date == expiry
    offer = published(factory, tto, patent, term_years=..., term_end_date=expiry.isoformat())
    travel(monkeypatch, expiry + timedelta(days=1))
    assert api.get(f"/offers/{offer.id}").json["status"] == "expired"
    run_expire(app)
    assert stored(session, offer.id).status == OfferStatus.EXPIRED


def test_a_lapsed_patent_lapses_its_offer(
    app: Flask, api: Api, factory: Factory, session: Session, tto: Any, tto_api: Api
) -> None:
    patent = eligible_patent(factory, tto)
    offer = published(factory, tto, patent)
    etag = tto_api.get(f"/patents/{patent.id}").headers["ETag"]
    response = tto_api.patch(
        f"/patents/{patent.id}", json={"legal_status": "lapsed_fees"}, headers={"If-Match": etag}
    )
    assert response.status_code == 200, response.json
    assert api.get(f"/offers/{offer.id}").json["status"] == "lapsed"
    with unchanged(session):
        refused(
            tto_api.post(f"/offers/{offer.id}/withdraw", json={"reason": "x"}),
            409,
            "status",
            code="invalid_transition",
        )
    with pytest.raises(services.OfferNotPublished):
        services.claim_for_take_up(session, offer_id=offer.id)
    assert "lapsed" in run_expire(app).output
    ended = stored(session, offer.id)
    assert ended.status == OfferStatus.LAPSED
    assert ended.ended_date == clock.today()
    assert len(events(session, "offer.lapsed", offer.id)) == 1


def test_the_command_leaves_drafts_and_live_offers_alone(
    app: Flask, factory: Factory, session: Session, tto: Any
) -> None:
    live = published(factory, tto)
    pending = draft(factory, tto, eligible_patent(factory, tto))
    with unchanged(session):
        assert "0 offers ended" in run_expire(app).output
    assert stored(session, live.id).status == OfferStatus.PUBLISHED
    assert stored(session, pending.id).status == OfferStatus.DRAFT


def test_a_patent_whose_offer_ended_can_be_declared_again(
    factory: Factory, session: Session, tto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    patent = eligible_patent(factory, tto)  # annual fees paid to the end of next year
    last_day = clock.today() + timedelta(days=200)
    first = published(factory, tto, patent, term_years=..., term_end_date=last_day.isoformat())
    travel(monkeypatch, last_day + timedelta(days=1))
    second = published(factory, tto, patent, term_years=1)
    assert second.status == OfferStatus.PUBLISHED
    assert stored(session, first.id).status == OfferStatus.EXPIRED  # stored on the way


# --- the take-up claim -----------------------------------------------------------------------


def test_a_claim_bumps_the_version_and_the_uptake(
    factory: Factory, session: Session, tto: Any
) -> None:
    offer = published(factory, tto)
    version = offer.version
    claimed = services.claim_for_take_up(session, offer_id=offer.id)
    assert (claimed.version, claimed.licence_count) == (version + 1, 1)
    again = services.claim_for_take_up(session, offer_id=offer.id)
    assert (again.version, again.licence_count) == (version + 2, 2)
    assert stored(session, offer.id).licence_count == 2


def test_only_a_published_offer_can_be_claimed(
    factory: Factory, session: Session, tto: Any
) -> None:
    pending = draft(factory, tto, eligible_patent(factory, tto))
    with pytest.raises(services.OfferNotPublished) as caught:
        services.claim_for_take_up(session, offer_id=pending.id)
    assert caught.value.code == "offer_not_published"
    assert caught.value.status == 409
    with pytest.raises(NotFound):
        services.claim_for_take_up(session, offer_id=uuid.uuid4())
    offer = published(factory, tto)
    services.withdraw(session, actor=factory.actor(tto), offer_id=offer.id, reason="技术更新")
    with pytest.raises(services.OfferNotPublished):
        services.claim_for_take_up(session, offer_id=offer.id)
    assert stored(session, offer.id).licence_count == 0


def test_a_withdrawal_committed_after_the_read_still_wins(
    factory: Factory, session: Session, tto: Any
) -> None:
    """The claim decides by its conditional UPDATE, not by what it read: an offer the session
    still holds as published but that another transaction withdrew is refused."""
    offer = published(factory, tto)
    assert offer.status == OfferStatus.PUBLISHED
    session.execute(
        update(Offer)
        .where(Offer.id == offer.id)
        .values(status=OfferStatus.WITHDRAWN, version=Offer.version + 1)
        .execution_options(synchronize_session=False)
    )
    assert offer.status == OfferStatus.PUBLISHED  # the stale view the claim starts from
    with pytest.raises(services.OfferNotPublished):
        services.claim_for_take_up(session, offer_id=offer.id)
    assert stored(session, offer.id).licence_count == 0


def test_a_licence_ends_with_its_term_or_the_patent(factory: Factory, tto: Any) -> None:
    offer = published(factory, tto, term_years=3)
    start = date(2027, 1, 15)
    assert services.offer_end_date(offer, start) == date(2030, 1, 14)
    assert services.effective_status(offer, start) == OfferStatus.PUBLISHED
    after = offer.patent.expiry_date + timedelta(days=1)
    assert services.effective_status(offer, after) == OfferStatus.EXPIRED
    late = offer.patent.expiry_date - timedelta(days=30)
    assert services.offer_end_date(offer, late) == offer.patent.expiry_date
