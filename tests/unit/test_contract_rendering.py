"""Contract rendering (registry.core.pdf, registry.contracts.*) on real PDFs.

What a party and an auditor rely on: the contract names the parties and the patent, writes out
the declared royalty in Chinese and English for every royalty kind, carries its CJK font
inside, is PDF/A-3b with the terms attached, and comes out byte for byte the same from the same
inputs (so its hash can be recomputed). A template that misses a field or reaches outside the
bundled templates refuses to render.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pypdf
import pytest

from registry.contracts.context import ContractDataError, build_context
from registry.contracts.rendering import TERMS_FILE, render_contract
from registry.core.pdf import (
    TEMPLATES_ROOT,
    FetchRefused,
    MissingFont,
    RenderError,
    TemplateFetcher,
    TemplateInfo,
    render_html,
    render_pdf,
    require_cjk_font,
)
from registry.offers.terms import TermsSchema, terms_document, terms_sha256

NOTICE_DT = datetime(2026, 3, 1, 2, 3, 4, tzinfo=UTC)  # 10:03:04 in Beijing
LICENSOR = {
    "name": "华东理工研究院",
    "name_en": "East China Institute of Technology",
    "uscc": "12310000425001234X",
    "address": "上海市徐汇区梅陇路130号",
}
CO_LICENSOR = {
    "name": "江南材料有限公司",
    "name_en": None,
    "uscc": "91320200MA1ABCDE2K",
    "address": "江苏省无锡市滨湖区太湖大道8号",
}
LICENSEE = {
    "name": "杭州青禾电池科技有限公司",
    "name_en": "Hangzhou Qinghe Battery Technology Co., Ltd.",
    "uscc": "91330106MA2XYZ1234",
    "address": "浙江省杭州市西湖区文三路90号",
    "is_sme": True,
}
PATENT = {
    "title": "一种固态电池电解质膜的制备方法",
    "title_en": "Method of making a solid-state battery electrolyte membrane",
    "application_number": "202110123456.7",
    "patent_type": "invention",
    "filing_date": "2021-01-05",
    "grant_date": "2023-04-07",
    "expiry_date": "2041-01-04",
    "service_invention": True,
}
DECLARATION = {"gazette_number": "2026-000012", "announced_dt": "2026-02-01T01:00:00.000000Z"}

# kind label → (royalty as a client sends it, licensee is an SME, zh snippets, en snippets)
ROYALTIES: dict[str, tuple[dict[str, Any], bool, list[str], list[str]]] = {
    "free": (
        {"kind": "free"},
        True,
        ["本许可为免费许可，被许可方无需向许可方支付任何许可使用费。", "无报告义务"],
        ["This licence is royalty-free: the licensee pays the licensor no royalty."],
    ),
    "lump_sum_at_once": (
        {"kind": "lump_sum", "amount": "50000.00", "payment_due_days": 15},
        True,
        ["一次总算、一次总付", "人民币50,000.00元", "生效之日起15日内一次付清", "第八百七十三条"],
        ["a lump sum of CNY 50,000.00 paid at once", "within 15 days after this contract"],
    ),
    "lump_sum_instalments": (
        {
            "kind": "lump_sum",
            "amount": "90000.00",
            "instalments": [
                {"due_months": 0, "amount": "30000.00"},
                {"due_months": 12, "amount": "60000.00"},
            ],
            "late_interest_rate": "6.00",
        },
        True,
        [
            "一次总算、分期支付",
            "分2期支付",
            "第1期人民币30,000.00元，于本合同生效时到期",
            "第2期人民币60,000.00元，于本合同生效满12个月时到期",
            "每年6%的利率支付逾期利息",
        ],
        [
            "paid in 2 instalments",
            "instalment 2: CNY 60,000.00, due 12 months after this contract takes effect",
            "interest at 6% a year",
        ],
    ),
    "running_net_sales_fixed": (
        {
            "kind": "running",
            "base": "net_sales",
            "rate": "3.50",
            "reporting_period": "monthly",
        },
        True,
        [
            "合同产品净销售额的3.5%计算",
            "提成比例在许可期限内固定不变",
            "每一公历月结算",
            "查阅上述账簿",
        ],
        [
            "3.5% of the net sales of licensed products",
            "each calendar month",
            "inspect those books",
        ],
    ),
    "running_profit_stepped_min_cap": (
        {
            "kind": "running",
            "base": "profit",
            "steps": [
                {"from_year": 1, "rate": "10.00"},
                {"from_year": 2, "rate": "12.00"},
                {"from_year": 4, "rate": "15.00"},
            ],
            "annual_minimum": "20000.00",
            "cap": "800000.00",
            "reporting_period": "annual",
        },
        True,
        [
            "合同产品利润的一定比例计算",
            "第1许可年度为10%；第2至第3许可年度为12%；自第4许可年度起为15%",
            "不足人民币20,000.00元",
            "以人民币800,000.00元为上限",
            "营业利润",
        ],
        [
            "10% in licence year 1; 12% in licence years 2–3; 15% from licence year 4 on",
            "less than CNY 20,000.00",
            "at most CNY 800,000.00",
            "each calendar year",
        ],
    ),
    "running_units": (
        {"kind": "running", "base": "units", "unit_amount": "2.50"},
        True,
        ["每件（台、套）合同产品人民币2.50元", "每一公历季度结算"],
        ["CNY 2.50 for each unit of licensed product", "each calendar quarter"],
    ),
    "entry_plus_running_free_period_sme": (
        {
            "kind": "entry_plus_running",
            "entry_fee": "10000.00",
            "base": "net_sales",
            "rate": "2.00",
            "free_months": 6,
            "sme_discount": "20.00",
        },
        False,
        [
            "提成支付附加预付入门费",
            "入门费人民币10,000.00元",
            "先用后付：自本合同生效之日起6个月为免费期",
            "减免20%",
            "被许可方不是中小企业，不适用本款优惠",
        ],
        [
            "an entry fee of CNY 10,000.00",
            "Use first, pay later: the 6 months",
            "reduced by 20%",
            "The licensee is not an SME: this discount does not apply.",
        ],
    ),
}


def make_terms(royalty: dict[str, Any]) -> dict[str, Any]:
    """A canonical terms document, loaded and written the way an offer's terms are."""
    loaded = TermsSchema().load(
        {
            "royalty": royalty,
            "term_years": 5,
            "licensed_acts": ["sell", "make", "use"],
            "field_of_use": "动力电池",
            "contact": {"name": "王敏", "email": "tto@example.edu.cn", "phone": "+86 21 6425 0000"},
            "other_matters": "技术培训费用另行商定。",
        }
    )
    return terms_document(loaded)


