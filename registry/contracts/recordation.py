"""The recordation pack of a licence: what a party files with CNIPA within three months.

IR Art. 87: either party records a licence concluded through an open licence, with written
proof that it was concluded, within three months of its taking effect (CNIPA FAQ; law.md §2).
The ZIP holds the signed contract byte for byte, the terms JSON, a README, and a summary of what
the recordation form asks under the 2011 measures (专利实施许可合同备案办法, law.md §3.6: parties,
patents with numbers and dates, licence type and term) plus royalty, contract hash and filing
deadline, as UTF-8 text and as CSV with a BOM (so Excel shows the Chinese). Entries are stored
uncompressed with fixed times and attributes: the same licence always gives the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from datetime import date
from typing import Any, Final

from registry.contracts.context import FILERS
from registry.contracts.wording import BASE_WORDS, money_en, money_zh, percent
from registry.offers.lifecycle import add_months
from registry.offers.terms import terms_sha256

REFERENCE_SHAPE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
Row = tuple[str, str, str]  # field (English), 字段, value
Sections = dict[str, list[Row]]  # section title → rows, in order
METHODS: Final = {  # CC Art. 846's payment methods, as the contract names them
    "lump_sum": ("一次总算、一次总付", "lump sum paid at once"),
    "instalments": ("一次总算、分期支付", "lump sum paid in instalments"),
    "running": ("提成支付", "running royalty"),
    "entry_plus_running": ("提成支付附加预付入门费", "running royalty with an entry fee"),
}
SME_WORDS: Final[dict[bool | None, tuple[str, str]]] = {
    True: ("，适用", ", applies"),
    False: ("，不适用", ", not applicable"),
    None: ("", ""),  # a specimen: no licensee yet
}
README: Final = """专利实施许可合同备案材料 / Patent licence contract recordation pack
合同编号 / Contract No.: {reference}

- {reference}-contract.pdf: 经电子签名的合同 / the signed contract
- summary.txt, summary.csv: 备案申请表所需的信息 / what the recordation form asks for
- {reference}-terms.json: 机器可读的许可条件 / the machine-readable terms (as in the PDF)

1. 备案办理方 / Filed by: {zh} / {en}
   备案期限 / File by: {due}（合同生效之日起三个月内 / within three months of its effect）
   向国家知识产权局办理；开放许可的备案，专利权人或者被许可方均可办理（专利法实施细则第八十七条）。
   File with CNIPA; for an open licence either the patentee or the licensee may file (IR Art. 87).
2. 按summary填写备案申请表，提交合同PDF；提交前核对合同PDF的SHA-256摘要与summary一致。
   Fill in the form from the summary and submit the contract PDF once its SHA-256 matches.
3. 取得备案号后，在登记机构登记备案号和备案日期。备案不是合同生效的条件。
   Enter the recordation number and date in the registry; recordation is not a condition of effect.
