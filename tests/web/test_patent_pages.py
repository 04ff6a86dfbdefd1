"""A TTO's portfolio through the pages: its patents, a patent with owners, inventors and
encumbrances, and the bulk import with its per-row error report (all or nothing, as through
``POST /api/v1/patents/import``)."""

from __future__ import annotations

import io
import re

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from registry.audit.models import AuditEvent
from registry.patents import encumbrances, services
from registry.patents.models import Patent
from registry.patents.schemas import EncumbranceSchema, InventorsSchema
from tests.factories import Factory, make_application_number
from tests.web.conftest import TITLE, Scene
from tests.web.pages import csrf_token, envelope_of, sign_in, text


def patents(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Patent)) or 0)


def created_events(session: Session) -> int:
    return int(
        session.scalar(select(func.count()).where(AuditEvent.action == "patent.created")) or 0
    )


def upload(client: FlaskClient, csv: str, *, dry_run: bool = False) -> object:
    data: dict[str, object] = {
        "csrf_token": csrf_token(client, "/patents/import"),
        "file": (io.BytesIO(csv.encode("utf-8")), "patents.csv"),
    }
    if dry_run:
        data["dry_run"] = "yes"
    return client.post("/patents/import", data=data, content_type="multipart/form-data")


def good_line(title: str = "一种固态电解质及其制备方法") -> str:
    return f"{make_application_number()},invention,{title},2021-03-15"


HEADER = "application_number,patent_type,title,filing_date"


def test_a_tto_sees_its_portfolio_and_a_patent(
    client: FlaskClient, factory: Factory, scene: Scene
) -> None:
    patent = scene.offer.patent
    actor = factory.actor(scene.tto)
    services.set_inventors(
        factory.session,
        actor=actor,
        patent_id=patent.id,
        inventors=InventorsSchema().load(
            {"inventors": [{"name": "李明", "share": "60"}, {"name": "陈静", "share": "40"}]}
        )["inventors"],
    )
    encumbrances.add_encumbrance(
        factory.session,
        actor=actor,
        patent_id=patent.id,
        data=EncumbranceSchema().load(
            {"kind": "pledge", "start_date": "2025-01-10", "holder": "上海银行",
             "reference": "ZX-2025-0007", "pledgee_consent": True}
        ),
    )  # fmt: skip
    other = factory.organisation("university", name="西南交通大学")
    factory.patent(factory.user(other, "tto"), title="另一所大学的专利")
    factory.session.flush()

    sign_in(client, scene.tto.email)
    listing = client.get("/patents")
    assert listing.status_code == 200
    assert TITLE in text(listing)
    assert "另一所大学的专利" not in text(listing)  # only its own organisation's
    assert "1 项专利" in text(listing)
    page = client.get(f"/patents/{patent.id}")
    assert page.status_code == 200
    shown = text(page)
    assert patent.application_number in shown
    assert "华东理工大学 100.00%" in shown  # the owner, its shares of title and income
    assert "李明 60.00%" in shown
    assert "陈静 40.00%" in shown
    assert "质押" in shown
    assert "ZX-2025-0007" in shown
    assert "上海银行" in shown
    english = client.get(f"/patents/{patent.id}?lang=en")
    assert "Inventors" in text(english)
    assert "Pledge" in text(english)


def test_another_organisations_patent_looks_missing(
    client: FlaskClient, factory: Factory, scene: Scene
) -> None:
    other = factory.organisation("university", name="西南交通大学")
    foreign = factory.patent(factory.user(other, "tto"))
    factory.session.flush()
    sign_in(client, scene.tto.email)
    response = client.get(f"/patents/{foreign.id}")
    assert response.status_code == 404
    assert envelope_of(response) == {"code": "not_found"}


def test_licensees_have_no_portfolio(client: FlaskClient, scene: Scene) -> None:
    sign_in(client, scene.sme.email)
    assert client.get("/patents").status_code == 403
    refused = client.get("/patents/import")
    assert refused.status_code == 403
    assert envelope_of(refused) == {"code": "forbidden"}
    assert "/patents" not in re.sub(r'href="/licences', "", client.get("/").get_data(True))


def test_an_empty_portfolio_says_what_to_do(client: FlaskClient, factory: Factory) -> None:
    university = factory.organisation("university", name="空白大学")
    tto = factory.user(university, "tto")
    factory.session.flush()
    sign_in(client, tto.email)
    page = client.get("/patents")
    assert page.status_code == 200
    assert "尚无专利记录" in text(page)
    assert 'href="/patents/import"' in page.get_data(as_text=True)


def test_an_import_with_two_bad_rows_shows_both_and_imports_nothing(
    client: FlaskClient, session: Session, scene: Scene
) -> None:
    sign_in(client, scene.tto.email)
    before, events = patents(session), created_events(session)
    csv = "\n".join(
        [
            HEADER,
            good_line(),
            "CN-NOT-A-NUMBER,invention,号码错误的专利,2021-03-15",  # row 3
            good_line(),
            f"{make_application_number()},gadget,类型错误的专利,2021-03-15",  # row 5
        ]
    )
    response = upload(client, csv + "\n")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    rows = re.findall(r'<tr class="row-error"><td>(\d+)</td><td><code>([a-z_]+)</code>', html)
    assert ("3", "application_number") in rows
    assert ("5", "patent_type") in rows
    assert {row for row, _ in rows} == {"3", "5"}
    assert "2 行有错误" in text(response)
    assert patents(session) == before
    assert created_events(session) == events


def test_an_import_of_good_rows_adds_the_patents(
    client: FlaskClient, session: Session, scene: Scene
) -> None:
    sign_in(client, scene.tto.email)
    before, events = patents(session), created_events(session)
    csv = f"{HEADER}\n{good_line('导入的第一项')}\n{good_line('导入的第二项')}\n"
    checked = upload(client, csv, dry_run=True)
    assert checked.status_code == 200
    assert "已检查 2 行" in text(checked)
    assert patents(session) == before  # "check only" saves nothing
    done = upload(client, csv)
    assert done.status_code == 303
    assert done.headers["Location"].endswith("/patents")
    assert patents(session) == before + 2
    assert created_events(session) == events + 2
    listing = client.get("/patents")
    assert "导入的第一项" in text(listing)
    assert "导入的第二项" in text(listing)
    assert "已从 patents.csv 导入 2 项专利" in text(listing)


def test_a_file_problem_is_shown_next_to_the_file_field(
    client: FlaskClient, session: Session, scene: Scene
) -> None:
    sign_in(client, scene.tto.email)
    before = patents(session)
    response = upload(client, "title,colour\n专利,红\n")
    assert response.status_code == 422
    assert 'id="f-file-error"' in response.get_data(as_text=True)
    assert "colour" in text(response)
    missing = client.post(
        "/patents/import",
        data={"csrf_token": csrf_token(client, "/patents/import")},
        content_type="multipart/form-data",
    )
    assert missing.status_code == 422
    assert patents(session) == before
