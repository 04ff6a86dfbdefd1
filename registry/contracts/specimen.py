"""The specimen contract of an offer: what a licensee would get, before anyone takes it up.

An SME reads the contract before it gives the written notice that binds it (PL Art. 51(1)), so
``GET /offers/{id}/specimen.pdf`` renders the offer's contract with the same template, the
same terms and the same wording as a real one (build_context), and only what a take-up would
supply left as placeholders: the licensee, the time of its notice and the contract number. The
specimen is watermarked 样本 SPECIMEN on every page, says on its signature page that it is
unsigned and not a contract, is never signed and never stored.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from typing import Any, Final

from registry.contracts.context import build_context
from registry.contracts.rendering import TEMPLATE_KEY, TEMPLATE_VERSION, render_contract
from registry.contracts.wording import Clause, royalty_clauses
from registry.core.clock import BEIJING
from registry.core.pdf import RenderError

SPECIMEN_REFERENCE: Final = "OL-样本-SPECIMEN"
PLACEHOLDER_LICENSEE: Final = {
    "name": "（被许可方名称）",
    "name_en": "[Licensee name]",
    "uscc": "（被许可方统一社会信用代码）/ [Licensee USCC]",
    "address": "（被许可方住所）/ [Licensee address]",
}
NOTICE_PLACEHOLDER_ZH: Final = "（被许可方书面通知到达之时，北京时间）"
NOTICE_PLACEHOLDER_EN: Final = "[the time the licensee's written notice is received, Beijing time]"
# Said instead of "the licensee is (not) an SME": a specimen has no licensee yet.
SME_UNKNOWN: Final = {
    "zh": "被许可方是否为中小企业、是否适用本款优惠，以其取得许可时在登记机构登记的信息为准。",
    "en": "Whether the licensee is an SME, and so whether this discount applies, follows from "
    "its details registered with the registry when it takes the licence.",
}
_SENTENCES: Final = {"zh": re.compile(r"[^。]+。?"), "en": re.compile(r"\S.*?(?:[.!?](?=\s|$)|$)")}
_JOIN: Final = {"zh": "", "en": " "}


def specimen_context(
    *,
    terms: dict[str, Any],
    terms_sha256: str,
    licensors: list[dict[str, Any]],
    patent: dict[str, Any],
    declaration: dict[str, Any],
    today: date,
    end_date: date,
    offer_version: int | None = None,
    recordation_filer: str = "licensor",
) -> dict[str, Any]:
    """The context of the contract an offer would give a licensee taking it up ``today``.

    ``terms`` and ``terms_sha256`` are the offer's (render_contract checks that they agree, and
    the specimen prints the hash a take-up would snapshot); ``licensors``, ``patent`` and
    ``declaration`` are what build_context takes for a licence on the offer; ``end_date`` is
    the day a take-up today would end (the caller's offer_end_date). Raises
    registry.contracts.context.ContractDataError naming missing fields."""
    licence = {
        "reference": SPECIMEN_REFERENCE,
        "terms": terms,
        "terms_sha256": terms_sha256,
        # Replaced by the placeholder below; build_context needs an instant to format.
        "notice_dt": datetime.combine(today, time(), BEIJING),
        "effective_date": today,
        "end_date": end_date,
        "offer_version": offer_version,
        "recordation_due_date": None,  # three months from a take-up that has not happened
    }
    context = build_context(
        licence=licence,
        licensors=licensors,
        licensee=dict(PLACEHOLDER_LICENSEE),
        patent=patent,
        declaration=declaration,
        recordation_filer=recordation_filer,
        specimen=True,
    )
    context["licensee"]["is_sme"] = None  # not known until someone takes the licence
    context["notice"]["received_zh"] = NOTICE_PLACEHOLDER_ZH
    context["notice"]["received_en"] = NOTICE_PLACEHOLDER_EN
    context["royalty"]["clauses"] = specimen_clauses(terms["royalty"])
    return context


def specimen_clauses(royalty: dict[str, Any]) -> list[Clause]:
    """The royalty clauses with whatever depends on the licensee being an SME left open.

    The wording is written for an SME and for a non-SME licensee; clauses that read the same
    both ways are kept, and a clause that differs keeps the sentences both versions share (the
    discount itself, offered to every eligible licensee) followed by :data:`SME_UNKNOWN`."""
    as_sme = royalty_clauses(royalty, licensee_is_sme=True)
    as_other = royalty_clauses(royalty, licensee_is_sme=False)
    return [
        one if one == other else _shared_part(one, other)
        for one, other in zip(as_sme, as_other, strict=True)
    ]


def _shared_part(one: Clause, other: Clause) -> Clause:
    clause: Clause = {}
    for language in ("zh", "en"):
        first = _SENTENCES[language].findall(one[language])
        second = _SENTENCES[language].findall(other[language])
        shared: list[str] = []
        for left, right in zip(first, second, strict=False):
            if left != right:
                break
            shared.append(left)
        if not shared:
            raise RenderError("an SME-dependent royalty clause has no wording both licensees share")
        clause[language] = _JOIN[language].join([*shared, SME_UNKNOWN[language]])
    return clause


def render_specimen(
    context: dict[str, Any],
    *,
    terms: dict[str, Any],
    key: str = TEMPLATE_KEY,
    version: str = TEMPLATE_VERSION,
) -> bytes:
    """The specimen PDF (PDF/A-3b, the offer's terms attached as ``terms.json``), unsigned.

    Its document time is midnight (Beijing) of the specimen's effective date, so the bytes
    depend on the context alone. Refuses a context that is not a specimen's, so a licence's
    context can never come out of here unsigned and watermarked by mistake."""
    if context.get("specimen") is not True:
        raise RenderError("render_specimen renders only a specimen_context")
    effective = date.fromisoformat(context["contract"]["date"]["iso"])
    return render_contract(
        context,
        terms=terms,
        document_dt=datetime.combine(effective, time(), BEIJING),
        key=key,
        version=version,
    )