"""


def recordation_pack(
    *,
    signed_pdf: bytes,
    context: dict[str, Any],
    terms_json: bytes,
    licence_reference: str,
) -> bytes:
    """The ZIP: README.txt, summary.txt, summary.csv, ``<reference>-contract.pdf``
    (``signed_pdf`` as given) and ``<reference>-terms.json`` (``terms_json`` as given).
    ``context`` is the contract's (build_context); ``terms_json`` is the terms snapshot or the
    ``terms.json`` attached to the PDF (rendering.terms_attachment). ValueError unless the terms
    hash to the contract's terms SHA-256 and ``licence_reference`` is the contract's number."""
    contract = context["contract"]
    if licence_reference != contract["number"] or not REFERENCE_SHAPE.fullmatch(licence_reference):
        raise ValueError(f"{licence_reference!r} is not the contract's number or a file name")
    if not signed_pdf.startswith(b"%PDF-"):
        raise ValueError("signed_pdf is not a PDF")
    document = json.loads(terms_json)
    terms = document["terms"] if "royalty" not in document else document
    if terms_sha256(terms) != contract["terms_sha256"]:
        raise ValueError("terms_json does not hash to the contract's terms SHA-256")
    pdf_name, sha = f"{licence_reference}-contract.pdf", hashlib.sha256(signed_pdf).hexdigest()
    sections = summary_sections(context, terms=terms, contract_file=pdf_name, contract_sha256=sha)
    (filer_zh, filer_en), due = _filer(context), _due(context).isoformat()
    readme = README.format(reference=licence_reference, due=due, zh=filer_zh, en=filer_en)
    entries = [
        ("README.txt", readme.encode("utf-8")),
        ("summary.txt", summary_text(sections).encode("utf-8")),
        ("summary.csv", summary_csv(sections).encode("utf-8-sig")),
        (pdf_name, signed_pdf),
        (f"{licence_reference}-terms.json", terms_json),
    ]
    stamp = date.fromisoformat(contract["date"]["iso"])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(stamp.year, stamp.month, stamp.day, 0, 0, 0))
            info.create_system = 3  # Unix, whatever the host: the bytes must not depend on it
            info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
            archive.writestr(info, data)
    return buffer.getvalue()


LICENCE_TYPE: Final = "普通许可（开放许可） / ordinary licence (open licence)"  # PL Art. 51(3)
DEADLINE_BASIS: Final = "生效之日起三个月内（细则第87条） / 3 months from effect (IR Art. 87)"
NOT_RECORDED: Final = "尚未备案 / not yet recorded"


def summary_sections(
    context: dict[str, Any], *, terms: dict[str, Any], contract_file: str, contract_sha256: str
) -> Sections:
    """The summary's rows by section: what the recordation form asks, then how to file."""
    contract, patent, grant = context["contract"], context["patent"], context["grant"]
    licensee, declaration, licensors = context["licensee"], context["declaration"], []
    for index, party in enumerate(context["licensors"], start=1):
        several = len(context["licensors"]) > 1
        en, zh = (f"Licensor {index}", f"许可方{index}") if several else ("Licensor", "许可方")
        licensors += [
            (en, zh, _both(party["name"], party.get("name_en"), "{}（{}）")),
            (f"{en} USCC", f"{zh}统一社会信用代码", party["uscc"]),
            (f"{en} address", f"{zh}住所", party["address"]),
        ]
    method, figures = royalty_summary(terms["royalty"], licensee_is_sme=licensee.get("is_sme"))
    filer_zh, filer_en = _filer(context)
    return {
        "许可方 / Licensor": licensors,
        "被许可方 / Licensee": [
            ("Licensee", "被许可方", _both(licensee["name"], licensee.get("name_en"), "{}（{}）")),
            ("Licensee USCC", "被许可方统一社会信用代码", licensee["uscc"]),
            ("Licensee address", "被许可方住所", licensee["address"]),
        ],
        "专利 / Patent": [
            ("Number of patents", "专利件数", "1"),
            ("Patent title", "专利名称", patent["title"]),
            ("Patent type", "专利类型", _both(patent["type_zh"], patent["type_en"])),
            ("Patentee(s)", "专利权人", "；".join(patent["patentees"])),
            ("Application No.", "申请号", patent["application_number"]),
            ("Patent No.", "专利号", patent["patent_number"] or "尚未授权 / not yet granted"),
            ("Filing date", "申请日", patent["filing_date"]["iso"]),
            ("Grant date", "授权公告日", (patent["grant_date"] or {}).get("iso", "—")),
            ("Expiry date", "专利权期限届满日", patent["expiry_date"]["iso"]),
        ],
        "许可 / Licence": [
            ("Licence type", "许可种类", LICENCE_TYPE),
            ("Licensed acts", "许可实施的行为", _both(grant["acts_zh"], grant["acts_en"])),
            ("Field of use", "实施领域", _both(grant["field_zh"], grant["field_en"])),
            ("Territory", "实施地域", "中华人民共和国大陆地区 / mainland China"),
            ("Term from", "许可期限起始日", contract["date"]["iso"]),
            ("Term until", "许可期限届满日", contract["end_date"]["iso"]),
            ("Royalty method", "使用费支付方式", method),
            ("Royalty", "使用费", figures),
            ("Open-licence declaration No.", "开放许可声明公告号", declaration["gazette_number"]),
            ("Declaration announced", "开放许可声明公告日", declaration["announced"]["iso"]),
        ],
        "合同 / Contract": [
            ("Contract No.", "合同编号", contract["number"]),
            ("Date of contract", "合同签订日期", contract["date"]["iso"]),
            ("Place of contract", "合同签订地点", contract["place_zh"]),
            ("Contract file", "合同文件", contract_file),
            ("Contract SHA-256", "合同SHA-256摘要", contract_sha256),
            ("Terms SHA-256", "许可条件SHA-256摘要", contract["terms_sha256"]),
        ],
        "备案 / Recordation": [
            ("Filed by", "备案办理方", f"{filer_zh} / {filer_en}"),
            ("File by", "备案期限", _due(context).isoformat()),
            ("Deadline basis", "备案期限依据", DEADLINE_BASIS),
            ("Recordation No.", "备案号", contract["recordation_number"] or NOT_RECORDED),
        ],
    }


