"""The specimen contract of an offer (registry.contracts.specimen) on real PDFs.

What an SME relies on when it reads a specimen before taking a licence: it is the contract it
would get (same template, the offer's royalty written out, the offer's terms attached), every
page says 样本 SPECIMEN, the licensee and the notice are placeholders, nothing claims the
licensee is or is not an SME, and it is unsigned and says it is not a contract. A real
contract carries none of the specimen's marks.
"""

from __future__ import annotations

import io
import json
from datetime import date
from typing import Any

import pypdf
import pytest

from registry.contracts.context import build_context
from registry.contracts.rendering import TERMS_FILE
from registry.contracts.specimen import (
    NOTICE_PLACEHOLDER_EN,
    NOTICE_PLACEHOLDER_ZH,
    PLACEHOLDER_LICENSEE,
    SME_UNKNOWN,
    SPECIMEN_REFERENCE,
    render_specimen,
    specimen_clauses,
    specimen_context,
)
from registry.contracts.verification import verify_pdf
from registry.contracts.wording import royalty_clauses
from registry.core.pdf import RenderError, TemplateInfo, render_html
from registry.offers.terms import terms_sha256
from tests.unit.test_contract_rendering import (
    CO_LICENSOR,
    DECLARATION,
    LICENSOR,
    PATENT,
    ROYALTIES,
    flat,
    make_inputs,
    make_terms,
    pdf_text,
    render,
)

TODAY = date(2026, 5, 20)
END = date(2031, 5, 19)
WATERMARK = "样本SPECIMEN"
SME_KIND = "entry_plus_running_free_period_sme"  # entry fee, free period, SME discount
KINDS = [SME_KIND, "running_profit_stepped_min_cap", "lump_sum_instalments"]
# Sentences that say whether a particular licensee gets the SME discount.
SME_VERDICTS = [
    "被许可方不是中小企业，不适用本款优惠",
    "被许可方为中小企业，适用本款优惠",
    "The licensee is not an SME",
    "The licensee is an SME",
]


def offer_context(royalty: dict[str, Any], **changes: Any) -> dict[str, Any]:
    terms = make_terms(royalty)
    arguments: dict[str, Any] = {
        "terms": terms,
        "terms_sha256": terms_sha256(terms),
        "licensors": [dict(LICENSOR), dict(CO_LICENSOR)],
        "patent": dict(PATENT),
        "declaration": dict(DECLARATION),
        "today": TODAY,
        "end_date": END,
        "offer_version": 3,
    }
    return specimen_context(**{**arguments, **changes})


@pytest.fixture(scope="module")
def specimens() -> dict[str, bytes]:
    """A specimen of three offers (about 0.5 s each), shared by the tests."""
    return {
        kind: render_specimen(
            offer_context(ROYALTIES[kind][0]), terms=make_terms(ROYALTIES[kind][0])
        )
        for kind in KINDS
    }


@pytest.fixture(scope="module")
def texts(specimens: dict[str, bytes]) -> dict[str, str]:
    return {kind: pdf_text(pdf) for kind, pdf in specimens.items()}


@pytest.mark.parametrize("kind", KINDS)
def test_every_page_carries_the_watermark(kind: str, specimens: dict[str, bytes]) -> None:
    pages = pypdf.PdfReader(io.BytesIO(specimens[kind])).pages
    assert len(pages) >= 5  # a real multi-page contract, so "every page" means something
    for number, page in enumerate(pages, start=1):
        assert WATERMARK in flat(page.extract_text()), f"page {number}"


@pytest.mark.parametrize("kind", KINDS)
def test_the_offers_royalty_is_written_out(kind: str, texts: dict[str, str]) -> None:
    _, _, zh, en = ROYALTIES[kind]
    for snippet in zh + en:
        if not any(verdict in snippet for verdict in SME_VERDICTS):  # a contract's, not ours
            assert flat(snippet) in texts[kind], snippet


def test_the_sme_discount_is_offered_without_judging_the_licensee(texts: dict[str, str]) -> None:
    text = texts[SME_KIND]
    assert flat("被许可方为中小企业的，本条约定的各项许可使用费金额减免20%") in text
    assert flat("every royalty amount in this article is reduced by 20%") in text
    assert flat(SME_UNKNOWN["zh"]) in text
    assert flat(SME_UNKNOWN["en"]) in text
    for verdict in SME_VERDICTS:
        assert flat(verdict) not in text, verdict


