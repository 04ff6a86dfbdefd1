"""Contracts through HTTP (issue 4): issued at take-up, downloaded by the parties and auditors,
verified by anyone, the CA published; pending contracts in deferred mode.

What users rely on: the PDF they download is the one on record (its hash is in the licence and
in the audit log), it names them and the patent in Chinese and English, pyHanko (library and
command line) calls it valid with the registry's CA, and one changed byte makes both the
verifier and pyHanko say so. Nobody outside the licence sees it.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pypdf
import pytest
from asn1crypto import pem, x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from registry.accounts.models import User
from registry.audit.models import AuditEvent
from registry.contracts.issuing import office
from registry.contracts.models import Contract
from registry.core.clock import today
from registry.offers.models import Offer
from tests.conftest import Api
from tests.factories import Factory
from tests.factories import licences as lf

LICENSEE_NAME = "青禾电池科技有限公司"
LICENSEE_ADDRESS = "浙江省杭州市西湖区文三路90号"


@dataclass
class Cast:
    factory: Factory
    session: Session
    api: Api
    tto: User
    tto_api: Api
    other_tto_api: Api
    sme_api: Api
    sme2_api: Api
    auditor_api: Api
    admin_api: Api

    def offer(self, **kwargs: Any) -> Offer:
        return lf.published_offer(self.factory, self.tto, **kwargs)

    def take_up(self, offer: Offer | None = None) -> dict[str, Any]:
        response = self.sme_api.post(
            f"/offers/{(offer or self.offer()).id}/take-up", json=lf.notice()
        )
        assert response.status_code == 201, response.json
        return dict(response.json)


@pytest.fixture
def cast(factory: Factory, session: Session, api: Api) -> Cast:
    university = factory.organisation("university", name="甲大学", address="北京市海淀区学院路1号")
    _sme, _, sme_token = lf.enterprise_licensee(
        factory, name=LICENSEE_NAME, address=LICENSEE_ADDRESS
    )
    _, _, sme2_token = lf.enterprise_licensee(factory, name="丁新材料有限公司")
    tto = factory.user(university, "tto")
    other_tto = factory.user(factory.organisation("university", name="乙大学"), "tto")
    auditor = factory.user(factory.organisation("audit_body"), "auditor")
    admin = factory.user(factory.organisation("clearing_house"), "admin")
    return Cast(
        factory=factory,
        session=session,
        api=api,
        tto=tto,
        tto_api=api.as_(factory.token(tto)),
        other_tto_api=api.as_(factory.token(other_tto)),
        sme_api=api.as_(sme_token),
        sme2_api=api.as_(sme2_token),
        auditor_api=api.as_(factory.token(auditor)),
        admin_api=api.as_(factory.token(admin)),
    )


def pdf_text(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "".join("".join(page.extract_text().split()) for page in reader.pages)


def download(client: Api, licence_id: str) -> Any:
    return client.get(f"/licences/{licence_id}/contract.pdf")


def ca_certificate(api: Api) -> x509.Certificate:
    response = api.get("/contracts/certificate.pem")
    assert response.status_code == 200
    _, _, der = pem.unarmor(response.data)
    return x509.Certificate.load(der)


def verify(api: Api, data: bytes, name: str = "contract.pdf") -> Any:
    return api.post(
        "/contracts/verify",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def events(session: Session, action: str) -> list[AuditEvent]:
    lf.reread(session)
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action)))


# --- issue at take-up ---------------------------------------------------------------------------


def test_take_up_issues_a_signed_contract_the_licensee_downloads(cast: Cast) -> None:
    offer = cast.offer(royalty={"kind": "lump_sum", "amount": "120000.00"})
    licence = cast.take_up(offer)

    contract = licence["contract"]
    assert contract["status"] == "issued"
    assert contract["template"] == "open_licence"
    assert contract["version"] == "1.0"
    response = download(cast.sme_api, licence["id"])
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"{licence['reference']}-contract.pdf" in disposition
    assert hashlib.sha256(response.data).hexdigest() == contract["sha256"]

    text = pdf_text(response.data)
    assert licence["reference"] in text
    assert LICENSEE_NAME in text
    assert LICENSEE_ADDRESS in text
    assert "甲大学" in text
    assert offer.patent.application_number in text
    assert "120,000.00" in text or "120000.00" in text  # the lump sum, written out
    assert "Chinese" in text
    assert "中文" in text

    # The audit log commits to the signed file's hash (reliability.md T16).
    (issued,) = events(cast.session, "contract.issued")
    assert json.loads(issued.payload)["signed_sha256"] == contract["sha256"]
    assert json.loads(issued.payload)["unsigned_sha256"] == contract["unsigned_sha256"]
    (downloaded,) = events(cast.session, "contract.downloaded")
    assert json.loads(downloaded.payload)["signed_sha256"] == contract["sha256"]


def test_the_contract_validates_with_pyhanko_against_the_published_ca(
    cast: Cast, tmp_path: Path
) -> None:
    licence = cast.take_up()
    data = download(cast.auditor_api, licence["id"]).data
    root = ca_certificate(cast.api)

    embedded = PdfFileReader(io.BytesIO(data)).embedded_regular_signatures[0]
    status = validate_pdf_signature(
        embedded, ValidationContext(trust_roots=[root], allow_fetching=False)
    )
    assert status.bottom_line
    assert status.intact
    assert status.valid
    assert status.trusted
    assert status.docmdp_ok

    # And with the command-line validator an auditor would run (Done-when of issue 4).
    pdf, ca = tmp_path / "contract.pdf", tmp_path / "registry-ca.pem"
    pdf.write_bytes(data)
    ca.write_bytes(cast.api.get("/contracts/certificate.pem").data)
    pyhanko = Path(sys.executable).with_name("pyhanko")
    good = subprocess.run(  # noqa: S603 - our own venv's pyhanko, fixed arguments
        [pyhanko, "sign", "validate", "--no-revocation-check", "--trust", ca, pdf],
        capture_output=True,
        text=True,
        check=False,
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "INTACT:TRUSTED" in good.stdout
    flipped = bytearray(data)
    flipped[len(flipped) // 3] ^= 0x01
    pdf.write_bytes(bytes(flipped))
    bad = subprocess.run(  # noqa: S603 - as above
        [pyhanko, "sign", "validate", "--no-revocation-check", "--trust", ca, pdf],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0


def test_who_may_download(cast: Cast) -> None:
    licence = cast.take_up()
    for client in (cast.sme_api, cast.tto_api, cast.auditor_api, cast.admin_api):
        assert download(client, licence["id"]).status_code == 200
    for client in (cast.sme2_api, cast.other_tto_api):
        response = download(client, licence["id"])
        assert response.status_code == 404
        assert response.json["code"] == "not_found"
    assert download(cast.api, licence["id"]).status_code == 401
    # Addressed by id only: anything else is a 404, never a file.
    for junk in ("..%2f..%2fetc%2fpasswd", "00000000-0000-0000-0000-000000000000"):
        assert download(cast.admin_api, junk).status_code == 404


def test_licence_lists_show_the_contract(cast: Cast) -> None:
    licence = cast.take_up()
    listed = cast.auditor_api.get("/licences").json
    (entry,) = [item for item in listed if item["id"] == licence["id"]]
    assert entry["contract"] == licence["contract"]
    again = cast.sme_api.get(f"/licences/{licence['id']}").json
    assert again["contract"]["sha256"] == licence["contract"]["sha256"]


def test_contract_records_cannot_be_changed(cast: Cast) -> None:
    cast.take_up()
    for statement in ("UPDATE contracts SET size = 1", "DELETE FROM contracts"):
        with pytest.raises(DBAPIError, match="append-only"), cast.session.begin_nested():
            cast.session.execute(text(statement))
    assert cast.session.scalar(select(Contract.size)) != 1


# --- verify --------------------------------------------------------------------------------------


def test_anyone_verifies_a_genuine_contract(cast: Cast) -> None:
    licence = cast.take_up()
    data = download(cast.sme_api, licence["id"]).data
    response = verify(cast.api, data)  # anonymous
    assert response.status_code == 200, response.json
    verdict = response.json
    assert verdict["valid"] is True
    assert verdict["signature_valid"]
    assert verdict["unmodified"]
    assert verdict["matches_record"]
    assert verdict["licence_reference"] == licence["reference"]
    assert verdict["licensee"] == LICENSEE_NAME
    assert verdict["licensor"] == ["甲大学"]
    assert "Clearing House" in verdict["signer"]
    assert verdict["signed_dt"] == licence["contract"]["signed_dt"]
    assert verdict["problems"] == []


def test_changed_or_extended_copies_are_not_valid(cast: Cast) -> None:
    licence = cast.take_up()
    data = download(cast.sme_api, licence["id"]).data

    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x20
    appended = data + b"\n1 0 obj\n<< /Type /Annot >>\nendobj\n%%EOF\n"
    for variant in (bytes(flipped), appended, data[: len(data) - 100]):
        response = verify(cast.api, variant)
        assert response.status_code in (200, 422), response.json
        if response.status_code == 200:
            assert response.json["valid"] is False
            assert response.json["problems"]


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"", 422), (b"hello, not a pdf", 422), (b"%PDF-1.7\n garbage", 422)],
    ids=["empty", "not-a-pdf", "damaged"],
)
def test_unreadable_uploads_get_a_422_on_file(cast: Cast, body: bytes, status: int) -> None:
    response = verify(cast.api, body)
    assert response.status_code == status
    assert response.json["errors"][0]["field"] == "file"


def test_verify_needs_the_file_and_limits_its_size(cast: Cast) -> None:
    missing = cast.api.post("/contracts/verify", data={}, content_type="multipart/form-data")
    assert missing.status_code == 422
    assert missing.json["errors"][0]["field"] == "file"
    limit = cast.factory.app.config["REGISTRY_SETTINGS"].verify_max_bytes
    # The multipart body is built by hand: werkzeug's test client spools a large one to a
    # temporary file it never closes.
    boundary = "registry-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        + b"%PDF-1.7\n"
        + b"0" * limit
        + f"\r\n--{boundary}--\r\n".encode()
    )
    huge = cast.api.post(
        "/contracts/verify",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert huge.status_code == 413
    assert huge.json["code"] == "payload_too_large"


def test_certificate_is_public_pem(cast: Cast) -> None:
    response = cast.api.get("/contracts/certificate.pem")
    assert response.status_code == 200
    assert response.data.startswith(b"-----BEGIN CERTIFICATE-----")
    root = ca_certificate(cast.api)
    assert root.ca is True


# --- specimen and recordation pack ---------------------------------------------------------------


def test_anyone_reads_the_specimen_of_a_published_offer(cast: Cast) -> None:
    offer = cast.offer(royalty={"kind": "running", "base": "net_sales", "rate": "4.5"})
    blobs_before = sum(1 for _ in office(cast.factory.app).store)
    response = cast.api.get(f"/offers/{offer.id}/specimen.pdf")  # anonymous
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith("inline;")
    text = pdf_text(response.data)
    assert "样本" in text
    assert "SPECIMEN" in text
    assert offer.patent.application_number in text
    assert "4.5%" in text or "4.50%" in text
    assert "甲大学" in text
    assert LICENSEE_NAME not in text  # no licensee yet: placeholders only
    # Unsigned and not stored: the verifier finds no signature and nothing was written.
    verdict = verify(cast.api, response.data).json
    assert verdict["valid"] is False
    assert verdict["signature_valid"] is False
    assert "no signature" in verdict["problems"][0]
    assert sum(1 for _ in office(cast.factory.app).store) == blobs_before
    assert cast.session.scalar(select(func.count()).select_from(Contract)) == 0


def test_a_drafts_specimen_is_for_its_owners(cast: Cast) -> None:
    draft = lf.draft_offer(cast.factory, cast.tto)
    own = cast.tto_api.get(f"/offers/{draft.id}/specimen.pdf")
    assert own.status_code == 200
    assert "尚未公告" in pdf_text(own.data)
    for client in (cast.api, cast.sme_api, cast.other_tto_api):
        assert client.get(f"/offers/{draft.id}/specimen.pdf").status_code == 404


def test_the_recordation_pack_holds_the_contract_and_what_cnipa_asks(cast: Cast) -> None:
    licence = cast.take_up()
    recorded = cast.sme_api.put(
        f"/licences/{licence['id']}/recordation",
        json={"number": "X2026990000123", "date": today().isoformat(), "filed_by": "licensee"},
    )
    assert recorded.status_code == 200, recorded.json
    response = cast.sme_api.get(f"/licences/{licence['id']}/recordation-pack")
    assert response.status_code == 200
    assert response.mimetype == "application/zip"
    assert f"{licence['reference']}-recordation.zip" in response.headers["Content-Disposition"]

    archive = zipfile.ZipFile(io.BytesIO(response.data))
    names = archive.namelist()
    pdf_name = f"{licence['reference']}-contract.pdf"
    assert pdf_name in names
    assert "summary.csv" in names
    assert "summary.txt" in names
    assert archive.read(pdf_name) == download(cast.sme_api, licence["id"]).data
    summary = archive.read("summary.csv").decode("utf-8-sig")
    for expected in (LICENSEE_NAME, "甲大学", licence["reference"], "X2026990000123"):
        assert expected in summary
    terms = json.loads(archive.read(f"{licence['reference']}-terms.json"))
    assert terms["terms_sha256"] == licence["terms_sha256"]
    assert events(cast.session, "contract.recordation_pack")
    assert cast.sme2_api.get(f"/licences/{licence['id']}/recordation-pack").status_code == 404
