"""Signing contracts for the clearing house and verifying the copies people hold (issue 4).

One small WeasyPrint PDF is signed once per module; every tamper case starts from those bytes.
pyHanko's own validator (what ``pyhanko sign validate --trust ca.pem`` runs) checks the
signature independently of ``verify_pdf``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyhanko.keys import load_certs_from_pemder_data
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from weasyprint import HTML

from registry.contracts import signing, verification
from registry.contracts.verification import UnreadablePdf, Verdict, verify_pdf

PASSPHRASE = "correct horse battery staple"
# A time the signer's clock cannot produce, so the test sees whose time was recorded.
TSA_TIME = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="module")
def identity(instance: Path) -> signing.SigningIdentity:
    return signing.development_identity(instance)


@pytest.fixture(scope="module")
def other_identity(tmp_path_factory: pytest.TempPathFactory) -> signing.SigningIdentity:
    """A second, self-made CA and signer: what a forger would sign with."""
    return signing.development_identity(tmp_path_factory.mktemp("forger"))


@pytest.fixture(scope="module")
def unsigned() -> bytes:
    html = (
        "<h1>专利开放许可合同 / Open Licence Contract</h1>"
        "<p>许可费 5% / Royalty 5%</p>"
        "<p style='page-break-before: always'>签署页 / Signature page</p>"
    )
    return bytes(HTML(string=html).write_pdf())


@pytest.fixture(scope="module")
def signed(unsigned: bytes, identity: signing.SigningIdentity) -> signing.SignedPdf:
    return signing.sign_pdf(unsigned, identity)


@pytest.fixture(scope="module")
def check(
    identity: signing.SigningIdentity, signed: signing.SignedPdf
) -> Callable[[bytes], Verdict]:
    """verify_pdf as the API will call it: the registry CA, the issued contract on record."""
    on_record = {hashlib.sha256(signed.data).hexdigest()}

    def run(data: bytes) -> Verdict:
        return verify_pdf(
            data, trust_roots=[identity.ca_certificate], known_hashes=on_record.__contains__
        )

    return run


def pyhanko_status(data: bytes, ca_pem: bytes) -> tuple[EmbeddedPdfSignature, PdfSignatureStatus]:
    """What ``pyhanko sign validate --trust ca.pem`` reports, difference analysis included."""
    context = ValidationContext(trust_roots=list(load_certs_from_pemder_data(ca_pem)))
    embedded = PdfFileReader(BytesIO(data)).embedded_regular_signatures[0]
    return embedded, validate_pdf_signature(embedded, context)


def incremental_update(data: bytes, change: Callable[[IncrementalPdfFileWriter], None]) -> bytes:
    writer = IncrementalPdfFileWriter(BytesIO(data))
    change(writer)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


# --- signing -------------------------------------------------------------------------------------


def test_pyhanko_validates_the_certified_pades_signature(
    signed: signing.SignedPdf, identity: signing.SigningIdentity
) -> None:
    embedded, status = pyhanko_status(signed.data, signing.ca_certificate_pem(identity))
    assert status.bottom_line
    assert status.trusted
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert status.docmdp_ok
    # Certification with "no changes allowed", PAdES sub-filter, SHA-256.
    assert embedded.docmdp_level == MDPPerm.NO_CHANGES
    assert embedded.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert status.md_algorithm == "sha256"
    # PAdES B-B: the signing certificate is bound by a signed attribute, the time is /M.
    signed_attrs = {a["type"].native for a in embedded.signer_info["signed_attrs"]}
    assert "signing_certificate_v2" in signed_attrs
    assert "signing_time" not in signed_attrs
    assert status.signing_cert.sha256.hex() == signed.certificate_sha256


def test_signing_appends_to_the_unsigned_pdf_and_reports_time_and_fingerprint(
    unsigned: bytes, identity: signing.SigningIdentity, instance: Path
) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    result = signing.sign_pdf(unsigned, identity)
    after = dt.datetime.now(dt.UTC)
    # An incremental update: the unsigned bytes, whose hash the record keeps, are a prefix.
    assert result.data.startswith(unsigned)
    assert before <= result.signed_dt <= after
    assert result.signed_dt.utcoffset() == dt.timedelta(0)
    cert = x509.load_pem_x509_certificate((instance / "signing" / "signer.pem").read_bytes())
    assert result.certificate_sha256 == cert.fingerprint(cert.signature_hash_algorithm).hex()
    assert (
        result.certificate_sha256
        == hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    )


@pytest.fixture(scope="module")
def tsa_url(instance: Path) -> Iterator[str]:
    """A timestamp authority on localhost, certified by the registry CA (no network needed)."""
    directory = instance / "signing"
    ca_key = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), None)
    ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # pyHanko's test TSA
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TSA")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    stamper = DummyTimeStamper(
        tsa_cert=asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
        tsa_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        ),
        fixed_dt=TSA_TIME,
    )

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = tsp.TimeStampReq.load(self.rfile.read(int(self.headers["Content-Length"])))
            body = stamper.request_tsa_response(request).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


def test_timestamp_authority_makes_the_signature_b_t(
    unsigned: bytes,
    identity: signing.SigningIdentity,
    check: Callable[[bytes], Verdict],
    tsa_url: str,
) -> None:
    result = signing.sign_pdf(unsigned, identity, timestamp_url=tsa_url)

    # The recorded time is the authority's, not the signer's clock.
    assert result.signed_dt == TSA_TIME
    _, status = pyhanko_status(result.data, signing.ca_certificate_pem(identity))
    assert status.bottom_line
    assert status.timestamp_validity is not None
    assert status.timestamp_validity.trusted
    verdict = check(result.data)
    assert verdict.signature_valid
    assert verdict.unmodified
    assert verdict.signed_dt == TSA_TIME


def test_unreachable_timestamp_authority_fails_signing(
    unsigned: bytes, identity: signing.SigningIdentity
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/"
        with pytest.raises(signing.SigningFailed, match="timestamp authority"):
            signing.sign_pdf(unsigned, identity, timestamp_url=url)


# --- development keys ----------------------------------------------------------------------------


def test_development_keys_are_private_and_reused(
    instance: Path, identity: signing.SigningIdentity
) -> None:
    directory = instance / "signing"
    for name in ("signer.key", "ca.key"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    contents = {p.name: p.read_bytes() for p in directory.iterdir()}

    again = signing.development_identity(instance)

    assert again.fingerprint == identity.fingerprint
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == contents


def test_development_ca_signs_the_signing_certificate(instance: Path) -> None:
    directory = instance / "signing"
    ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    cert = x509.load_pem_x509_certificate((directory / "signer.pem").read_bytes())
    assert ca.subject == ca.issuer
    assert "Open Licence Registry Development CA" in ca.subject.rfc4514_string()
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(ca)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.content_commitment


def test_processes_starting_together_share_one_key(tmp_path: Path) -> None:
    start = threading.Barrier(6)

    def first_use() -> str:
        start.wait()
        return signing.development_identity(tmp_path).fingerprint

    with ThreadPoolExecutor(max_workers=6) as pool:
        fingerprints = list(pool.map(lambda _: first_use(), range(6)))

    assert len(set(fingerprints)) == 1
    # The losers' staging directories are gone; only the winner's set remains.
    assert [p.name for p in tmp_path.iterdir()] == ["signing"]
    assert fingerprints[0] == signing.development_identity(tmp_path).fingerprint


def test_damaged_development_key_refuses_to_load(tmp_path: Path) -> None:
    signing.development_identity(tmp_path)
    (tmp_path / "signing" / "signer.key").write_bytes(b"not a key")
    with pytest.raises(signing.SigningConfigError, match="development signing keys"):
        signing.development_identity(tmp_path)


def test_ca_certificate_pem_is_the_development_root(
    identity: signing.SigningIdentity, instance: Path
) -> None:
    pem_bytes = signing.ca_certificate_pem(identity)
    assert pem_bytes.startswith(b"-----BEGIN CERTIFICATE-----")
    published = x509.load_pem_x509_certificate(pem_bytes)
    on_disk = x509.load_pem_x509_certificate((instance / "signing" / "ca.pem").read_bytes())
    assert published == on_disk


# --- production PKCS#12 --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def p12_path(
    instance: Path, identity: signing.SigningIdentity, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A PKCS#12 holding the development signer's key, certificate and CA, as a CA would ship."""
    directory = instance / "signing"
    key = serialization.load_pem_private_key((directory / "signer.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    cert = x509.load_pem_x509_certificate((directory / "signer.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    data = pkcs12.serialize_key_and_certificates(
        b"clearing house",
        key,
        cert,
        [ca],
        serialization.BestAvailableEncryption(PASSPHRASE.encode()),
    )
    path = tmp_path_factory.mktemp("p12") / "signing.p12"
    path.write_bytes(data)
    return path


def test_p12_identity_signs_contracts_the_registry_ca_trusts(
    p12_path: Path,
    identity: signing.SigningIdentity,
    unsigned: bytes,
    check: Callable[[bytes], Verdict],
    tmp_path: Path,
) -> None:
    loaded = signing.load_identity(
        instance_path=tmp_path, p12_path=str(p12_path), p12_passphrase=PASSPHRASE
    )
    assert loaded.fingerprint == identity.fingerprint
    assert signing.ca_certificate_pem(loaded) == signing.ca_certificate_pem(identity)
    # No development keys were generated in production mode.
    assert not (tmp_path / "signing").exists()

    verdict = check(signing.sign_pdf(unsigned, loaded).data)
    assert verdict.signature_valid
    assert verdict.unmodified


def test_p12_with_wrong_passphrase_or_missing_file_refuses_to_load(
    p12_path: Path, tmp_path: Path
) -> None:
    with pytest.raises(signing.SigningConfigError, match="wrong passphrase"):
        signing.load_p12_identity(p12_path, "wrong")
    with pytest.raises(signing.SigningConfigError, match="cannot read"):
        signing.load_p12_identity(tmp_path / "missing.p12", PASSPHRASE)


def test_without_p12_the_development_identity_is_used(
    instance: Path, identity: signing.SigningIdentity
) -> None:
    loaded = signing.load_identity(instance_path=instance, p12_path=None, p12_passphrase=None)
    assert loaded.fingerprint == identity.fingerprint


# --- verification --------------------------------------------------------------------------------


def test_issued_contract_is_valid(
    check: Callable[[bytes], Verdict], signed: signing.SignedPdf
) -> None:
    verdict = check(signed.data)
    assert verdict == Verdict(
        valid=True,
        signature_valid=True,
        unmodified=True,
        matches_record=True,
        sha256=hashlib.sha256(signed.data).hexdigest(),
        signer=signing.DEV_SIGNER_NAME,
        signed_dt=signed.signed_dt,
        problems=[],
    )


def test_signed_but_unrecorded_contract_is_not_valid(
    identity: signing.SigningIdentity, signed: signing.SignedPdf
) -> None:
    verdict = verify_pdf(
        signed.data, trust_roots=[identity.ca_certificate], known_hashes=lambda _: False
    )
    assert (verdict.valid, verdict.signature_valid, verdict.unmodified) == (False, True, True)
    assert not verdict.matches_record
    assert verdict.problems == ["the file is not a contract issued by the registry"]


def _flip(data: bytes, offset: int) -> bytes:
    changed = bytearray(data)
    changed[offset] ^= 0x01
    return bytes(changed)


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(lambda d: d.index(b"stream\n") + 20, id="page-content"),
        pytest.param(lambda d: d.index(b"Standard open licence") + 3, id="signature-reason"),
    ],
)
def test_one_changed_byte_invalidates_the_contract(
    check: Callable[[bytes], Verdict],
    signed: signing.SignedPdf,
    identity: signing.SigningIdentity,
    where: Callable[[bytes], int],
) -> None:
    tampered = _flip(signed.data, where(signed.data))

    verdict = check(tampered)

    assert not verdict.valid
    assert not verdict.signature_valid
    assert not verdict.unmodified
    assert "the signed content was changed after signing" in verdict.problems
    _, status = pyhanko_status(tampered, signing.ca_certificate_pem(identity))
    assert not status.intact
    assert not status.bottom_line


