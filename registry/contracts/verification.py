"""Verify a contract PDF someone holds: signed by the registry, unchanged, and on record.

The verdict has three independent parts, all of which must hold for ``valid``:

* ``signature_valid`` — the clearing house's certification signature is cryptographically
  intact and chains to the registry's CA (the trust root passed in, never one the file brings);
* ``unmodified`` — the signature covers the *entire* file: an incremental update appended after
  signing (the vehicle of shadow and overlay attacks, added or replaced pages, extra
  signatures) leaves bytes the signature does not cover, however harmless pyHanko's difference
  analysis might judge them;
* ``matches_record`` — the file's SHA-256 is a contract the registry issued.

A file that is not a readable PDF raises :class:`UnreadablePdf` (a 422 naming ``file``); any
readable PDF gets a verdict with its problems listed, never an unexpected exception.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from io import BytesIO

from asn1crypto import parser as asn1_parser
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.decode_limits import DecodeLimits
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from registry.core.errors import FieldError, ValidationFailed

logger = logging.getLogger(__name__)

# A PDF may carry junk before its header; readers accept the header within the first 1 KiB.
HEADER_WINDOW = 1024


class UnreadablePdf(ValidationFailed):
    """The upload is empty, not a PDF, or too damaged to read (422 on field ``file``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, [FieldError.of("file", message)])


@dataclass(frozen=True)
class Verdict:
    valid: bool
    signature_valid: bool
    unmodified: bool
    matches_record: bool
    sha256: str
    signer: str | None = None
    signed_dt: dt.datetime | None = None
    problems: list[str] = field(default_factory=list)


def verify_pdf(
    data: bytes,
    *,
    trust_roots: Iterable[asn1_x509.Certificate],
    known_hashes: Callable[[str], bool],
) -> Verdict:
    """Judge ``data`` against the registry's trust roots and its record of issued contracts.

    ``known_hashes`` answers whether a SHA-256 (hex) is the signed hash of a stored contract.
    Raises :class:`UnreadablePdf` for an empty file, a non-PDF or a PDF that cannot be parsed.
    """
    if not data:
        raise UnreadablePdf("the file is empty")
    if b"%PDF-" not in data[:HEADER_WINDOW]:
        raise UnreadablePdf("the file is not a PDF")
    sha256 = hashlib.sha256(data).hexdigest()
    signatures = _read_signatures(data)
    matches_record = known_hashes(sha256)
    problems = [] if matches_record else ["the file is not a contract issued by the registry"]
    if not signatures:
        problems.insert(0, "the PDF carries no signature")
        return Verdict(False, False, False, matches_record, sha256, problems=problems)
    if len(signatures) > 1:
        problems.append(f"the PDF carries {len(signatures)} signatures; a contract carries one")
    try:
        return _judge(data, signatures[0], list(trust_roots), matches_record, sha256, problems)
    # A hostile file can break the validator in ways no list of exception types foresees; the
    # answer to it is "not valid", not a 500 (and not the internals of the failure).
    except Exception:
        logger.info("signature validation failed", exc_info=True)
        problems.insert(0, "the signature cannot be validated")
        return Verdict(False, False, False, matches_record, sha256, problems=problems)


def _judge(
    data: bytes,
    embedded: EmbeddedPdfSignature,
    trust_roots: list[asn1_x509.Certificate],
    matches_record: bool,
    sha256: str,
    problems: list[str],
) -> Verdict:
    # The first signature is the certification the registry applied; anything later was added
    # and leaves it short of covering the entire file.
    status = _validate(embedded, trust_roots)
    signature_valid, signature_problems = _judge_signature(embedded, status)
    unmodified, coverage_problems = _judge_coverage(data, embedded, status)
    subject = status.signing_cert.subject
    return Verdict(
        valid=signature_valid and unmodified and matches_record,
        signature_valid=signature_valid,
        unmodified=unmodified,
        matches_record=matches_record,
        sha256=sha256,
        signer=str(subject.native.get("common_name") or subject.human_friendly),
        signed_dt=_signed_dt(status),
        problems=signature_problems + coverage_problems + problems,
    )


