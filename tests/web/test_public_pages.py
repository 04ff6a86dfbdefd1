"""The public pages through the test client: search, offer, specimen, gazette, verification,
in both languages, and the error pages that carry the API's error envelope."""

from __future__ import annotations

import io
from pathlib import Path

from flask.testing import FlaskClient

from registry.app import create_app
from registry.contracts.issuing import office
from tests.conftest import TransactionalDatabase
from tests.factories import Factory
from tests.factories import licences as licence_factories
from tests.factories import offers as offer_factories
from tests.web.conftest import TITLE, TITLE_EN, Scene
from tests.web.pages import csrf_token, text


def test_home_has_the_search_box_in_chinese_by_default(client: FlaskClient, scene: Scene) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<html lang="zh-CN">' in html
    assert 'name="q"' in html
    assert "查找可以许可实施的专利" in text(response)
    assert TITLE in text(response)
    assert 'href="/?lang=en"' in html  # the language switch


def test_language_switch_is_remembered(client: FlaskClient, scene: Scene) -> None:
    english = client.get("/?lang=en")
    assert "Find a patent to license" in text(english)
    assert '<html lang="en">' in english.get_data(as_text=True)
    assert "lang=en" in english.headers["Set-Cookie"]
    assert "Every open licence declared" in text(client.get("/gazette"))  # remembered
    chinese = client.get("/gazette?lang=zh")
    assert "公告" in text(chinese)
    assert "查找可以许可实施的专利" in text(client.get("/"))


def test_search_finds_an_offer_by_a_chinese_substring(client: FlaskClient, scene: Scene) -> None:
    response = client.get("/offers", query_string={"q": "负极材料"})
    assert response.status_code == 200
    page = text(response)
    assert "找到 1 项开放许可" in page
    assert TITLE in page
    assert f'href="/offers/{scene.offer.id}"' in response.get_data(as_text=True)
    assert "一次总算 (1)" in page  # the count beside the royalty filter
    english = client.get("/offers", query_string={"q": "负极材料", "lang": "en"})
    assert "1 offer found" in text(english)
    assert TITLE_EN in text(english)
    assert "CN¥50,000.00" in text(english)
    assert "¥50,000.00" in page


def test_search_filters_and_empty_state(client: FlaskClient, scene: Scene) -> None:
    none = client.get("/offers", query_string={"q": "负极材料", "royalty_kind": "free"})
    assert none.status_code == 200
    assert "找到 0 项开放许可" in text(none)
    assert "没有符合条件的开放许可" in text(none)
    assert "查看全部开放许可" in text(none)  # what to do next
    bad = client.get("/offers", query_string={"max_upfront": "lots", "lang": "en"})
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert 'id="f-max_upfront-error"' in html
    assert 'aria-invalid="true"' in html


def test_search_pages_through_results(client: FlaskClient, factory: Factory, scene: Scene) -> None:
    for _ in range(21):
        offer_factories.published(factory, scene.tto)
    first = client.get("/offers", query_string={"lang": "en"})
    assert "22 offers found" in text(first)
    assert "Page 1 of 2" in text(first)
    assert first.get_data(as_text=True).count('class="card"') == 20
    second = client.get("/offers", query_string={"lang": "en", "page": "2"})
    assert second.get_data(as_text=True).count('class="card"') == 2
    assert 'rel="prev"' in second.get_data(as_text=True)


def test_offer_page_writes_the_terms_out(client: FlaskClient, scene: Scene) -> None:
    response = client.get(f"/offers/{scene.offer.id}")
    assert response.status_code == 200
    page = text(response)
    html = response.get_data(as_text=True)
    assert TITLE in page
    assert "华东理工大学" in page  # the patentee
    assert "一次总算" in page
    assert "人民币50,000.00元" in page  # the royalty clause as the contract words it
    assert "制造、使用、许诺销售、销售、进口" in page
    assert "自许可生效之日起 3 年" in page
    assert "已实施许可数 0" in page
    assert f'href="/offers/{scene.offer.id}/specimen.pdf"' in html
    assert f'href="/offers/{scene.offer.id}/take-up"' in html
    english = text(client.get(f"/offers/{scene.offer.id}?lang=en"))
    assert "East China University of Technology" in english
    assert "The royalty is a lump sum of CNY 50,000.00 paid at once" in english
    assert "3 years from the day the licence is taken up" in english


def test_specimen_contract_is_a_pdf(client: FlaskClient, scene: Scene) -> None:
    response = client.get(f"/offers/{scene.offer.id}/specimen.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")