def summary_text(sections: Sections) -> str:
    lines = ["专利实施许可合同备案信息 / Patent licence contract recordation summary"]
    for title, rows in sections.items():
        lines += ["", f"[{title}]"]
        lines += [f"{zh} / {en}: {value}" for en, zh, value in rows]
    return "\n".join(lines) + "\n"


def summary_csv(sections: Sections) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180, what Excel writes
    writer.writerow(["field", "字段", "value"])
    writer.writerows(row for rows in sections.values() for row in rows)
    return out.getvalue()


def royalty_summary(royalty: dict[str, Any], *, licensee_is_sme: bool | None) -> tuple[str, str]:
    """CC Art. 846's payment method and the royalty's figures, each as "中文 / English"."""
    kind, parts = royalty["kind"], []
    if kind == "free":
        return "免费许可 / royalty-free", "无 / none"
    if kind == "lump_sum":
        count, amount = len(royalty.get("instalments") or []), royalty["amount"]
        method = METHODS["instalments" if count else "lump_sum"]
        parts.append((f"总额{money_zh(amount)}", f"{money_en(amount)} in total"))
        if count:
            parts.append((f"分{count}期", f"{count} instalments"))
    else:
        method = METHODS[kind]
        if kind == "entry_plus_running":
            fee = royalty["entry_fee"]
            parts.append((f"入门费{money_zh(fee)}", f"entry fee {money_en(fee)}"))
        parts.append(_running_rate(royalty))
        if (low := royalty.get("annual_minimum")) is not None:
            parts.append((f"年度最低{money_zh(low)}", f"annual minimum {money_en(low)}"))
        if (cap := royalty.get("cap")) is not None:
            parts.append((f"年度上限{money_zh(cap)}", f"annual cap {money_en(cap)}"))
    if (months := royalty.get("free_months")) is not None:
        parts.append((f"先用后付，免费{months}个月", f"use first, pay later: {months} months free"))
    if (discount := royalty.get("sme_discount")) is not None:
        (zh, en), rate = SME_WORDS[licensee_is_sme], percent(discount)  # as the contract says
        parts.append((f"中小企业减免{rate}{zh}", f"SME discount {rate}{en}"))
    figures = "；".join(zh for zh, _ in parts) + " / " + "; ".join(en for _, en in parts)
    return f"{method[0]} / {method[1]}", figures


def _running_rate(royalty: dict[str, Any]) -> tuple[str, str]:
    if royalty["base"] == "units":
        unit = royalty["unit_amount"]
        return f"每件{money_zh(unit)}", f"{money_en(unit)} a unit"
    base_zh, base_en = BASE_WORDS[royalty["base"]]
    steps = royalty.get("steps")
    if not steps:
        rate = percent(royalty["rate"])
        return f"{base_zh}的{rate}", f"{rate} of {base_en}"
    rates_zh = [f"{percent(step['rate'])}（自第{step['from_year']}许可年度）" for step in steps]
    rates_en = [f"{percent(step['rate'])} from licence year {step['from_year']}" for step in steps]
    return f"{base_zh}的{'、'.join(rates_zh)}", f"{', '.join(rates_en)} (of {base_en})"


def _both(zh: str, en: str | None, form: str = "{} / {}") -> str:
    """Chinese and English, or the Chinese alone when there is no separate English."""
    return zh if not en or en == zh else form.format(zh, en)


def _filer(context: dict[str, Any]) -> tuple[str, str]:
    """Who the contract says files (Art. 16), with their names."""
    record = context["recordation"]
    filer = next(k for k, v in FILERS.items() if v == (record["filer_zh"], record["filer_en"]))
    parties = context["licensors"] if filer == "licensor" else [context["licensee"]]
    names_zh = "、".join(party["name"] for party in parties)
    names_en = ", ".join(party["name_en"] for party in parties)
    return f"{record['filer_zh']}（{names_zh}）", f"{record['filer_en']} ({names_en})"


def _due(context: dict[str, Any]) -> date:
    """The contract's recordation date, else three months from its effect (IR Art. 87)."""
    due, effective = context["recordation"]["due"], context["contract"]["date"]["iso"]
    return date.fromisoformat(due["iso"]) if due else add_months(date.fromisoformat(effective), 3)
