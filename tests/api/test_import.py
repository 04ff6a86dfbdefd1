"""Bulk import (issue 2, item 6): ``POST /api/v1/patents/import`` and ``flask patents import``.

CSV (UTF-8 with or without BOM) and XLSX; all or nothing, with every bad row's errors named
``rows.<row>.<column>`` by the row number a spreadsheet shows (header = 1); ``dry_run`` checks
without saving; a file that cannot be read is refused naming ``file``. Refusals are checked to
have changed nothing (no patent row, no audit event).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.accounts.models import Organisation, User
from registry.core.identifiers import uscc_check_character
from registry.patents import importer
from registry.patents.models import Patent
from tests.conftest import Api
from tests.factories import Factory
from tests.factories.patents import app_no, events, refused, snapshot, unchanged, wrong_check

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "patents-sample.csv"
SAMPLE_UNIVERSITY_USCC = "12330000MB0215837M"
SAMPLE_ENTERPRISE_USCC = "91330106MA2KD7R5XL"
HEADER = ["application_number", "patent_type", "title", "filing_date", "grant_date", "ipc"]


def uscc(body17: str) -> str:
    return body17 + uscc_check_character(body17)


@dataclass
class Cast:
    session: Session
    factory: Factory
    uni: Organisation
    ent: Organisation
    tto_user: User
    tto: Api
    licensee: Api
    auditor: Api
    admin: Api
    admin_user: User


@pytest.fixture
def cast(api: Api, factory: Factory, session: Session) -> Cast:
    uni = factory.organisation("university", name="浙江示例大学", uscc=SAMPLE_UNIVERSITY_USCC)
    ent = factory.organisation(
        "enterprise", name="杭州示例新材料有限公司", uscc=SAMPLE_ENTERPRISE_USCC
    )
    tto_user = factory.user(uni, "tto", email="tto@uni.example.test")
    admin_user = factory.admin()
    return Cast(
        session=session,
        factory=factory,
        uni=uni,
        ent=ent,
        tto_user=tto_user,
        tto=api.as_(factory.token(tto_user)),
        licensee=api.as_(factory.token(factory.user(ent, "licensee"))),
        auditor=api.as_(factory.token(factory.user(factory.organisation("audit_body"), "auditor"))),
        admin=api.as_(factory.token(admin_user)),
        admin_user=admin_user,
    )


def row(**values: str) -> dict[str, str]:
    number = values.pop("application_number", None) or app_no(2021, "1")
    return {
        "application_number": number,
        "patent_type": "invention",
        "title": "一种复合材料及其制备方法",
        "filing_date": "2021-05-06",
        "grant_date": "2023-01-10",
        "ipc": "C08K 3/04;C08L 23/06",
        **values,
    }


def to_csv(rows: list[dict[str, str]], header: list[str] | None = None) -> str:
    columns = header or list(dict.fromkeys([*HEADER, *(k for r in rows for k in r)]))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def upload(client: Api, content: bytes, filename: str = "patents.csv", **query: str) -> Any:
    return client.post(
        "/patents/import",
        data={"file": (io.BytesIO(content), filename)},
        content_type="multipart/form-data",
        query_string=query,
    )


def stored(session: Session, number: str) -> Patent | None:
    session.expire_all()
    return session.scalar(select(Patent).where(Patent.application_number == number))


# --- files that import ----------------------------------------------------------------------


def test_the_sample_file_imports_cleanly(cast: Cast) -> None:
    before = snapshot(cast.session)
    response = upload(cast.tto, SAMPLE.read_bytes(), SAMPLE.name)
    assert response.status_code == 200, response.json
    assert response.json["rows"] == 10
    assert response.json["created"] == 10
    assert response.json["dry_run"] is False
    after = snapshot(cast.session)
    assert after["patents"] == before["patents"] + 10
    assert after["audit_events"] == before["audit_events"] + 10  # one patent.created each
    listing = cast.tto.get("/patents", query_string={"page_size": 50})
    by_number = {p["application_number"]: p for p in listing.json}
    assert len(by_number) == 10
    co_owned = by_number["202110873402.2"]
    assert [
        (o["organisation_id"], o["title_share"], o["income_share"], o["basis"], o["clause_set"])
        for o in co_owned["owners"]
    ] == [
        (str(cast.uni.id), "60.00", "50.00", "cooperation_agreement", "joint"),
        (str(cast.ent.id), "40.00", "50.00", "cooperation_agreement", "joint"),
    ]
    assert [(i["name"], i["share"]) for i in co_owned["inventors"]] == [
        ("赵明", "70.00"),
        ("孙丽", "30.00"),
    ]
    utility = by_number["202120341569.X"]
    assert utility["patent_type"] == "utility_model"
    assert utility["expiry_date"] == "2031-02-02"
    assert utility["evaluation_report"] == {
        "number": "PJ2022-31001",
        "date": "2022-05-10",
        "conclusion": "no_defect",
    }
    design = by_number["202130456120.3"]
    assert design["expiry_date"] == "2036-07-29"  # filed after 2021-06-01: 15 years
    assert by_number["202310598864.7"]["status"] == "pending"
    assert by_number["201820156734.2"]["status"] == "lapsed_fees"
    assert [i["share"] for i in by_number["202111294087.4"]["inventors"]] == [
        "33.34",
        "33.33",
        "33.33",
    ]
    # The co-owning enterprise's staff see the co-owned patent only.
    ent_tto = cast.tto.as_(cast.factory.token(cast.factory.user(cast.ent, "tto")))
    assert [p["application_number"] for p in ent_tto.get("/patents").json] == ["202110873402.2"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_csv_with_or_without_bom(cast: Cast, encoding: str) -> None:
    rows = [row(title="一种导热复合材料"), row(title="一种阻燃复合材料")]
    response = upload(cast.tto, to_csv(rows).encode(encoding))
    assert response.status_code == 200, response.json
    assert response.json["created"] == 2
    patent = stored(cast.session, rows[0]["application_number"])
    assert patent is not None
    assert patent.title == "一种导热复合材料"
    assert patent.ipc == ["C08K 3/04", "C08L 23/06"]
    assert [o.organisation_id for o in patent.owners] == [cast.uni.id]


def test_numbers_are_stored_in_canonical_form(cast: Cast) -> None:
    number = app_no(2021, "1")
    digits, check = number.split(".")
    response = upload(cast.tto, to_csv([row(application_number=f"ZL{digits}{check}")]).encode())
    assert response.status_code == 200, response.json
    assert stored(cast.session, number) is not None


def test_xlsx_with_date_and_number_cells(cast: Cast) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(
        ["application_number", "patent_type", "title", "filing_date", "grant_date", "owners",
         "inventors", "evaluation_report_number", "evaluation_report_date",
         "evaluation_report_conclusion"]
    )  # fmt: skip
    number = app_no(2022, "2")
    sheet.append(
        [
            number,
            "utility_model",
            "一种可折叠光伏支架",
            date(2022, 3, 4),  # date cells, read back by openpyxl as datetimes
            date(2022, 9, 30),
            f"{SAMPLE_UNIVERSITY_USCC}:70:70;{SAMPLE_ENTERPRISE_USCC}:30:30",
            "钱学文:80;钟一鸣:20",
            "PJ2023-00042",
            date(2023, 1, 5),
            "defects_found",
        ]
    )
    content = io.BytesIO()
    workbook.save(content)
    response = upload(cast.tto, content.getvalue(), "专利清单.xlsx")
    assert response.status_code == 200, response.json
    patent = cast.tto.get(f"/patents/{response.json['patent_ids'][0]}").json
    assert patent["application_number"] == number
    assert patent["filing_date"] == "2022-03-04"
    assert patent["expiry_date"] == "2032-03-03"
    assert [(o["title_share"], o["income_share"]) for o in patent["owners"]] == [
        ("70.00", "70.00"),
        ("30.00", "30.00"),
    ]
    assert [i["name"] for i in patent["inventors"]] == ["钱学文", "钟一鸣"]
    assert patent["evaluation_report"]["conclusion"] == "defects_found"


def test_owners_and_inventors_columns(cast: Cast) -> None:
    # Lower-case USCC, spaces, full-width separators as a Chinese input method types them.
    owners = f" {SAMPLE_UNIVERSITY_USCC.lower()} ：33.34：50 ； {SAMPLE_ENTERPRISE_USCC}:66.66:50"
    number = app_no(2021, "1")
    response = upload(
        cast.tto,
        to_csv(
            [row(application_number=number, owners=owners, inventors="张三:50；李四：50")]
        ).encode(),
    )
    assert response.status_code == 200, response.json
    patent = stored(cast.session, number)
    assert patent is not None
    assert [(o.organisation_id, str(o.title_share)) for o in patent.owners] == [
        (cast.uni.id, "33.34"),
        (cast.ent.id, "66.66"),
    ]
    assert [(i.name, str(i.share)) for i in patent.inventors] == [
        ("张三", "50.00"),
        ("李四", "50.00"),
    ]
    (event,) = events(cast.session, "patent.created", str(patent.id))
    payload = json.loads(event.payload)
    assert [o["title_share"] for o in payload["owners"]] == ["33.34", "66.66"]
    assert [i["name"] for i in payload["inventors"]] == ["张三", "李四"]


def test_admin_imports_for_the_owners_named(cast: Cast) -> None:
    number = app_no(2021, "1")
    rows = [row(application_number=number, owners=f"{SAMPLE_ENTERPRISE_USCC}:100:100")]
    response = upload(cast.admin, to_csv(rows).encode())
    assert response.status_code == 200, response.json
    patent = stored(cast.session, number)
    assert patent is not None
    assert [o.organisation_id for o in patent.owners] == [cast.ent.id]
    with unchanged(cast.session):
        no_owner = upload(cast.admin, to_csv([row()]).encode())
    refused(no_owner, 422, "rows.2.owners")


# --- all or nothing -----------------------------------------------------------------------------


def test_three_bad_rows_of_ten_are_all_reported_and_nothing_is_imported(cast: Cast) -> None:
    rows = [row(title=f"一种测试材料（{i}）") for i in range(10)]
    rows[1]["application_number"] = wrong_check(rows[1]["application_number"])  # line 3
    rows[4]["filing_date"] = "2021-02-30"  # line 6
    rows[4]["ipc"] = "C08K3-04"  # line 6, a second column of the same row
    rows[9]["owners"] = f"{SAMPLE_UNIVERSITY_USCC}:50:50;{SAMPLE_ENTERPRISE_USCC}:49.99:50"
    with unchanged(cast.session):
        response = upload(cast.tto, to_csv(rows).encode())
    refused(response, 422)
    fields = [e["field"] for e in response.json["errors"]]
    assert set(fields) == {
        "rows.3.application_number",
        "rows.6.filing_date",
        "rows.6.ipc",
        "rows.11.owners",
    }
    assert fields == sorted(fields, key=lambda f: int(f.split(".")[1]))  # in file order
    assert "3 of 10 rows" in response.json["message"]
    share_error = next(e for e in response.json["errors"] if e["field"] == "rows.11.owners")
    assert "99.99" in " ".join(share_error["messages"])


def test_row_numbers_follow_the_spreadsheet(cast: Cast) -> None:
    good = row(abstract="第一行\n第二行")  # a cell spanning two lines is still one row
    bad = row(patent_type="plant")
    text = to_csv([good]) + "\r\n" + to_csv([bad]).split("\r\n", 1)[1]  # blank row 3
    with unchanged(cast.session):
        response = upload(cast.tto, text.encode())
    refused(response, 422, "rows.4.patent_type")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"patent_type": "utility_model"}, "rows.2.patent_type"),  # number says invention
        ({"filing_date": "2020-05-06"}, "rows.2.filing_date"),  # year does not match
        ({"grant_date": "2020-01-01"}, "rows.2.grant_date"),  # before filing
        ({"title": ""}, "rows.2.title"),
        ({"legal_status": "alive"}, "rows.2.legal_status"),
        ({"evaluation_report_number": "PJ1"}, "rows.2.evaluation_report_date"),
        ({"owners": "not-an-owner"}, "rows.2.owners"),
        ({"owners": "91330106MA2KD7R5X0:100:100"}, "rows.2.owners"),  # wrong USCC check
        ({"owners": f"{uscc('91110108MA01ABCDE')}:100:100"}, "rows.2.owners"),  # unregistered
        ({"owners": f"{SAMPLE_ENTERPRISE_USCC}:100:100"}, "rows.2.owners"),  # drops the TTO's
        ({"owners": f"{SAMPLE_UNIVERSITY_USCC}:100:100:gift"}, "rows.2.owners"),
        ({"owners": f"{SAMPLE_UNIVERSITY_USCC}:100.0001:100"}, "rows.2.owners"),
        ({"inventors": "张三"}, "rows.2.inventors"),
        ({"inventors": "张三:60;李四:30"}, "rows.2.inventors"),
        ({"inventors": "张三:-10;李四:110"}, "rows.2.inventors"),
    ],
)
def test_each_kind_of_bad_cell_names_its_row_and_column(
    cast: Cast, values: dict[str, str], field: str
) -> None:
    with unchanged(cast.session):
        response = upload(cast.tto, to_csv([row(**values)]).encode())
    refused(response, 422, field)


def test_missing_required_cells_are_reported(cast: Cast) -> None:
    rows = [row(title="", filing_date="")]
    with unchanged(cast.session):
        response = upload(cast.tto, to_csv(rows).encode())
    refused(response, 422, "rows.2.title", "rows.2.filing_date")


def test_duplicate_numbers_within_the_file_are_reported(cast: Cast) -> None:
    number = app_no(2021, "1")
    digits, check = number.split(".")
    rows = [row(application_number=number), row(), row(application_number=f"CN{digits}{check}")]
    with unchanged(cast.session):
        response = upload(cast.tto, to_csv(rows).encode())
    refused(response, 422, "rows.4.application_number")
    message = " ".join(response.json["errors"][0]["messages"])
    assert "row 2" in message
    assert "rows.2.application_number" not in {e["field"] for e in response.json["errors"]}


def test_numbers_already_registered_are_reported(cast: Cast) -> None:
    number = app_no(2021, "1")
    assert upload(cast.tto, to_csv([row(application_number=number)]).encode()).status_code == 200
    with unchanged(cast.session):
        response = upload(cast.tto, to_csv([row(), row(application_number=number)]).encode())
    refused(response, 422, "rows.3.application_number")


def test_dry_run_checks_and_saves_nothing(cast: Cast) -> None:
    rows = [
        row(),
        row(),
        row(owners=f"{SAMPLE_UNIVERSITY_USCC}:50:50;{SAMPLE_ENTERPRISE_USCC}:50:50"),
    ]
    with unchanged(cast.session):
        response = upload(cast.tto, to_csv(rows).encode(), dry_run="true")
    assert response.status_code == 200, response.json
    assert response.json == {"dry_run": True, "rows": 3, "created": 0, "patent_ids": []}
    with unchanged(cast.session):
        bad = upload(cast.tto, to_csv([row(), row(patent_type="x")]).encode(), dry_run="true")
    refused(bad, 422, "rows.3.patent_type")
    # The same file, for real, then imports.
    assert upload(cast.tto, to_csv(rows).encode()).json["created"] == 3


# --- files that cannot be read -------------------------------------------------------------------


def test_a_non_utf8_csv_is_refused(cast: Cast) -> None:
    content = to_csv([row(title="一种石墨烯导电油墨")]).encode("gbk")
    with unchanged(cast.session):
        response = upload(cast.tto, content)
    refused(response, 422, "file")
    assert "UTF-8" in response.json["errors"][0]["messages"][0]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (",".join(HEADER).encode() + b"\r\n", "no patent rows"),
        (b"\xef\xbb\xbf", "empty"),
        (to_csv([row(colour="blue")]).encode(), "unknown columns: colour"),
        (to_csv([{"title": "无号"}], header=["title"]).encode(), "missing columns"),
        (b"application_number,patent_type,title,filing_date,title\r\n", "repeated"),
        (to_csv([row(title="a\x00b")]).encode(), "NUL"),
        # Over the csv module's field limit (131072), under the test client's 500 kB spool.
        (to_csv([row(abstract="长" * 140_000)]).encode(), "unreadable CSV"),
        (b'application_number,title\r\n"unterminated', "missing columns"),
    ],
)
def test_unreadable_csv_is_refused_naming_file(cast: Cast, content: bytes, words: str) -> None:
    with unchanged(cast.session):
        response = upload(cast.tto, content)
    refused(response, 422, "file")
    assert words in response.json["errors"][0]["messages"][0]


def _xlsx_bytes() -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(HEADER)
    sheet.append(list(row().values())[: len(HEADER)])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _broken_sheet() -> bytes:
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(_xlsx_bytes()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                data = data[: len(data) // 2]
            target.writestr(item, data)
    return out.getvalue()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"PK\x03\x04 not really a zip", id="not-a-zip"),
        pytest.param(_xlsx_bytes()[:300], id="truncated"),
        pytest.param(_broken_sheet(), id="broken-sheet-xml"),
        pytest.param(b"plain text named .xlsx", id="text"),
    ],
)
def test_a_damaged_xlsx_is_refused_naming_file(cast: Cast, content: bytes) -> None:
    with unchanged(cast.session):
        response = upload(cast.tto, content, "patents.xlsx")
    refused(response, 422, "file")


def test_too_many_rows_are_refused(cast: Cast, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importer, "MAX_ROWS", 3)
    with unchanged(cast.session):
        response = upload(cast.tto, to_csv([row() for _ in range(4)]).encode())
    refused(response, 422, "file")


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {},
        {"data": {"upload": (io.BytesIO(b"x"), "p.csv")}, "content_type": "multipart/form-data"},
        {"data": {"file": (io.BytesIO(b"x"), "")}, "content_type": "multipart/form-data"},
        {"json": {"file": "application_number,title"}},
    ],
)
def test_missing_file_is_refused(cast: Cast, request_kwargs: dict[str, Any]) -> None:
    with unchanged(cast.session):
        response = cast.tto.post("/patents/import", **request_kwargs)
    refused(response, 422, "file")


def test_readers_may_not_import(cast: Cast) -> None:
    content = to_csv([row()]).encode()
    with unchanged(cast.session):
        for client in (cast.licensee, cast.auditor):
            response = upload(client, content)
            assert response.status_code == 403, response.json
            assert response.json["code"] == "forbidden"
            # Refused before the file is even looked at.
            assert client.post("/patents/import").status_code == 403
        assert upload(cast.tto.as_(None), content).status_code == 401


# --- the command line ---------------------------------------------------------------------------


def _cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["patents", "import", *args])


def test_cli_imports_a_file(app: Flask, cast: Cast, tmp_path: Path) -> None:
    rows = [row(inventors="张三:100"), row()]
    path = tmp_path / "patents.csv"
    path.write_text(to_csv(rows), encoding="utf-8-sig")
    before = snapshot(cast.session)
    result = _cli(app, str(path), "--as", cast.tto_user.email.upper())
    assert result.exit_code == 0, result.output
    assert "imported 2 patents" in result.output
    after = snapshot(cast.session)
    assert after["patents"] == before["patents"] + 2
    assert after["audit_events"] == before["audit_events"] + 2
    patent = stored(cast.session, rows[0]["application_number"])
    assert patent is not None
    assert [i.name for i in patent.inventors] == ["张三"]


def test_cli_imports_the_sample(app: Flask, cast: Cast) -> None:
    result = _cli(app, str(SAMPLE), "--as", cast.tto_user.email)
    assert result.exit_code == 0, result.output
    assert "imported 10 patents" in result.output


def test_cli_prints_every_row_error_and_fails(app: Flask, cast: Cast, tmp_path: Path) -> None:
    rows = [row(), row(patent_type="plant"), row(filing_date="someday", inventors="张三:99")]
    path = tmp_path / "patents.csv"
    path.write_text(to_csv(rows), encoding="utf-8")
    with unchanged(cast.session):
        result = _cli(app, str(path), "--as", cast.tto_user.email)
    assert result.exit_code != 0
    assert "2 of 3 rows have errors" in result.output
    for field in ("rows.3.patent_type", "rows.4.filing_date", "rows.4.inventors"):
        assert field in result.output


def test_cli_dry_run_saves_nothing(app: Flask, cast: Cast, tmp_path: Path) -> None:
    path = tmp_path / "patents.csv"
    path.write_text(to_csv([row(), row()]), encoding="utf-8")
    with unchanged(cast.session):
        result = _cli(app, str(path), "--dry-run", "--as", cast.tto_user.email)
    assert result.exit_code == 0, result.output
    assert "would import 2 patents" in result.output


@pytest.mark.parametrize("who", ["nobody@example.test", "licensee"])
def test_cli_refuses_unknown_users_and_readers(
    app: Flask, cast: Cast, tmp_path: Path, who: str
) -> None:
    if who == "licensee":
        who = cast.factory.user(cast.ent, "licensee").email
    path = tmp_path / "patents.csv"
    path.write_text(to_csv([row()]), encoding="utf-8")
    with unchanged(cast.session):
        result = _cli(app, str(path), "--as", who)
    assert result.exit_code != 0
    assert "error" in result.output.lower()


def test_cli_refuses_an_unreadable_file(app: Flask, cast: Cast, tmp_path: Path) -> None:
    path = tmp_path / "patents.csv"
    path.write_bytes(to_csv([row(title="一种石墨烯导电油墨")]).encode("gbk"))
    with unchanged(cast.session):
        result = _cli(app, str(path), "--as", cast.tto_user.email)
    assert result.exit_code != 0
    assert "file: " in result.output