def make_inputs(royalty: dict[str, Any], *, is_sme: bool) -> dict[str, Any]:
    terms = make_terms(royalty)
    return {
        "licence": {
            "reference": "OL-2026-000042",
            "terms": terms,
            "terms_sha256": terms_sha256(terms),
            "notice": {"contact_name": "陈晓"},
            "notice_dt": "2026-03-01T02:03:04.000000Z",
            "effective_date": "2026-03-01",
            "end_date": "2031-02-28",
            "recordation_due_date": "2026-06-01",
        },
        "licensors": [dict(LICENSOR), dict(CO_LICENSOR)],
        "licensee": {**LICENSEE, "is_sme": is_sme},
        "patent": dict(PATENT),
        "declaration": dict(DECLARATION),
    }


def render(inputs: dict[str, Any]) -> bytes:
    context = build_context(**inputs)
    return render_contract(context, terms=inputs["licence"]["terms"], document_dt=NOTICE_DT)


def flat(text: str) -> str:
    """Text without whitespace: PDF line breaks fall anywhere, in Chinese mid-word."""
    return re.sub(r"\s+", "", text)


def pdf_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return flat("".join(page.extract_text() for page in reader.pages))


@pytest.fixture(scope="module")
def rendered() -> dict[str, bytes]:
    """Every royalty kind rendered once (about 0.7 s each) and shared by the tests."""
    return {
        label: render(make_inputs(royalty, is_sme=sme))
        for label, (royalty, sme, _, _) in ROYALTIES.items()
    }


@pytest.fixture(scope="module")
def texts(rendered: dict[str, bytes]) -> dict[str, str]:
    return {label: pdf_text(pdf) for label, pdf in rendered.items()}


@pytest.mark.parametrize("label", list(ROYALTIES))
def test_royalty_is_written_out_in_chinese_and_english(label: str, texts: dict[str, str]) -> None:
    _, _, zh, en = ROYALTIES[label]
    for snippet in zh + en:
        assert flat(snippet) in texts[label], snippet


def test_other_kinds_wording_does_not_leak_into_a_free_licence(texts: dict[str, str]) -> None:
    free = texts["free"]
    for snippet in ("提成费", "入门费", "逾期利息", "running royalty", "lump sum", "查阅上述账簿"):
        assert flat(snippet) not in free


