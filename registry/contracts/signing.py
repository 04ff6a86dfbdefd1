"""The clearing house's signature on a contract: keys, certificates and PAdES signing.

Development and tests use a CA and a signing certificate generated on first use into
``<instance>/signing/``; production loads the clearing house's PKCS#12 (``REGISTRY_SIGNING_P12``
and its passphrase). Either way the caller gets one :class:`SigningIdentity`.

The signature is a PAdES baseline signature (B-B, or B-T when a timestamp authority is named) that
*certifies* the document with DocMDP "no changes allowed": any later revision, even a form fill
or another signature, breaks the certification, which is what the verifier checks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import tempfile
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers, timestamps
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.validation.generic_cms import extract_tst_data_iter
from pyhanko_certvalidator.registry import SimpleCertificateStore

DEV_DIRECTORY = "signing"
CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
CERT_FILE = "signer.pem"
KEY_FILE = "signer.key"
DEV_CA_NAME = "Open Licence Registry Development CA"
DEV_SIGNER_NAME = "Open Licence Registry Clearing House (development)"
DEV_ORGANISATION = "Open Licence Registry (development)"
# Long enough that a development instance never meets an expired certificate; production
# certificates come from a real CA with its own lifetime.
DEV_VALIDITY = dt.timedelta(days=3650)
# Clocks of other machines validating the PDF may lag ours.
CLOCK_SKEW = dt.timedelta(days=1)
SIGNATURE_FIELD = "ClearingHouseSignature"
SIGNATURE_REASON = "Standard open licence contract issued by the Open Licence Registry"
TIMESTAMP_TIMEOUT_SECONDS = 10


class SigningConfigError(RuntimeError):
    """The signing keys cannot be loaded: the service must not issue contracts (fail loudly)."""


class SigningFailed(RuntimeError):
    """A contract could not be signed now (the timestamp authority did not answer)."""


@dataclass(frozen=True)
class SigningIdentity:
    """The clearing house's key and certificates, ready for pyHanko.

    ``chain`` lists the issuers of ``certificate`` up to and including the trust root (the last
    element); anyone verifying a contract needs that root, published as ``certificate.pem``.
    """

    signer: signers.SimpleSigner
    certificate: asn1_x509.Certificate
    chain: tuple[asn1_x509.Certificate, ...]

    @property
    def ca_certificate(self) -> asn1_x509.Certificate:
        return self.chain[-1] if self.chain else self.certificate

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the signing certificate (DER), as the contract record keeps it."""
        return str(self.certificate.sha256.hex())


@dataclass(frozen=True)
class SignedPdf:
    data: bytes
    signed_dt: dt.datetime
    certificate_sha256: str


def load_identity(
    *, instance_path: Path, p12_path: str | Path | None, p12_passphrase: str | None
) -> SigningIdentity:
    """The production identity when a PKCS#12 is configured, else the development one."""
    if p12_path:
        return load_p12_identity(Path(p12_path), p12_passphrase)
    return development_identity(instance_path)


def ca_certificate_pem(identity: SigningIdentity) -> bytes:
    """The trust root in PEM, for ``GET /api/v1/contracts/certificate.pem``."""
    return bytes(pem.armor("CERTIFICATE", identity.ca_certificate.dump()))