def test_changed_padding_in_the_signature_container_is_a_modification(
    check: Callable[[bytes], Verdict], signed: signing.SignedPdf
) -> None:
    # The container is the one gap the signature cannot cover; pyHanko pads it with zeros.
    gap = re.search(rb"/Contents\s*<", signed.data)
    assert gap is not None
    last_digit = signed.data.index(b">", gap.end()) - 1
    assert signed.data[last_digit - 3 : last_digit + 1] == b"0000"
    tampered = signed.data[:last_digit] + b"F" + signed.data[last_digit + 1 :]

    verdict = check(tampered)

    assert verdict.signature_valid
    assert not verdict.unmodified
    assert not verdict.valid


def test_hex_case_changed_in_the_signature_container_is_a_modification(
    check: Callable[[bytes], Verdict], signed: signing.SignedPdf
) -> None:
    # "A" and "a" decode to the same signature, yet the file is no longer the one issued.
    gap = re.search(rb"/Contents\s*<", signed.data)
    assert gap is not None
    letter = re.compile(rb"[A-F]").search(signed.data, gap.end())
    assert letter is not None
    at = letter.start()
    tampered = signed.data[:at] + signed.data[at : at + 1].lower() + signed.data[at + 1 :]

    verdict = check(tampered)

    assert verdict.signature_valid
    assert not verdict.unmodified
    assert "the signature container holds data besides the signature" in verdict.problems


