"""The contract's context: plain values (str, int, bool, lists and dicts) from a licence.

STYLE.md §8: the template never sees an ORM object, only what this module builds from plain
dicts, so a contract can be re-rendered from stored data alone. Every field a contract must
state (Civil Code Art. 845; reference/law.md B5) is checked here: ``StrictUndefined`` catches a
missing key, but a key that is present and empty would otherwise print as a blank.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Final

from registry.contracts.wording import royalty_clauses
from registry.core.clock import BEIJING
from registry.offers.royalty import upfront_amount

ACT_WORDS: Final = {
    "make": ("制造", "make"),
    "use": ("使用", "use"),
    "offer_to_sell": ("许诺销售", "offer to sell"),
    "sell": ("销售", "sell"),
    "import": ("进口", "import"),
}
PATENT_TYPES: Final = {
    "invention": ("发明专利", "invention patent"),
    "utility_model": ("实用新型专利", "utility model patent"),
    "design": ("外观设计专利", "design patent"),
}
FILERS: Final = {"licensor": ("许可方", "the licensor"), "licensee": ("被许可方", "the licensee")}
PARTY_FIELDS: Final = ("name", "uscc", "address")
PATENT_FIELDS: Final = ("title", "application_number", "patent_type", "filing_date", "expiry_date")
LICENCE_FIELDS: Final = (
    "reference",
    "terms",
    "terms_sha256",
    "notice_dt",
    "effective_date",
    "end_date",
)


class ContractDataError(ValueError):
    """Fields a contract must state are missing; ``fields`` names them."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__("the contract cannot be issued without: " + ", ".join(fields))
        self.fields = fields


def date_zh(value: date) -> str:
    return f"{value.year}年{value.month}月{value.day}日"


def date_en(value: date) -> str:
    return f"{value.day} {value.strftime('%B')} {value.year}"


def _date(value: date | str) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _instant(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return moment


def _dates(value: date | str | None) -> dict[str, str] | None:
    if value is None:
        return None
    day = _date(value)
    return {"iso": day.isoformat(), "zh": date_zh(day), "en": date_en(day)}


def _missing(record: dict[str, Any], fields: tuple[str, ...], prefix: str) -> list[str]:
    return [f"{prefix}.{name}" for name in fields if record.get(name) in (None, "", [], {})]


def _party(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": record["name"],
        "name_en": record.get("name_en") or record["name"],
        "uscc": record["uscc"],
        "address": record["address"],
        "is_sme": bool(record.get("is_sme", False)),
    }


def build_context(
    *,
    licence: dict[str, Any],
    licensors: list[dict[str, Any]],
    licensee: dict[str, Any],
    patent: dict[str, Any],
    declaration: dict[str, Any],
    recordation_filer: str = "licensor",
    specimen: bool = False,
) -> dict[str, Any]:
    """The template context of a licence's contract.

    ``licence`` holds the licence's columns (``terms`` is its snapshot), ``licensors`` the
    patentees (name, name_en, uscc, address), ``licensee`` the licensee's organisation,
    ``patent`` the patent (with ``service_invention``) and ``declaration`` the gazette entry
    that announced the offer (``gazette_number``, ``announced_dt``). ``specimen`` marks the
    unsigned sample of an offer's contract (registry.contracts.specimen). Raises
    :class:`ContractDataError` naming every missing field."""
    missing = _missing(licence, LICENCE_FIELDS, "licence")
    missing += _missing(patent, PATENT_FIELDS, "patent")
    missing += _missing(declaration, ("gazette_number", "announced_dt"), "declaration")
    missing += _missing(licensee, PARTY_FIELDS, "licensee")
    if not licensors:
        missing.append("licensors")
    for index, licensor in enumerate(licensors):
        missing += _missing(licensor, PARTY_FIELDS, f"licensors.{index}")
    if recordation_filer not in FILERS:
        missing.append("recordation_filer")
    if missing:
        raise ContractDataError(missing)

    terms = licence["terms"]
    royalty = terms["royalty"]
    party = _party(licensee)
    effective = _date(licence["effective_date"])
    notice_at = _instant(licence["notice_dt"]).astimezone(BEIJING)
    announced = _instant(declaration["announced_dt"]).astimezone(BEIJING).date()
    notice = licence.get("notice") or {}
    filer_zh, filer_en = FILERS[recordation_filer]
    type_zh, type_en = PATENT_TYPES[patent["patent_type"]]
    granted = patent.get("grant_date") is not None
    field = terms.get("field_of_use")
    return {
        "specimen": specimen,
        "contract": {
            "number": licence["reference"],
            "recordation_number": licence.get("recordation_number"),
            "date": _dates(effective),
            "end_date": _dates(licence["end_date"]),
            # CC Art. 492: a contract by data message is formed at the recipient's (the
            # licensor's) principal place of business.
            "place_zh": licensors[0]["address"],
            "terms_sha256": licence["terms_sha256"],
            "offer_version": licence.get("offer_version"),
        },
        "licensors": [_party(record) for record in licensors],
        "licensee": party,
        "patent": {
            "title": patent["title"],
            "title_en": patent.get("title_en") or patent["title"],
            "type_zh": type_zh,
            "type_en": type_en,
            "application_number": patent["application_number"],
            "patent_number": f"ZL{patent['application_number']}" if granted else None,
            "filing_date": _dates(patent["filing_date"]),
            "grant_date": _dates(patent.get("grant_date")),
            "expiry_date": _dates(patent["expiry_date"]),
            "service_invention": bool(patent.get("service_invention", False)),
            "patentees": [record["name"] for record in licensors],
        },
        "declaration": {
            "gazette_number": declaration["gazette_number"],
            "announced": _dates(announced),
        },
        "notice": {
            "received_zh": f"{date_zh(notice_at.date())} {notice_at:%H:%M:%S}（北京时间）",
            "received_en": f"{notice_at:%H:%M:%S} Beijing time on {date_en(notice_at.date())}",
            "intended_use": notice.get("intended_use"),
            "contact_name": notice.get("contact_name"),
        },
        "grant": {
            "acts_zh": "、".join(ACT_WORDS[act][0] for act in terms["licensed_acts"]),
            "acts_en": ", ".join(ACT_WORDS[act][1] for act in terms["licensed_acts"]),
            "field_zh": field or "不限",
            "field_en": field or "not limited",
            "term_years": terms.get("term_years"),
        },
        "royalty": {
            "kind": royalty["kind"],
            "clauses": royalty_clauses(royalty, licensee_is_sme=party["is_sme"]),
            "is_running": royalty["kind"] in ("running", "entry_plus_running"),
            "is_free": royalty["kind"] == "free",
            "upfront_due": upfront_amount(royalty) > 0 and royalty.get("free_months") is None,
        },
        "contact": dict(terms["contact"]),
        "other_matters": terms.get("other_matters"),
        "recordation": {
            "filer_zh": filer_zh,
            "filer_en": filer_en,
            "due": _dates(licence.get("recordation_due_date")),
        },
    }
