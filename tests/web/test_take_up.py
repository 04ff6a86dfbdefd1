"""An SME takes up a licence through the pages: notice, confirmation of the exact terms, the
licence made by the take-up service (once, however often the form is sent), its contract."""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.audit.models import AuditEvent
from registry.licences.models import Licence
from tests.factories import Factory
from tests.factories import licences as licence_factories
from tests.web.conftest import TITLE, Scene
from tests.web.pages import csrf_token, sign_in, text

KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


def licences(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Licence)) or 0)


def events(session: Session, action: str) -> int:
    return int(session.scalar(select(func.count()).where(AuditEvent.action == action)) or 0)


def form_key(client: FlaskClient, path: str) -> str:
    found = KEY.search(client.get(path).get_data(as_text=True))
    assert found
    return found.group(1)


def confirmation(client: FlaskClient, scene: Scene, key: str, **changes: Any) -> dict[str, Any]:
    return {
        **licence_factories.notice(),
        "step": "confirm",
        "agree": "yes",
        "terms_sha256": scene.offer.terms_sha256,
        "idempotency_key": key,
        "csrf_token": csrf_token(client),
        **changes,
    }


def test_an_sme_takes_the_licence_and_downloads_the_contract(
    client: FlaskClient, session: Session, scene: Scene
) -> None:
    path = f"/offers/{scene.offer.id}/take-up"
    sign_in(client, scene.sme.email)
    step1 = client.get(path)
    assert step1.status_code == 200
    assert "第 1 步" in text(step1)
    assert scene.sme.email in step1.get_data(as_text=True)  # the contact e-mail, prefilled
    key = KEY.search(step1.get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    notice = licence_factories.notice()
    review = client.post(
        path,
        data={**notice, "step": "review", "idempotency_key": key, "csrf_token": csrf_token(client)},
    )
    assert review.status_code == 200
    page = text(review)
    assert "确认许可条件" in page
    assert "人民币50,000.00元" in page  # the exact royalty clause
    assert scene.offer.terms_sha256 in page
    assert notice["intended_use"] in page
    assert licences(session) == 0  # nothing is taken before the confirmation

    unticked = client.post(path, data=confirmation(client, scene, key, agree=""))
    assert unticked.status_code == 422
    assert 'id="f-agree-error"' in unticked.get_data(as_text=True)
    assert licences(session) == 0

    taken = client.post(path, data=confirmation(client, scene, key))
    assert taken.status_code == 303
    licence = session.scalars(select(Licence)).one()
    assert taken.headers["Location"] == f"/licences/{licence.id}"
    assert licence.notice["intended_use"] == notice["intended_use"]
    assert licence.terms_sha256 == scene.offer.terms_sha256

    shown = client.get(f"/licences/{licence.id}")
    assert shown.status_code == 200
    assert licence.reference in text(shown)
    assert f'href="/licences/{licence.id}/contract.pdf"' in shown.get_data(as_text=True)
    pdf = client.get(f"/licences/{licence.id}/contract.pdf")
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF-")
    assert events(session, "contract.downloaded") == 1

    mine = client.get("/licences?lang=en")
    assert "My licences" in text(mine)
    assert licence.reference in text(mine)
    assert "Awaiting the upfront payment" in text(mine)


def test_a_second_submission_leads_to_the_same_licence(
    client: FlaskClient, session: Session, scene: Scene
) -> None:
    sign_in(client, scene.sme.email)
    path = f"/offers/{scene.offer.id}/take-up"
    key = form_key(client, path)
    first = client.post(path, data=confirmation(client, scene, key))
    again = client.post(path, data=confirmation(client, scene, key))
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    assert licences(session) == 1
    assert events(session, "licence.taken_up") == 1
    changed = client.post(
        path, data=confirmation(client, scene, key, intended_use="另作他用，规模不同")
    )
    assert changed.status_code == 422
    assert 'data-error-code="idempotency_key_reused"' in changed.get_data(as_text=True)
    assert licences(session) == 1


def test_notice_mistakes_are_shown_next_to_the_fields(
    client: FlaskClient, session: Session, scene: Scene
) -> None:
    sign_in(client, scene.sme.email)
    path = f"/offers/{scene.offer.id}/take-up"
    key = form_key(client, path)
    data = confirmation(client, scene, key, intended_use="", contact_email="not-an-address")
    response = client.post(path, data={**data, "step": "review"})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="f-intended_use-error"' in html
    assert "此项为必填项。" in html
    assert 'id="f-contact_email-error"' in html
    assert "不是有效的电子邮箱地址。" in html
    assert 'href="#f-intended_use"' in html  # the summary links to the field
    confirmed = client.post(path, data=data)
    assert confirmed.status_code == 422
    assert licences(session) == 0


def test_going_back_keeps_what_was_typed(client: FlaskClient, scene: Scene) -> None:
    sign_in(client, scene.sme.email)
    path = f"/offers/{scene.offer.id}/take-up"
    key = form_key(client, path)
    back = client.post(path, data=confirmation(client, scene, key, step="edit"))
    assert back.status_code == 200
    assert "第 1 步" in text(back)
    assert licence_factories.notice()["intended_use"] in back.get_data(as_text=True)
    assert key in back.get_data(as_text=True)


def test_changed_terms_are_shown_again(client: FlaskClient, session: Session, scene: Scene) -> None:
    sign_in(client, scene.sme.email)
    path = f"/offers/{scene.offer.id}/take-up"
    data = confirmation(client, scene, form_key(client, path), terms_sha256="0" * 64)
    response = client.post(path, data=data)
    assert response.status_code == 409
    assert "确认许可条件" in text(response)
    assert licences(session) == 0


def test_a_licence_already_held_is_shown_instead_of_the_form(
    client: FlaskClient, session: Session, factory: Factory, scene: Scene
) -> None:
    held = licence_factories.take_up(factory, scene.sme, scene.offer)
    sign_in(client, scene.sme.email)
    path = f"/offers/{scene.offer.id}/take-up"
    form = client.get(path)
    assert held.reference in text(form)
    assert 'name="intended_use"' not in form.get_data(as_text=True)
    assert held.reference in text(client.get(f"/offers/{scene.offer.id}"))
    again = client.post(path, data=confirmation(client, scene, str(uuid.uuid4())))
    assert again.status_code == 409
    assert "贵单位已持有此开放许可下的许可" in text(again)
    assert licences(session) == 1


def test_only_an_enterprise_licensee_is_offered_the_form(client: FlaskClient, scene: Scene) -> None:
    sign_in(client, scene.tto.email)
    response = client.get(f"/offers/{scene.offer.id}/take-up")
    assert response.status_code == 403
    assert 'data-error-code="forbidden"' in response.get_data(as_text=True)


def test_anonymous_visitors_sign_in_first_and_come_back(client: FlaskClient, scene: Scene) -> None:
    path = f"/offers/{scene.offer.id}/take-up"
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next={path}"
    token = csrf_token(client, "/login")
    signed = client.post(
        "/login",
        data={"email": scene.sme.email, "password": "correct horse battery staple",
              "csrf_token": token, "next": path},
    )  # fmt: skip
    assert signed.headers["Location"] == path
    assert TITLE in text(client.get(path))


def test_a_withdrawn_offer_cannot_be_taken(
    client: FlaskClient, factory: Factory, scene: Scene
) -> None:
    licence_factories.withdraw(factory, scene.tto, scene.offer)
    sign_in(client, scene.sme.email)
    response = client.get(f"/offers/{scene.offer.id}/take-up")
    assert response.status_code == 409
    assert 'data-error-code="offer_not_published"' in response.get_data(as_text=True)


def test_the_take_up_form_needs_its_csrf_token(
    client: FlaskClient, session: Session, scene: Scene
) -> None:
    sign_in(client, scene.sme.email)
    path = f"/offers/{scene.offer.id}/take-up"
    data = confirmation(client, scene, form_key(client, path))
    del data["csrf_token"]
    assert client.post(path, data=data).status_code == 400
    assert licences(session) == 0
