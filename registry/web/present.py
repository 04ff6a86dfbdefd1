"""Terms written out in words for the pages, from the same wording the contract uses.

The royalty clauses come from registry.contracts.wording, sentence for sentence what the
signed contract will say, in the page's language; acts and patent types use the contract's
words too. Nothing here decides anything: it only says what the terms document holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from flask_babel import gettext as _

from registry.contracts.context import ACT_WORDS, PATENT_TYPES
from registry.contracts.wording import royalty_clauses
from registry.web import i18n, labels


@dataclass(frozen=True)
class TermsText:
    kind: str
    clauses: list[str]
    term: str
    acts: str
    field_of_use: str | None
    territory: str
    contact: dict[str, Any]
    other_matters: str | None


def term_words(terms: dict[str, Any]) -> str:
    if terms.get("term_years") is not None:
        return _(
            "%(years)d years from the day the licence is taken up (not beyond the patent's expiry)",
            years=int(terms["term_years"]),
        )
    return _(
        "until %(day)s (not beyond the patent's expiry)",
        day=i18n.day(date.fromisoformat(terms["term_end_date"])),
    )


def terms_text(terms: dict[str, Any], *, licensee_is_sme: bool | None) -> TermsText:
    """``licensee_is_sme``: for a known licensee, whether an SME discount applies; ``None``
    on a public offer page."""
    royalty = terms["royalty"]
    clauses = royalty_clauses(royalty, licensee_is_sme=licensee_is_sme)
    separator = "、" if i18n.language() == "zh" else ", "
    return TermsText(
        kind=labels.label(labels.ROYALTY_KINDS, royalty["kind"]),
        clauses=[i18n.pick({"zh": c["zh"], "en": c["en"]}) for c in clauses],
        term=term_words(terms),
        acts=separator.join(
            i18n.pick(dict(zip(("zh", "en"), ACT_WORDS[act], strict=True)))
            for act in terms["licensed_acts"]
        ),
        field_of_use=terms.get("field_of_use"),
        territory=_("Mainland China"),
        contact=dict(terms.get("contact") or {}),
        other_matters=terms.get("other_matters"),
    )


def patent_type_words(patent_type: Any) -> str:
    key = getattr(patent_type, "value", patent_type)
    return i18n.pick(dict(zip(("zh", "en"), PATENT_TYPES[key], strict=True)))


def organisation_name(organisation: Any) -> str:
    """The English name on English pages when the organisation has one."""
    if i18n.language() == "en" and getattr(organisation, "name_en", None):
        return str(organisation.name_en)
    return str(organisation.name)


def patent_title(patent: Any) -> str:
    if i18n.language() == "en" and getattr(patent, "title_en", None):
        return str(patent.title_en)
    return str(patent.title)
