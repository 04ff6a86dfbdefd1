"""The terms document of a declaration: what is hashed, consented to, published and licensed.

Implementing Regulations Art. 85 lists what a declaration states: the patent and patentee (the
offer's patent), the royalty payment method and standard, the licence term and other matters.
CNIPA practice adds that it licenses anyone within China (law.md §3.1, E11) and DESIGN.md §2
the licensed acts, field of use and contact. One canonical JSON document holds them all; its
SHA-256 binds consents (E7) and licences to these exact terms.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import date
from typing import Any, Final

import marshmallow as ma

from registry.core.api import Schema
from registry.core.canonical import canonical_json
from registry.core.errors import FieldError
from registry.offers.lifecycle import term_end
from registry.offers.royalty import RoyaltySchema, StrictInteger, check_royalty, royalty_document
from registry.patents.models import Patent, PatentType

TERRITORY: Final = "mainland_china"
MAX_TERM_YEARS: Final = 20  # no patent lives longer (PL Art. 42)
PHONE = r"^\+?[0-9][0-9 ()\-]{4,29}$"


class LicensedAct(enum.StrEnum):
    """The exploitation acts of Patent Law Art. 11, in its order."""

    MAKE = "make"
    USE = "use"
    OFFER_TO_SELL = "offer_to_sell"
    SELL = "sell"
    IMPORT = "import"


ACT_ORDER = {act: position for position, act in enumerate(LicensedAct)}


class ContactSchema(Schema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    email = ma.fields.Email(allow_none=True, validate=ma.validate.Length(max=254))
    phone = ma.fields.String(
        allow_none=True,
        validate=ma.validate.Regexp(PHONE, error="a phone number: digits, spaces, + ( ) -"),
    )


class TermsSchema(Schema):
    """The editable terms of a draft (the patent is fixed when the draft is created)."""

    royalty = ma.fields.Nested(RoyaltySchema, required=True)
    term_years = StrictInteger(
        allow_none=True,
        validate=ma.validate.Range(min=1, max=MAX_TERM_YEARS),
        metadata={"description": "licence term in years from each take-up"},
    )
    term_end_date = ma.fields.Date(
        allow_none=True, metadata={"description": "or: one fixed last day for every licence"}
    )
    licensed_acts = ma.fields.List(
        ma.fields.Enum(LicensedAct, by_value=True),
        required=True,
        validate=ma.validate.Length(min=1, max=len(LicensedAct)),
    )
    field_of_use = ma.fields.String(allow_none=True, validate=ma.validate.Length(min=1, max=500))
    contact = ma.fields.Nested(ContactSchema, required=True)
    other_matters = ma.fields.String(allow_none=True, validate=ma.validate.Length(min=1, max=5000))


def months_between(start: date, end: date) -> int:
    """Whole calendar months from ``start`` up to and including the day ``end``."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if end.day + 1 < start.day:  # the last month is not complete
        months -= 1
    return max(months, 0)


def term_months(values: dict[str, Any], today: date) -> int | None:
    """The longest licence term in months: the declared years, or from today to the end."""
    if values.get("term_years") is not None:
        return int(values["term_years"]) * 12
    end = values.get("term_end_date")
    if end is None:
        return None
    end = date.fromisoformat(end) if isinstance(end, str) else end
    return months_between(today, end)


def term_years_span(values: dict[str, Any], today: date) -> int | None:
    """The licence years a take-up today can reach (for stepped rates)."""
    if values.get("term_years") is not None:
        return int(values["term_years"])
    months = term_months(values, today)
    return None if months is None else max(1, -(-months // 12))


def check_terms(values: dict[str, Any], *, patent: Patent, today: date) -> list[FieldError]:
    """Every inconsistency of loaded terms against each other and the patent.

    The term is one of ``term_years`` and ``term_end_date`` (IR Art. 85(4)) and may not outlast
    the patent (CC Art. 865; PL Art. 42); a design patent has no "use" act (PL Art. 11(2)).
    """
    errors: list[FieldError] = []
    years, end = values.get("term_years"), values.get("term_end_date")
    if years is not None and end is not None:
        errors.append(FieldError.of("term_end_date", "send term_years or term_end_date, not both"))
    elif years is None and end is None:
        errors.append(
            FieldError.of("term_years", "state the licence term: term_years or term_end_date")
        )
    if end is not None and end <= today:
        errors.append(FieldError.of("term_end_date", "the licence term must end after today"))
    last = term_end(values, today)
    if last is not None and last > patent.expiry_date:
        field = "term_years" if years is not None else "term_end_date"
        errors.append(
            FieldError.of(
                field,
                f"a licence taken today would run to {last.isoformat()}, past the patent's "
                f"expiry on {patent.expiry_date.isoformat()} (Civil Code Art. 865)",
            )
        )
    acts = values.get("licensed_acts") or []
    if len(set(acts)) != len(acts):
        errors.append(FieldError.of("licensed_acts", "an act is listed twice"))
    if patent.patent_type is PatentType.DESIGN and LicensedAct.USE in acts:
        errors.append(
            FieldError.of(
                "licensed_acts", "a design patent confers no right of use (Patent Law Art. 11(2))"
            )
        )
    contact = values.get("contact") or {}
    if contact and not contact.get("email") and not contact.get("phone"):
        errors.append(FieldError.of("contact", "give an e-mail address or a phone number"))
    if "royalty" in values:
        errors += check_royalty(
            values["royalty"],
            term_months=term_months(values, today),
            term_years=term_years_span(values, today),
        )
    return errors


def terms_document(values: dict[str, Any]) -> dict[str, Any]:
    """The canonical terms document of checked values."""
    contact = values["contact"]
    doc: dict[str, Any] = {
        "royalty": royalty_document(values["royalty"]),
        "licensed_acts": [
            act.value for act in sorted(set(values["licensed_acts"]), key=ACT_ORDER.__getitem__)
        ],
        "field_of_use": values.get("field_of_use"),
        "contact": {
            "name": contact["name"],
            "email": contact.get("email"),
            "phone": contact.get("phone"),
        },
        "other_matters": values.get("other_matters"),
        "territory": TERRITORY,
    }
    if values.get("term_years") is not None:
        doc["term_years"] = int(values["term_years"])
    else:
        doc["term_end_date"] = values["term_end_date"].isoformat()
    return doc


def terms_sha256(doc: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()


def load_document(doc: dict[str, Any]) -> dict[str, Any]:
    """Loaded values of a stored terms document (the inverse of :func:`terms_document`)."""
    loaded: dict[str, Any] = TermsSchema().load(
        {name: value for name, value in doc.items() if name != "territory"}
    )
    return loaded


def merge_for_edit(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Loaded terms with a PATCH's loaded fields applied.

    ``royalty`` and ``contact`` are replaced whole; sending either term field replaces the
    term, so a draft can switch from years to a fixed end date."""
    merged = dict(current)
    if "term_years" in changes or "term_end_date" in changes:
        merged.pop("term_years", None)
        merged.pop("term_end_date", None)
    merged.update(changes)
    return merged