def load_p12_identity(path: Path, passphrase: str | None) -> SigningIdentity:
    """Load the production key and certificate chain from a PKCS#12 file.

    Raises :class:`SigningConfigError` when the file is missing, the passphrase is wrong, the
    archive holds no key or certificate, or the key does not belong to the certificate.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SigningConfigError(f"cannot read the signing PKCS#12 {path}: {exc}") from exc
    secret = passphrase.encode() if passphrase else None
    try:
        key, cert, others = pkcs12.load_key_and_certificates(data, secret)
    except ValueError as exc:
        raise SigningConfigError(
            f"cannot open the signing PKCS#12 {path}: wrong passphrase or damaged file"
        ) from exc
    if key is None or cert is None:
        raise SigningConfigError(f"the signing PKCS#12 {path} must hold a key and its certificate")
    if _public_der(key.public_key()) != _public_der(cert.public_key()):
        raise SigningConfigError(f"the key in {path} does not belong to its certificate")
    return _identity(key, cert, _order_chain(cert, list(others)))


def development_identity(instance_path: Path) -> SigningIdentity:
    """The development CA and signing certificate, generated on first use and reused after.

    Two processes starting together both generate a set in a private staging directory and
    rename it into place; the rename is atomic, the first one wins and the loser loads the
    winner's set, so every process signs with the same key.
    """
    directory = instance_path / DEV_DIRECTORY
    if not (directory / CERT_FILE).exists():
        _generate_development_keys(instance_path, directory)
    try:
        ca_cert = x509.load_pem_x509_certificate((directory / CA_CERT_FILE).read_bytes())
        cert = x509.load_pem_x509_certificate((directory / CERT_FILE).read_bytes())
        key = serialization.load_pem_private_key((directory / KEY_FILE).read_bytes(), None)
    except (OSError, ValueError) as exc:
        raise SigningConfigError(f"cannot load the development signing keys: {exc}") from exc
    return _identity(key, cert, [ca_cert])


def sign_pdf(
    data: bytes, identity: SigningIdentity, *, timestamp_url: str | None = None
) -> SignedPdf:
    """Certify ``data`` (an unsigned PDF) for the clearing house; no later change is allowed.

    Without ``timestamp_url`` the signature is PAdES B-B and its time is the one the signer
    states; with it the signature carries a timestamp token (B-T) from that authority, and
    :class:`SigningFailed` is raised when the authority does not answer.
    """
    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        certify=True,
        docmdp_permissions=fields.MDPPerm.NO_CHANGES,
        reason=SIGNATURE_REASON,
        location="China",
    )
    timestamper = (
        timestamps.HTTPTimeStamper(timestamp_url, timeout=TIMESTAMP_TIMEOUT_SECONDS)
        if timestamp_url
        else None
    )
    writer = IncrementalPdfFileWriter(BytesIO(data))
    pdf_signer = signers.PdfSigner(meta, signer=identity.signer, timestamper=timestamper)
    try:
        output = pdf_signer.sign_pdf(writer)
    except TimestampRequestError as exc:
        raise SigningFailed(f"the timestamp authority {timestamp_url} did not answer") from exc
    signed = output.getvalue()
    # Record the time a verifier will show: the timestamp authority's (B-T) or else the one
    # pyHanko wrote into the signature dictionary (/M), read back rather than a second clock
    # reading that would differ from it.
    embedded = PdfFileReader(BytesIO(signed)).embedded_regular_signatures[0]
    signed_dt = _timestamp_time(embedded.signer_info) or embedded.self_reported_timestamp
    if signed_dt is None:  # pragma: no cover - pyHanko always writes /M
        raise SigningConfigError("the signature carries no signing time")
    return SignedPdf(
        data=signed,
        signed_dt=signed_dt.astimezone(dt.UTC),
        certificate_sha256=identity.fingerprint,
    )


def _timestamp_time(signer_info: Any) -> dt.datetime | None:
    for token in extract_tst_data_iter(signer_info, signed=False):
        gen_time: dt.datetime = token["encap_content_info"]["content"].parsed["gen_time"].native
        return gen_time
    return None


def _identity(key: Any, cert: x509.Certificate, chain: list[x509.Certificate]) -> SigningIdentity:
    signing_cert = _to_asn1(cert)
    issuers = tuple(_to_asn1(c) for c in chain)
    key_info = asn1_keys.PrivateKeyInfo.load(
        key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signer = signers.SimpleSigner(
        signing_cert=signing_cert,
        signing_key=key_info,
        cert_registry=SimpleCertificateStore.from_certs([signing_cert, *issuers]),
    )
    return SigningIdentity(signer=signer, certificate=signing_cert, chain=issuers)


def _to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _public_der(public_key: Any) -> bytes:
    return bytes(
        public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _order_chain(cert: x509.Certificate, others: list[x509.Certificate]) -> list[x509.Certificate]:
    """Issuers of ``cert`` from the nearest up to the root; unrelated certificates go last."""
    chain: list[x509.Certificate] = []
    current = cert
    remaining = list(others)
    while current.issuer != current.subject:
        issuer = next((c for c in remaining if c.subject == current.issuer), None)
        if issuer is None:
            break
        chain.append(issuer)
        remaining.remove(issuer)
        current = issuer
    return chain + remaining


def _generate_development_keys(instance_path: Path, directory: Path) -> None:
    instance_path.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=instance_path, prefix=f".{DEV_DIRECTORY}."))  # 0700
    try:
        ca_key, ca_cert, key, cert = _make_development_certificates()
        _write(staging / CA_KEY_FILE, _private_pem(ca_key), 0o600)
        _write(staging / KEY_FILE, _private_pem(key), 0o600)
        _write(staging / CA_CERT_FILE, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        _write(staging / CERT_FILE, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        try:
            staging.rename(directory)
        except OSError:
            # Another process renamed its complete set into place first: use that one.
            if not (directory / CERT_FILE).exists():
                raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(staging)


def _make_development_certificates() -> tuple[
    ec.EllipticCurvePrivateKey, x509.Certificate, ec.EllipticCurvePrivateKey, x509.Certificate
]:
    # EC P-256: as strong as RSA 3072 and generated in milliseconds.
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(DEV_CA_NAME)
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(_name(DEV_SIGNER_NAME), ca_name, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return ca_key, ca_cert, key, cert


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: Any, now: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + DEV_VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=not cert_sign,  # "non-repudiation", which PAdES signers must carry
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, content: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