def test_a_draft_is_not_found_for_the_public(
    client: FlaskClient, factory: Factory, scene: Scene
) -> None:
    draft = offer_factories.draft(
        factory, scene.tto, offer_factories.eligible_patent(factory, scene.tto)
    )
    response = client.get(f"/offers/{draft.id}")
    assert response.status_code == 404
    assert 'data-error-code="not_found"' in response.get_data(as_text=True)


def test_gazette_lists_the_publication(client: FlaskClient, scene: Scene) -> None:
    response = client.get("/gazette")
    assert response.status_code == 200
    assert scene.offer.gazette_number in text(response)
    assert "开放许可声明" in text(response)
    assert "Open licence declared" in text(client.get("/gazette?lang=en"))


def test_verify_reads_the_verdict_of_a_genuine_contract(
    client: FlaskClient, factory: Factory, scene: Scene
) -> None:
    licence = licence_factories.take_up(factory, scene.sme, scene.offer)
    assert licence.contract is not None
    pdf = office(factory.app).store.get(licence.contract.signed_sha256)
    token = csrf_token(client, "/verify")
    response = client.post(
        "/verify",
        data={"file": (io.BytesIO(pdf), "contract.pdf"), "csrf_token": token},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    page = text(response)
    assert "真实有效" in page
    assert licence.reference in page
    assert "星火电池科技有限公司" in page


def test_verify_names_the_fault_next_to_the_field(client: FlaskClient, scene: Scene) -> None:
    token = csrf_token(client, "/verify?lang=en")
    response = client.post(
        "/verify",
        data={"file": (io.BytesIO(b"hello"), "notes.txt"), "csrf_token": token},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'id="f-file-error"' in html
    assert "the file is not a PDF" in html
    missing = client.post("/verify", data={"csrf_token": token})
    assert missing.status_code == 422
    assert "Missing data for required field." in missing.get_data(as_text=True)


def test_a_form_without_its_csrf_token_is_refused(client: FlaskClient, scene: Scene) -> None:
    response = client.post(
        "/verify",
        data={"file": (io.BytesIO(b"%PDF-1.7"), "c.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'data-error-code="csrf_failed"' in html
    assert "表单已过期" in html


def test_unknown_page_is_an_html_page_with_the_envelope(client: FlaskClient) -> None:
    response = client.get("/no-such-page?lang=en")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert 'data-error-code="not_found"' in html
    assert "Traceback" not in html
    assert "Content-Security-Policy" in response.headers


def test_api_and_json_clients_keep_the_json_envelope(client: FlaskClient) -> None:
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.get_json()["code"] == "not_found"
    asked = client.get("/no-such-page", headers={"Accept": "application/json"})
    assert asked.status_code == 404
    assert asked.get_json()["code"] == "not_found"


def test_wrong_method_on_a_page_keeps_allow(client: FlaskClient) -> None:
    response = client.delete("/gazette")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert 'data-error-code="method_not_allowed"' in response.get_data(as_text=True)


def test_stylesheet_is_served_without_a_cdn(client: FlaskClient) -> None:
    response = client.get("/assets/registry.css")
    assert response.status_code == 200
    css = response.get_data(as_text=True)
    response.close()
    assert "@media print" in css
    assert "@media (min-width" in css
    page = client.get("/").get_data(as_text=True)
    assert "<script" not in page  # no inline script: the CSP forbids it, none is needed
    assert "http://" not in page
    assert "https://" not in page


def test_a_crash_is_a_page_with_an_error_id_and_no_trace(
    tmp_path: Path, db: TransactionalDatabase
) -> None:
    def boom() -> str:
        raise RuntimeError("secret internals /etc/registry.conf")

    app = create_app(
        {"env": "testing", "instance_path": tmp_path, "secret_key": "test-secret-" + "c" * 32},
        database=db,
        configure=lambda app: app.add_url_rule("/boom", "boom", boom),
    )
    response = app.test_client().get("/boom?lang=en")
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert 'data-error-code="internal_error"' in html
    assert response.headers["X-Error-Id"] in html
    assert "secret internals" not in html
    assert "Traceback" not in html
    assert "Something went wrong on our side" in html


def test_the_language_link_never_leaves_the_site(client: FlaskClient) -> None:
    response = client.get("/", environ_overrides={"PATH_INFO": "//evil.example/x"})
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert 'href="/evil.example/x?lang=en"' in html
    assert 'href="//' not in html