def _set_language(writer: IncrementalPdfFileWriter) -> None:
    writer.root["/Lang"] = generic.TextStringObject("en")
    writer.update_root()


def _add_page(writer: IncrementalPdfFileWriter) -> None:
    page = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Page"),
            generic.NameObject("/MediaBox"): generic.ArrayObject(
                [generic.NumberObject(n) for n in (0, 0, 595, 842)]
            ),
        }
    )
    writer.insert_page(page)


def _overlay_text(writer: IncrementalPdfFileWriter) -> None:
    # The overlay attack: draw new terms over the signed page in a later revision.
    stream = generic.StreamObject(stream_data=b"0 0 1 rg 0 0 595 842 re f")
    writer.add_stream_to_page(0, writer.add_object(stream))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_set_language, id="catalogue-changed"),
        pytest.param(_add_page, id="page-added"),
        pytest.param(_overlay_text, id="overlay"),
    ],
)
def test_incremental_update_after_signing_is_a_modification(
    check: Callable[[bytes], Verdict],
    signed: signing.SignedPdf,
    identity: signing.SigningIdentity,
    change: Callable[[IncrementalPdfFileWriter], None],
) -> None:
    updated = incremental_update(signed.data, change)

    verdict = check(updated)

    assert verdict.signature_valid  # the signed revision itself is intact
    assert not verdict.unmodified
    assert not verdict.valid
    assert "content was added to the PDF after it was signed" in verdict.problems
    # pyHanko agrees: the certification allowed no changes at all.
    _, status = pyhanko_status(updated, signing.ca_certificate_pem(identity))
    assert status.coverage == SignatureCoverageLevel.ENTIRE_REVISION
    assert not status.bottom_line