def test_clauses_that_do_not_depend_on_the_licensee_are_the_contracts() -> None:
    for kind, (royalty, _, _, _) in ROYALTIES.items():
        if kind != SME_KIND:
            terms = make_terms(royalty)
            assert specimen_clauses(terms["royalty"]) == royalty_clauses(
                terms["royalty"], licensee_is_sme=True
            )


def test_licensee_notice_and_number_are_placeholders(texts: dict[str, str]) -> None:
    text = texts[SME_KIND]
    for value in (
        *PLACEHOLDER_LICENSEE.values(),
        NOTICE_PLACEHOLDER_ZH,
        NOTICE_PLACEHOLDER_EN,
        SPECIMEN_REFERENCE,
        "样本：未签署，不是合同",
        "Specimen: unsigned, not a contract",
    ):
        assert flat(value) in text, value


def test_the_offer_patent_and_dates_are_the_real_ones(texts: dict[str, str]) -> None:
    text = texts[SME_KIND]
    for value in (
        LICENSOR["name"],
        LICENSOR["uscc"],
        CO_LICENSOR["name"],
        PATENT["title"],
        "ZL202110123456.7",
        "公告号2026-000012，公告日2026年2月1日",
        "自2026年5月20日起至2031年5月19日止",  # a take-up today, to the caller's end date
        "许可方于生效之日起三个月内向国务院专利行政部门办理备案",  # no due date: nobody took it
        "动力电池",
        "技术培训费用另行商定。",
    ):
        assert flat(str(value)) in text, value


def test_the_specimen_is_unsigned_and_says_it_is_not_a_contract(
    specimens: dict[str, bytes], texts: dict[str, str]
) -> None:
    text = texts[SME_KIND]
    assert flat("本文件是样本，未经签署，不是合同，不产生任何权利义务。") in text
    assert flat("it is unsigned, it is not a contract and it creates no rights") in text
    assert flat("以可靠的电子签名认证（") not in text  # the certification sentence of a contract
    root: Any = pypdf.PdfReader(io.BytesIO(specimens[SME_KIND])).trailer["/Root"]
    assert "/AcroForm" not in root  # no signature field, filled or empty
    verdict = verify_pdf(specimens[SME_KIND], trust_roots=[], known_hashes=lambda _: False)
    assert not verdict.valid
    assert verdict.problems[0] == "the PDF carries no signature"


def test_the_specimen_is_pdf_a_with_the_offers_terms_attached(specimens: dict[str, bytes]) -> None:
    reader = pypdf.PdfReader(io.BytesIO(specimens[SME_KIND]))
    root: Any = reader.trailer["/Root"]
    xmp = root["/Metadata"].get_object().get_data()
    assert b'pdfaid:part="3"' in xmp
    assert b'pdfaid:conformance="B"' in xmp
    (attached,) = reader.attachments[TERMS_FILE]
    document = json.loads(attached)
    terms = make_terms(ROYALTIES[SME_KIND][0])
    assert document["terms"] == terms
    assert document["terms_sha256"] == terms_sha256(terms)
    assert document["licence_reference"] == SPECIMEN_REFERENCE
    assert reader.metadata is not None
    assert reader.metadata["/CreationDate"] == "D:20260519160000Z"  # 20 May 00:00 in Beijing


def test_the_same_offer_and_day_give_the_same_bytes(specimens: dict[str, bytes]) -> None:
    royalty = ROYALTIES[SME_KIND][0]
    again = render_specimen(offer_context(royalty), terms=make_terms(royalty))
    assert again == specimens[SME_KIND]


def test_a_contract_carries_no_specimen_marks() -> None:
    inputs = make_inputs(ROYALTIES[SME_KIND][0], is_sme=True)
    context = build_context(**inputs)
    assert context["specimen"] is False
    assert "specimen" not in render_html(TemplateInfo.load("open_licence", "1.0"), context)
    text = pdf_text(render(inputs))
    for mark in ("样本", "SPECIMEN", "Specimen", "不是合同", "not a contract"):
        assert flat(mark) not in text, mark
    assert flat("以可靠的电子签名认证（") in text
    assert flat("被许可方为中小企业，适用本款优惠") in text


def test_render_specimen_refuses_a_licence_context() -> None:
    inputs = make_inputs({"kind": "free"}, is_sme=True)
    with pytest.raises(RenderError, match="specimen"):
        render_specimen(build_context(**inputs), terms=inputs["licence"]["terms"])


def test_terms_that_are_not_the_offers_are_refused() -> None:
    royalty = ROYALTIES["running_units"][0]
    context = offer_context(royalty, terms_sha256="0" * 64)
    with pytest.raises(RenderError, match="terms_sha256"):
        render_specimen(context, terms=make_terms(royalty))
