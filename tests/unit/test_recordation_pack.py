"""The recordation pack of a licence (registry.contracts.recordation) from a real signed contract.

What the party that files with CNIPA relies on (IR Art. 87): the ZIP holds the signed contract
exactly as issued (its signature still verifies), the terms JSON and a summary of what the
recordation form asks (parties with USCC and address, patent numbers and dates, licence type
and term, royalty, contract number, date and SHA-256, who files by when) with the Chinese
intact in the text file and in the CSV Excel opens; and the same licence always gives the same
bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from typing import Any

import pypdf
import pytest

from registry.contracts import signing
from registry.contracts.context import build_context
from registry.contracts.recordation import recordation_pack, royalty_summary
from registry.contracts.rendering import TERMS_FILE
from registry.contracts.verification import verify_pdf
from registry.core.canonical import canonical_json
from tests.unit.test_contract_rendering import ROYALTIES, make_inputs, make_terms, render

REFERENCE = "OL-2026-000042"
KIND = "entry_plus_running_free_period_sme"  # entry fee, free period, SME discount not applied
NAMES = ["README.txt", "summary.txt", "summary.csv", f"{REFERENCE}-contract.pdf"]
NAMES.append(f"{REFERENCE}-terms.json")


@pytest.fixture(scope="module")
def inputs() -> dict[str, Any]:
    royalty, is_sme, _, _ = ROYALTIES[KIND]
    return make_inputs(royalty, is_sme=is_sme)


@pytest.fixture(scope="module")
def context(inputs: dict[str, Any]) -> dict[str, Any]:
    return build_context(**inputs)


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> signing.SigningIdentity:
    return signing.development_identity(tmp_path_factory.mktemp("instance"))


@pytest.fixture(scope="module")
def signed(inputs: dict[str, Any], identity: signing.SigningIdentity) -> bytes:
    return signing.sign_pdf(render(inputs), identity).data


@pytest.fixture(scope="module")
def terms_json(signed: bytes) -> bytes:
    """The terms.json attached inside the signed contract, as the pack is meant to carry it."""
    (attached,) = pypdf.PdfReader(io.BytesIO(signed)).attachments[TERMS_FILE]
    return attached


@pytest.fixture(scope="module")
def pack(signed: bytes, context: dict[str, Any], terms_json: bytes) -> bytes:
    return recordation_pack(
        signed_pdf=signed, context=context, terms_json=terms_json, licence_reference=REFERENCE
    )


def entries(pack: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(pack)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_pack_holds_readme_summaries_contract_and_terms_in_order(pack: bytes) -> None:
    assert list(entries(pack)) == NAMES


def test_the_contract_is_the_signed_pdf_byte_for_byte_and_still_verifies(
    pack: bytes, signed: bytes, identity: signing.SigningIdentity
) -> None:
    inside = entries(pack)[f"{REFERENCE}-contract.pdf"]
    assert inside == signed
    on_record = {hashlib.sha256(signed).hexdigest()}
    verdict = verify_pdf(
        inside, trust_roots=[identity.ca_certificate], known_hashes=on_record.__contains__
    )
    assert verdict.valid, verdict.problems


def test_the_terms_file_is_the_one_attached_to_the_contract(
    pack: bytes, terms_json: bytes, inputs: dict[str, Any]
) -> None:
    inside = entries(pack)[f"{REFERENCE}-terms.json"]
    assert inside == terms_json
    assert json.loads(inside)["terms"] == inputs["licence"]["terms"]


def test_the_summary_carries_what_the_recordation_form_asks(pack: bytes, signed: bytes) -> None:
    lines = entries(pack)["summary.txt"].decode("utf-8").splitlines()
    for line in (
        "许可方1 / Licensor 1: 华东理工研究院（East China Institute of Technology）",
        "许可方1统一社会信用代码 / Licensor 1 USCC: 12310000425001234X",
        "许可方1住所 / Licensor 1 address: 上海市徐汇区梅陇路130号",
        "许可方2 / Licensor 2: 江南材料有限公司",
        "许可方2统一社会信用代码 / Licensor 2 USCC: 91320200MA1ABCDE2K",
        "许可方2住所 / Licensor 2 address: 江苏省无锡市滨湖区太湖大道8号",
        "被许可方 / Licensee: 杭州青禾电池科技有限公司"
        "（Hangzhou Qinghe Battery Technology Co., Ltd.）",
        "被许可方统一社会信用代码 / Licensee USCC: 91330106MA2XYZ1234",
        "被许可方住所 / Licensee address: 浙江省杭州市西湖区文三路90号",
        "专利件数 / Number of patents: 1",
        "专利名称 / Patent title: 一种固态电池电解质膜的制备方法",
        "申请号 / Application No.: 202110123456.7",
        "专利号 / Patent No.: ZL202110123456.7",
        "申请日 / Filing date: 2021-01-05",
        "授权公告日 / Grant date: 2023-04-07",
        "许可种类 / Licence type: 普通许可（开放许可） / ordinary licence (open licence)",
        "许可期限起始日 / Term from: 2026-03-01",
        "许可期限届满日 / Term until: 2031-02-28",
        "使用费支付方式 / Royalty method: 提成支付附加预付入门费 / "
        "running royalty with an entry fee",
        "合同编号 / Contract No.: OL-2026-000042",
        "合同签订日期 / Date of contract: 2026-03-01",
        f"合同SHA-256摘要 / Contract SHA-256: {hashlib.sha256(signed).hexdigest()}",
        "备案办理方 / Filed by: 许可方（华东理工研究院、江南材料有限公司） / the licensor "
        "(East China Institute of Technology, 江南材料有限公司)",
        "备案期限 / File by: 2026-06-01",  # three months from effect (IR Art. 87)
        "备案号 / Recordation No.: 尚未备案 / not yet recorded",
    ):
        assert line in lines, line
    royalty = next(line for line in lines if line.startswith("使用费 / Royalty:"))
    for figure in (
        "入门费人民币10,000.00元",
        "净销售额的2%",
        "免费6个月",
        "中小企业减免20%，不适用",
    ):
        assert figure in royalty, figure


def test_the_csv_opens_in_excel_with_the_chinese_intact(pack: bytes) -> None:
    raw = entries(pack)["summary.csv"]
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM Excel needs to read UTF-8
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["field", "字段", "value"]
    assert all(len(row) == 3 for row in rows)
    by_field = {row[0]: row for row in rows[1:]}
    assert by_field["Licensee"] == [
        "Licensee",
        "被许可方",
        "杭州青禾电池科技有限公司（Hangzhou Qinghe Battery Technology Co., Ltd.）",
    ]
    assert by_field["Patent title"][2] == "一种固态电池电解质膜的制备方法"
    assert by_field["File by"][2] == "2026-06-01"
    # the text file and the CSV say the same thing
    text = entries(pack)["summary.txt"].decode("utf-8").splitlines()
    assert [f"{zh} / {en}: {value}" for en, zh, value in rows[1:]] == [
        line for line in text if ": " in line and not line.startswith("[")
    ]


def test_the_readme_says_who_files_by_when(pack: bytes) -> None:
    readme = entries(pack)["README.txt"].decode("utf-8")
    assert "备案办理方 / Filed by: 许可方（华东理工研究院、江南材料有限公司）" in readme
    assert "备案期限 / File by: 2026-06-01" in readme
    assert "专利权人或者被许可方均可办理（专利法实施细则第八十七条）" in readme
    assert "either the patentee or the licensee may file (IR Art. 87)" in readme
    assert f"{REFERENCE}-contract.pdf" in readme


def test_the_same_licence_gives_the_same_bytes(
    pack: bytes, signed: bytes, context: dict[str, Any], terms_json: bytes
) -> None:
    again = recordation_pack(
        signed_pdf=signed, context=context, terms_json=terms_json, licence_reference=REFERENCE
    )
    assert again == pack
    with zipfile.ZipFile(io.BytesIO(pack)) as archive:
        for info in archive.infolist():
            assert info.date_time == (2026, 3, 1, 0, 0, 0)  # the contract's date, not the clock
            assert info.compress_type == zipfile.ZIP_STORED
            assert (info.create_system, info.external_attr >> 16) == (3, 0o100644)


def test_a_licensee_filer_and_a_bare_terms_snapshot(inputs: dict[str, Any]) -> None:
    context = build_context(**inputs, recordation_filer="licensee")
    terms = canonical_json(inputs["licence"]["terms"]).encode()
    pdf = b"%PDF-1.7\n% a stand-in: the summary does not read the PDF\n"
    files = entries(
        recordation_pack(
            signed_pdf=pdf, context=context, terms_json=terms, licence_reference=REFERENCE
        )
    )
    assert files[f"{REFERENCE}-terms.json"] == terms
    assert (
        "备案办理方 / Filed by: 被许可方（杭州青禾电池科技有限公司） / the licensee "
        "(Hangzhou Qinghe Battery Technology Co., Ltd.)"
    ) in files["summary.txt"].decode("utf-8").splitlines()


def test_a_pack_that_would_not_match_its_contract_is_refused(
    signed: bytes, context: dict[str, Any], terms_json: bytes
) -> None:
    other_terms = canonical_json(make_terms({"kind": "free"})).encode()
    for changes, message in (
        ({"licence_reference": "OL-2026-000043"}, "contract's number"),
        ({"terms_json": other_terms}, "terms SHA-256"),
        ({"signed_pdf": b"PK\x03\x04 not a pdf"}, "not a PDF"),
    ):
        arguments: dict[str, Any] = {
            "signed_pdf": signed,
            "context": context,
            "terms_json": terms_json,
            "licence_reference": REFERENCE,
        }
        with pytest.raises(ValueError, match=message):
            recordation_pack(**{**arguments, **changes})


@pytest.mark.parametrize(
    ("kind", "is_sme", "method", "figures"),
    [
        ("free", True, "免费许可 / royalty-free", "无 / none"),
        (
            "lump_sum_instalments",
            True,
            "一次总算、分期支付 / lump sum paid in instalments",
            "总额人民币90,000.00元；分2期 / CNY 90,000.00 in total; 2 instalments",
        ),
        (
            "running_profit_stepped_min_cap",
            True,
            "提成支付 / running royalty",
            "利润的10%（自第1许可年度）、12%（自第2许可年度）、15%（自第4许可年度）；"
            "年度最低人民币20,000.00元；年度上限人民币800,000.00元 / 10% from licence year 1, "
            "12% from licence year 2, 15% from licence year 4 (of profit); annual minimum "
            "CNY 20,000.00; annual cap CNY 800,000.00",
        ),
        ("running_units", True, "提成支付 / running royalty", "每件人民币2.50元 / CNY 2.50 a unit"),
        (
            KIND,
            True,
            "提成支付附加预付入门费 / running royalty with an entry fee",
            "入门费人民币10,000.00元；净销售额的2%；先用后付，免费6个月；中小企业减免20%，适用 / "
            "entry fee CNY 10,000.00; 2% of net sales; use first, pay later: 6 months free; "
            "SME discount 20%, applies",
        ),
    ],
)
def test_royalty_summary_names_the_method_and_the_figures(
    kind: str, is_sme: bool, method: str, figures: str
) -> None:
    royalty = make_terms(ROYALTIES[kind][0])["royalty"]
    assert royalty_summary(royalty, licensee_is_sme=is_sme) == (method, figures)