def _read_signatures(data: bytes) -> list[EmbeddedPdfSignature]:
    try:
        # Explicitly the limits for untrusted input: a decompression bomb stops at the limit.
        reader = PdfFileReader(
            BytesIO(data), strict=False, decode_limits=DecodeLimits.for_untrusted_input()
        )
        return list(reader.embedded_regular_signatures)
    # pyHanko's reader raises many types (PdfReadError, KeyError, TypeError, …) on malformed
    # input; each means the same thing to the caller.
    except Exception as exc:
        raise UnreadablePdf("the PDF is damaged and cannot be read") from exc


def _validate(
    embedded: EmbeddedPdfSignature, trust_roots: list[asn1_x509.Certificate]
) -> PdfSignatureStatus:
    # Only the registry's roots are trusted, nothing is fetched from the network, and a
    # certificate without revocation information is accepted (the development CA publishes
    # none); the coverage rule below replaces pyHanko's difference analysis, so skip it.
    context = ValidationContext(
        trust_roots=trust_roots, allow_fetching=False, revocation_mode="soft-fail"
    )
    return validate_pdf_signature(
        embedded,
        signer_validation_context=context,
        key_usage_settings=KeyUsageConstraints(
            key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False
        ),
        skip_diff=True,
    )


def _judge_signature(
    embedded: EmbeddedPdfSignature, status: PdfSignatureStatus
) -> tuple[bool, list[str]]:
    problems = []
    if not status.intact:
        problems.append("the signed content was changed after signing")
    elif not status.valid:
        problems.append("the signature value is not valid")
    if status.intact and status.valid and not status.trusted:
        issuer = status.signing_cert.issuer.human_friendly
        problems.append(f"the signer is not trusted by the registry (issued by {issuer})")
    if embedded.docmdp_level != MDPPerm.NO_CHANGES:
        problems.append("the signature does not certify the document against all changes")
    return not problems, problems


def _judge_coverage(
    data: bytes, embedded: EmbeddedPdfSignature, status: PdfSignatureStatus
) -> tuple[bool, list[str]]:
    if status.coverage == SignatureCoverageLevel.ENTIRE_FILE:
        # Covering every byte only means "unchanged" if those bytes hash to what was signed and
        # the one gap, the signature container, holds nothing but the signature.
        if not _container_is_exact(data, embedded):
            return False, ["the signature container holds data besides the signature"]
        return status.intact, []
    if status.coverage == SignatureCoverageLevel.ENTIRE_REVISION:
        return False, ["content was added to the PDF after it was signed"]
    return False, ["the signature does not cover the whole PDF"]


def _container_is_exact(data: bytes, embedded: EmbeddedPdfSignature) -> bool:
    """The gap in the byte range is the CMS in upper-case hex, as pyHanko writes it, then zeros.

    The gap is the only part of the file the signature does not cover: hex digits changed in
    case, or padding changed after the CMS, would leave the signature valid on a file that is
    no longer byte for byte the one issued.
    """
    _, gap_start, gap_end, _ = (int(n) for n in embedded.byte_range)
    content: bytes = embedded.pkcs7_content
    try:
        header = asn1_parser.parse(content, strict=False)
    except ValueError:
        return False
    der_length = sum(len(part) for part in header[3:])
    expected = b"<" + content.hex().upper().encode("ascii") + b">"
    return data[gap_start:gap_end] == expected and not any(content[der_length:])


def _signed_dt(status: PdfSignatureStatus) -> dt.datetime | None:
    # A timestamp token (B-T) from a trusted authority is evidence from a third party; prefer
    # it to the signer's own word.
    timestamp = status.timestamp_validity
    if timestamp is not None and timestamp.trusted:
        return timestamp.timestamp.astimezone(dt.UTC)
    if status.signer_reported_dt is not None:
        return status.signer_reported_dt.astimezone(dt.UTC)
    return None