def test_contract_names_parties_patent_and_declaration(texts: dict[str, str]) -> None:
    text = texts["lump_sum_at_once"]
    for value in (
        "专利实施许可合同（开放许可）",
        "OL-2026-000042",
        LICENSOR["name"],
        LICENSOR["name_en"],
        LICENSOR["uscc"],
        LICENSOR["address"],
        CO_LICENSOR["name"],
        CO_LICENSOR["uscc"],
        LICENSEE["name"],
        LICENSEE["name_en"],
        LICENSEE["uscc"],
        LICENSEE["address"],
        PATENT["title"],
        "202110123456.7",
        "ZL202110123456.7",
        "2021年1月5日",
        "2041年1月4日",
        "本专利为职务发明创造",
        "公告号2026-000012，公告日2026年2月1日",
        "2026年3月1日10:03:04（北京时间）",  # the notice, in Beijing time
        "制造、使用、销售",  # the acts in Patent Law Art. 11 order, not as sent
        "动力电池",
        "中华人民共和国大陆地区",
        "普通许可（非独占、非排他）",
        "不得许可第三方实施本专利",
        "不影响本合同项下在先给予的开放许可的效力",
        "第五十二条",
        "许可方于生效之日起三个月内（即2026年6月1日前）",
        "尚未备案",
        "以中文文本为准",
        "技术培训费用另行商定。",  # the declaration's other matters, verbatim
        "许可方联系人：王敏，电话+86 21 6425 0000，电子邮箱tto@example.edu.cn",
    ):
        assert flat(value) in text, value


def test_cjk_font_is_embedded_in_every_page(rendered: dict[str, bytes]) -> None:
    reader = pypdf.PdfReader(io.BytesIO(rendered["running_units"]))
    for page in reader.pages:
        fonts = [font.get_object() for font in page["/Resources"]["/Font"].values()]
        assert fonts
        for font in fonts:
            assert "Noto-Serif-CJK-SC" in str(font["/BaseFont"])
            descendant = font["/DescendantFonts"][0].get_object()
            descriptor = descendant["/FontDescriptor"].get_object()
            assert {"/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor.keys())


def test_pdf_a_3b_with_the_terms_attached(rendered: dict[str, bytes]) -> None:
    pdf = rendered["running_profit_stepped_min_cap"]
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    root = reader.trailer["/Root"]
    xmp = root["/Metadata"].get_object().get_data()
    assert b'pdfaid:part="3"' in xmp
    assert b'pdfaid:conformance="B"' in xmp
    assert root["/OutputIntents"][0]["/S"] == "/GTS_PDFA1"
    (attached,) = reader.attachments[TERMS_FILE]
    document = json.loads(attached)
    royalty, _, _, _ = ROYALTIES["running_profit_stepped_min_cap"]
    assert document["terms"] == make_terms(royalty)
    assert document["terms_sha256"] == terms_sha256(make_terms(royalty))
    assert document["licence_reference"] == "OL-2026-000042"
    assert document["template"] == {"key": "open_licence", "version": "1.0"}


def test_dates_in_the_pdf_are_the_notice_time_not_the_clock(rendered: dict[str, bytes]) -> None:
    reader = pypdf.PdfReader(io.BytesIO(rendered["free"]))
    assert reader.metadata is not None
    assert reader.metadata["/CreationDate"] == "D:20260301020304Z"
    assert reader.metadata["/ModDate"] == "D:20260301020304Z"
    names = reader.trailer["/Root"]["/Names"]["/EmbeddedFiles"]["/Names"]
    params = names[1].get_object()["/EF"]["/F"].get_object()["/Params"]
    assert params["/CreationDate"] == params["/ModDate"] == "D:20260301020304Z"
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    assert set(re.findall(rb"\d{4}-\d\d-\d\dT[\d:]+Z", xmp)) == {b"2026-03-01T02:03:04Z"}


def test_same_inputs_give_identical_bytes_in_process(rendered: dict[str, bytes]) -> None:
    royalty, sme, _, _ = ROYALTIES["lump_sum_instalments"]
    assert render(make_inputs(royalty, is_sme=sme)) == rendered["lump_sum_instalments"]


def test_same_inputs_give_identical_bytes_in_another_process(rendered: dict[str, bytes]) -> None:
    code = (
        "import hashlib, sys\n"
        "from tests.unit.test_contract_rendering import ROYALTIES, make_inputs, render\n"
        "royalty, sme, _, _ = ROYALTIES['running_net_sales_fixed']\n"
        "sys.stdout.write(hashlib.sha256(render(make_inputs(royalty, is_sme=sme))).hexdigest())\n"
    )
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.stdout == hashlib.sha256(rendered["running_net_sales_fixed"]).hexdigest()


def test_changed_terms_change_the_bytes(rendered: dict[str, bytes]) -> None:
    royalty = {**ROYALTIES["lump_sum_at_once"][0], "amount": "50000.01"}
    assert render(make_inputs(royalty, is_sme=True)) != rendered["lump_sum_at_once"]


def test_a_missing_template_field_refuses_to_render() -> None:
    inputs = make_inputs({"kind": "free"}, is_sme=True)
    context = build_context(**inputs)
    del context["licensee"]["uscc"]
    with pytest.raises(RenderError, match="uscc"):
        render_contract(context, terms=inputs["licence"]["terms"], document_dt=NOTICE_DT)


def test_an_empty_required_field_is_named_before_rendering() -> None:
    inputs = make_inputs({"kind": "free"}, is_sme=True)
    inputs["licensee"]["address"] = ""
    inputs["licensors"][1]["uscc"] = None
    del inputs["declaration"]["gazette_number"]
    with pytest.raises(ContractDataError) as caught:
        build_context(**inputs)
    assert caught.value.fields == [
        "declaration.gazette_number",
        "licensee.address",
        "licensors.1.uscc",
    ]


def test_party_data_is_escaped_not_interpreted_as_html() -> None:
    inputs = make_inputs({"kind": "free"}, is_sme=True)
    inputs["licensee"]["name"] = '<img src="http://evil.example/x.png">青禾'
    context = build_context(**inputs)
    html = render_html(TemplateInfo.load("open_licence", "1.0"), context)
    assert "&lt;img src=&#34;http://evil.example/x.png&#34;&gt;青禾" in html
    assert '<img src="http://evil.example' not in html


def test_terms_that_do_not_match_the_licence_hash_are_refused() -> None:
    inputs = make_inputs({"kind": "free"}, is_sme=True)
    context = build_context(**inputs)
    other = make_terms({"kind": "lump_sum", "amount": "1.00"})
    with pytest.raises(RenderError, match="terms_sha256"):
        render_contract(context, terms=other, document_dt=NOTICE_DT)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/style.css",
        "https://example.com/font.ttf",
        "data:text/css,body{}",
        "file:///etc/passwd",
        (TEMPLATES_ROOT / "open_licence" / ".." / ".." / "pyproject.toml").as_uri(),
        (TEMPLATES_ROOT / "open_licence" / "1.0" / "template.toml").as_uri(),  # not an asset
        (TEMPLATES_ROOT / "_base" / "missing.css").as_uri(),
    ],
)
def test_fetcher_refuses_anything_but_bundled_assets(url: str) -> None:
    with pytest.raises(FetchRefused):
        TemplateFetcher().fetch(url)


