"""Every upload route limits the size (413) and checks the type (422) of what it is sent
(ASVS 5.0 5.2.1, 5.2.2; reliability.md T31): the patent import (CSV or XLSX), the bank statement
import (CSV) and contract verification (PDF). A refused upload changes nothing.

Large bodies are encoded in memory: werkzeug's test client spools a large upload to a temporary
file it never closes.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Any

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from registry.audit.models import AuditEvent
from registry.clearing.models import BankLine
from registry.patents.models import Patent
from tests.conftest import Api
from tests.factories import Factory

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56


def zip_of(name: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(name, content)
    return out.getvalue()


def xlsx() -> bytes:
    workbook = openpyxl.Workbook()
    workbook.active.append(["date", "amount", "reference", "counterparty"])  # type: ignore[union-attr]
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


@dataclass(frozen=True)
class Route:
    path: str
    caller: str  # who may upload: "tto", "admin" or "anyone"
    filename: str
    limit_setting: str  # the Settings attribute bounding the file


ROUTES = {
    "patent-import": Route("/patents/import", "tto", "patents.csv", "max_content_length"),
    "bank-statement": Route("/bank-statements", "admin", "bank.csv", "max_content_length"),
    "contract-verify": Route("/contracts/verify", "anyone", "contract.pdf", "verify_max_bytes"),
}

WRONG_TYPES: dict[str, list[tuple[str, bytes, str]]] = {
    "patent-import": [
        ("png-as-csv", PNG, "patents.csv"),
        ("pdf-as-csv", PDF, "patents.csv"),
        ("program-as-csv", ELF, "patents.csv"),
        ("pdf-as-xlsx", PDF, "patents.xlsx"),
        ("zip-not-a-workbook", zip_of("notes.txt", b"hello"), "patents.xlsx"),
    ],
    "bank-statement": [
        ("png", PNG, "bank.csv"),
        ("pdf", PDF, "bank.csv"),
        ("program", ELF, "bank.csv"),
        ("xlsx", xlsx(), "bank.xlsx"),
    ],
    "contract-verify": [
        ("png", PNG, "contract.pdf"),
        ("csv", b"date,amount\n2026-01-01,1.00\n", "contract.pdf"),
        ("xlsx", xlsx(), "contract.pdf"),
        ("program", ELF, "contract.pdf"),
    ],
}


def state(session: Session) -> tuple[int, int, int]:
    session.expire_all()
    return tuple(  # type: ignore[return-value]
        session.scalar(select(func.count()).select_from(model)) or 0
        for model in (Patent, BankLine, AuditEvent)
    )


def caller(api: Api, factory: Factory, who: str) -> Api:
    if who == "anyone":
        return api
    if who == "admin":
        return api.as_(factory.token(factory.admin()))
    return api.as_(factory.token(factory.user(factory.organisation("university"), "tto")))


def post_file(client: Api, path: str, content: bytes, filename: str) -> Any:
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(content), filename=filename)})
    return client.post(path, data=body, content_type=f"multipart/form-data; boundary={boundary}")


@pytest.mark.parametrize("name", ROUTES)
def test_an_oversize_upload_is_413_and_changes_nothing(
    name: str, api: Api, factory: Factory, session: Session
) -> None:
    route = ROUTES[name]
    client = caller(api, factory, route.caller)
    limit = getattr(factory.app.config["REGISTRY_SETTINGS"], route.limit_setting)
    before = state(session)

    # Starts like a valid file of its kind, so only the size is wrong.
    start = b"%PDF-1.7\n" if name == "contract-verify" else b"date,amount,reference\n"
    response = post_file(client, route.path, start + b"0" * limit, route.filename)

    assert response.status_code == 413, response.get_json()
    body = response.get_json()
    assert (body["code"], body["status"]) == ("payload_too_large", 413)
    assert state(session) == before


@pytest.mark.parametrize(
    ("name", "content", "filename"),
    [
        pytest.param(name, content, filename, id=f"{name}-{case}")
        for name, cases in WRONG_TYPES.items()
        for case, content, filename in cases
    ],
)
def test_a_file_of_the_wrong_type_is_422_on_file_and_changes_nothing(
    name: str, content: bytes, filename: str, api: Api, factory: Factory, session: Session
) -> None:
    route = ROUTES[name]
    client = caller(api, factory, route.caller)
    before = state(session)

    response = post_file(client, route.path, content, filename)

    assert response.status_code == 422, response.get_json()
    body = response.get_json()
    assert body["code"] == "validation_error"
    assert [error["field"] for error in body["errors"]][:1] == ["file"]
    assert state(session) == before