def test_bytes_appended_after_signing_are_a_modification(
    check: Callable[[bytes], Verdict], signed: signing.SignedPdf
) -> None:
    verdict = check(signed.data + b"\n% appended\n")
    assert not verdict.unmodified
    assert not verdict.valid


def test_signature_of_unknown_format_is_not_valid(
    check: Callable[[bytes], Verdict], signed: signing.SignedPdf
) -> None:
    # Same length, so the file still parses; pyHanko ignores a signature it cannot interpret.
    tampered = signed.data.replace(b"/ETSI.CAdES.detached", b"/ETSI.CAdES.detachex", 1)
    assert tampered != signed.data

    verdict = check(tampered)

    assert (verdict.valid, verdict.signature_valid, verdict.unmodified) == (False, False, False)


def test_validator_failure_gives_a_verdict_without_internals(
    check: Callable[[bytes], Verdict],
    signed: signing.SignedPdf,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("internal detail /srv/secret")

    monkeypatch.setattr(verification, "validate_pdf_signature", explode)

    verdict = check(signed.data)

    assert (verdict.valid, verdict.signature_valid, verdict.unmodified) == (False, False, False)
    assert verdict.matches_record
    assert verdict.problems == ["the signature cannot be validated"]


def test_stripped_signature_is_not_valid(
    check: Callable[[bytes], Verdict], signed: signing.SignedPdf, unsigned: bytes
) -> None:
    # Dropping the signing revision leaves a well-formed PDF with the same pages, unsigned.
    stripped = signed.data[: len(unsigned)]
    assert stripped == unsigned

    verdict = check(stripped)

    assert (verdict.valid, verdict.signature_valid, verdict.unmodified) == (False, False, False)
    assert verdict.signer is None
    assert verdict.problems[0] == "the PDF carries no signature"


def test_signature_by_another_key_is_not_trusted(
    identity: signing.SigningIdentity,
    other_identity: signing.SigningIdentity,
    unsigned: bytes,
) -> None:
    forged = signing.sign_pdf(unsigned, other_identity).data

    # Even if the forger's hash were somehow on record, the registry CA does not vouch for it.
    verdict = verify_pdf(forged, trust_roots=[identity.ca_certificate], known_hashes=lambda _: True)
    assert not verdict.signature_valid
    assert not verdict.valid
    assert any("not trusted" in problem for problem in verdict.problems)
    _, status = pyhanko_status(forged, signing.ca_certificate_pem(identity))
    assert not status.trusted
    # The same file under its own CA is fine: trust, not the cryptography, made the difference.
    own = verify_pdf(
        forged, trust_roots=[other_identity.ca_certificate], known_hashes=lambda _: True
    )
    assert own.valid


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "the file is empty", id="empty"),
        pytest.param(b"PK\x03\x04 a zip file", "the file is not a PDF", id="zip"),
        pytest.param(b"%PDF-1.7\n%%EOF garbage", "cannot be read", id="header-only"),
    ],
)
def test_non_pdf_is_rejected_naming_the_file_field(
    check: Callable[[bytes], Verdict], data: bytes, message: str
) -> None:
    with pytest.raises(UnreadablePdf, match=message) as caught:
        check(data)
    assert caught.value.status == 422
    assert [e.field for e in caught.value.errors] == ["file"]


def test_truncated_contract_is_rejected(
    check: Callable[[bytes], Verdict], signed: signing.SignedPdf
) -> None:
    with pytest.raises(UnreadablePdf):
        check(signed.data[: len(signed.data) // 2])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(changes=st.lists(st.tuples(st.integers(0), st.integers(0, 255)), min_size=1, max_size=3))
def test_any_changed_bytes_give_a_verdict_or_a_422_never_valid(
    identity: signing.SigningIdentity,
    signed: signing.SignedPdf,
    changes: list[tuple[int, int]],
) -> None:
    """Signature and coverage checks alone catch every change (the record is not consulted)."""
    tampered = bytearray(signed.data)
    for position, value in changes:
        tampered[position % len(tampered)] = value
    if bytes(tampered) == signed.data:
        return
    try:
        verdict = verify_pdf(
            bytes(tampered), trust_roots=[identity.ca_certificate], known_hashes=lambda _: True
        )
    except UnreadablePdf:
        return
    assert not verdict.valid