def test_fetcher_serves_a_bundled_asset() -> None:
    response = TemplateFetcher().fetch((TEMPLATES_ROOT / "_base" / "base.css").as_uri())
    assert b"@page" in response.read()
    assert response.content_type == "text/css"


@pytest.fixture
def template_root(tmp_path: Path) -> Path:
    shutil.copytree(TEMPLATES_ROOT / "_base", tmp_path / "_base")
    return tmp_path


def write_template(root: Path, body: str, *, font: str = "Noto Serif CJK SC") -> TemplateInfo:
    folder = root / "probe" / "1.0"
    folder.mkdir(parents=True)
    (folder / "style.css").write_text("")
    (folder / "template.toml").write_text(
        'key = "probe"\nversion = "1.0"\nlanguages = ["zh-CN"]\n'
        f'font_family = "{font}"\n[title]\nzh = "测试"\nen = "Probe"\n'
    )
    (folder / "template.html.j2").write_text(
        '{% from "_base/macros.html.j2" import head %}<html><head>'
        '{{ head(template, "测试") }}</head><body>' + body + "</body></html>"
    )
    return TemplateInfo.load("probe", "1.0", root=root)


@pytest.mark.parametrize(
    "body",
    [
        '<img src="http://127.0.0.1:9/x.png">',
        '<link rel="stylesheet" href="file:///etc/ssl/openssl.cnf">',
        '<style>@import url("../../../outside.css");</style>',
    ],
)
def test_a_template_reaching_outside_the_templates_refuses_to_render(
    template_root: Path, body: str
) -> None:
    (template_root.parent / "outside.css").write_text("body { color: red; }")
    info = write_template(template_root, body)
    with pytest.raises(FetchRefused):
        render_pdf(info, {}, document_dt=NOTICE_DT, root=template_root)


def test_a_template_with_an_undefined_variable_refuses_to_render(template_root: Path) -> None:
    info = write_template(template_root, "<p>{{ licensee.name }}</p>")
    with pytest.raises(RenderError, match="licensee"):
        render_pdf(info, {}, document_dt=NOTICE_DT, root=template_root)


def test_the_sandbox_refuses_python_internals(template_root: Path) -> None:
    info = write_template(template_root, "<p>{{ ''.__class__.__mro__ }}</p>")
    with pytest.raises(RenderError, match="unsafe"):
        render_pdf(info, {}, document_dt=NOTICE_DT, root=template_root)


def test_a_missing_cjk_font_fails_loudly_naming_the_package(template_root: Path) -> None:
    with pytest.raises(MissingFont, match="fonts-noto-cjk"):
        require_cjk_font("No Such Font SC")
    info = write_template(template_root, "<p>中文</p>", font="No Such Font SC")
    with pytest.raises(MissingFont, match="No Such Font SC"):
        render_pdf(info, {}, document_dt=NOTICE_DT, root=template_root)
