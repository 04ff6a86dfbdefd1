"""The royalty clause of a contract, written out in Chinese and English from the terms.

Civil Code Art. 846 names the payment methods (a lump sum paid at once or by instalments, a
running royalty, or an entry fee plus a running royalty; a running rate may be fixed or change
year by year) and lets the parties agree how the licensor inspects the accounts; Art. 873 gives
the remedy for late payment. Every sentence here comes from one field of the canonical royalty
document (registry.offers.royalty.royalty_document), so the contract says exactly what was
declared. Each clause is ``{"zh": ..., "en": ...}``; the Chinese text governs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

Clause = dict[str, str]

BASE_WORDS: Final = {
    "net_sales": ("净销售额", "net sales"),
    "profit": ("利润", "profit"),
}
BASE_DEFINITIONS: Final = {
    "net_sales": (
        "净销售额，指被许可方销售合同产品开具发票的金额，扣除增值税、退货和销售折让后的余额。",
        "Net sales means the invoiced amount of the licensee's sales of licensed products, less "
        "value-added tax, returns and sales allowances.",
    ),
    "profit": (
        "利润，指被许可方依照中国企业会计准则核算的、归属于合同产品的营业利润。",
        "Profit means the operating profit attributable to licensed products, as accounted by "
        "the licensee under the PRC accounting standards for business enterprises.",
    ),
}
PERIOD_WORDS: Final = {
    "monthly": ("每一公历月", "each calendar month"),
    "quarterly": ("每一公历季度", "each calendar quarter"),
    "annual": ("每一公历年度", "each calendar year"),
}


def money_zh(amount: str) -> str:
    return f"人民币{Decimal(amount):,.2f}元"


def money_en(amount: str) -> str:
    return f"CNY {Decimal(amount):,.2f}"


def percent(rate: str) -> str:
    """``"5.50"`` → ``"5.5%"``: the stored rate, without trailing zeros."""
    return f"{format(Decimal(rate).normalize(), 'f')}%"


def royalty_clauses(royalty: dict[str, Any], *, licensee_is_sme: bool | None) -> list[Clause]:
    """The royalty and payment clauses of a canonical royalty document, in order.

    ``licensee_is_sme`` says whether an SME discount applies to this licensee; ``None`` (an
    offer shown before anyone takes it up) leaves that sentence out."""
    kind = royalty["kind"]
    if kind == "free":
        return [
            {
                "zh": "本许可为免费许可，被许可方无需向许可方支付任何许可使用费。",
                "en": "This licence is royalty-free: the licensee pays the licensor no royalty.",
            }
        ]
    due = int(royalty["payment_due_days"])
    clauses: list[Clause] = []
    if kind == "lump_sum":
        clauses += _lump_sum(royalty, due)
    else:
        if kind == "entry_plus_running":
            fee = royalty["entry_fee"]
            clauses.append(
                {
                    "zh": "许可使用费采用提成支付附加预付入门费的方式。"
                    f"被许可方应于本合同生效之日起"
                    f"{due}日内向许可方支付入门费{money_zh(fee)}，并按下款支付提成费。",
                    "en": f"The royalty is a running royalty with an entry fee paid in advance. "
                    f"The licensee pays the licensor an entry fee of {money_en(fee)} within "
                    f"{due} days after this contract takes effect, and the running royalty "
                    "below.",
                }
            )
        clauses += _running(royalty, due)
    if royalty.get("free_months") is not None:
        clauses.append(_free_period(int(royalty["free_months"]), due, kind))
    if royalty.get("sme_discount") is not None:
        clauses.append(_sme_discount(royalty["sme_discount"], licensee_is_sme))
    clauses.append(_payment_method())
    clauses.append(_late_payment(royalty.get("late_interest_rate")))
    return clauses


def _lump_sum(royalty: dict[str, Any], due: int) -> list[Clause]:
    amount = royalty["amount"]
    instalments = royalty.get("instalments") or []
    if not instalments:
        return [
            {
                "zh": f"许可使用费采用一次总算、一次总付的方式，总额为{money_zh(amount)}，"
                f"被许可方应于本合同生效之日起{due}日内一次付清。",
                "en": f"The royalty is a lump sum of {money_en(amount)} paid at once: the "
                f"licensee pays it in full within {due} days after this contract takes effect.",
            }
        ]
    parts_zh, parts_en = [], []
    for number, item in enumerate(instalments, start=1):
        months = int(item["due_months"])
        when_zh = "于本合同生效时" if months == 0 else f"于本合同生效满{months}个月时"
        when_en = (
            "when this contract takes effect"
            if months == 0
            else f"{months} months after this contract takes effect"
        )
        parts_zh.append(f"第{number}期{money_zh(item['amount'])}，{when_zh}到期")
        parts_en.append(f"instalment {number}: {money_en(item['amount'])}, due {when_en}")
    return [
        {
            "zh": f"许可使用费采用一次总算、分期支付的方式，总额为{money_zh(amount)}，分"
            f"{len(instalments)}期支付：{'；'.join(parts_zh)}。每期款项应于到期之日起{due}日内付清。",
            "en": f"The royalty is a lump sum of {money_en(amount)} paid in "
            f"{len(instalments)} instalments ({'; '.join(parts_en)}). Each instalment is paid "
            f"within {due} days after it falls due.",
        }
    ]


def _running(royalty: dict[str, Any], due: int) -> list[Clause]:
    base = royalty["base"]
    clauses: list[Clause] = []
    if base == "units":
        unit = royalty["unit_amount"]
        clauses.append(
            {
                "zh": f"提成费按被许可方销售的合同产品数量计算，每件（台、套）合同产品"
                f"{money_zh(unit)}。",
                "en": f"The running royalty is {money_en(unit)} for each unit of licensed "
                "product the licensee sells.",
            }
        )
    else:
        word_zh, word_en = BASE_WORDS[base]
        steps = royalty.get("steps")
        if steps:
            clauses.append(_stepped(steps, word_zh, word_en))
        else:
            rate = percent(royalty["rate"])
            clauses.append(
                {
                    "zh": f"提成费按被许可方实施本专利的合同产品{word_zh}的{rate}计算，"
                    "提成比例在许可期限内固定不变。",
                    "en": f"The running royalty is {rate} of the {word_en} of licensed "
                    "products, at a fixed rate for the whole licence term.",
                }
            )
        definition_zh, definition_en = BASE_DEFINITIONS[base]
        clauses.append({"zh": definition_zh, "en": definition_en})
    minimum, cap = royalty.get("annual_minimum"), royalty.get("cap")
    if minimum is not None:
        clauses.append(
            {
                "zh": f"年度最低使用费：每一许可年度的提成费不足{money_zh(minimum)}的，"
                "被许可方应于该许可年度届满后补足差额。",
                "en": f"Annual minimum: if the running royalty for a licence year is less than "
                f"{money_en(minimum)}, the licensee pays the difference after that licence "
                "year ends.",
            }
        )
    if cap is not None:
        clauses.append(
            {
                "zh": f"年度上限：每一许可年度的提成费以{money_zh(cap)}为上限，超出部分免付。",
                "en": f"Annual cap: the running royalty for a licence year is at most "
                f"{money_en(cap)}; any excess is not payable.",
            }
        )
    period_zh, period_en = PERIOD_WORDS[royalty["reporting_period"]]
    clauses.append(
        {
            "zh": f"提成费按{period_zh}结算：被许可方应于该期间结束后{due}日内向许可方提交"
            "该期间的提成费报告（列明合同产品的数量、销售额或利润及应付提成费），并同时支付"
            "该期间的提成费。",
            "en": f"The running royalty is settled for {period_en}: within {due} days after "
            "the period ends the licensee gives the licensor a royalty report for it (the "
            "quantity of licensed products, the sales or profit, and the royalty due) and pays "
            "that royalty.",
        }
    )
    return clauses


def _stepped(steps: list[dict[str, Any]], word_zh: str, word_en: str) -> Clause:
    parts_zh, parts_en = [], []
    for index, step in enumerate(steps):
        first = int(step["from_year"])
        rate = percent(step["rate"])
        if index + 1 < len(steps):
            last = int(steps[index + 1]["from_year"]) - 1
            years_zh = f"第{first}许可年度" if first == last else f"第{first}至第{last}许可年度"
            years_en = f"licence year {first}" if first == last else f"licence years {first}–{last}"
            parts_zh.append(f"{years_zh}为{rate}")
            parts_en.append(f"{rate} in {years_en}")
        else:
            parts_zh.append(f"自第{first}许可年度起为{rate}")
            parts_en.append(f"{rate} from licence year {first} on")
    return {
        "zh": f"提成费按被许可方实施本专利的合同产品{word_zh}的一定比例计算，提成比例按许可年度"
        f"变动：{'；'.join(parts_zh)}。许可年度自本合同生效之日起每满十二个月为一个许可年度。",
        "en": f"The running royalty is a percentage of the {word_en} of licensed products that "
        f"changes by licence year: {'; '.join(parts_en)}. A licence year is each period of "
        "twelve months from the day this contract takes effect.",
    }


def _free_period(months: int, due: int, kind: str) -> Clause:
    running_zh = "免费期内实施本专利不产生提成费，年度最低使用费自免费期届满之日起按比例计算；"
    running_en = (
        " No running royalty accrues on exploitation within the free period, and any annual "
        "minimum is pro-rated from the day it ends."
    )
    is_running = kind in ("running", "entry_plus_running")
    return {
        "zh": f"先用后付：自本合同生效之日起{months}个月为免费期。"
        + (running_zh if is_running else "")
        + f"原应于免费期内支付的款项，于免费期届满之日起{due}日内支付。",
        "en": f"Use first, pay later: the {months} months from the day this contract takes "
        "effect are a free period."
        + (running_en if is_running else "")
        + f" Any amount that would fall due within the free period is paid within {due} days "
        "after it ends.",
    }


def _sme_discount(discount: str, licensee_is_sme: bool | None) -> Clause:
    rate = percent(discount)
    applies_zh = (
        "被许可方为中小企业，适用本款优惠。"
        if licensee_is_sme
        else "被许可方不是中小企业，不适用本款优惠。"
    )
    applies_en = (
        "The licensee is an SME: this discount applies."
        if licensee_is_sme
        else "The licensee is not an SME: this discount does not apply."
    )
    if licensee_is_sme is None:
        applies_zh = applies_en = ""
    return {
        "zh": f"中小企业优惠：被许可方为中小企业的，本条约定的各项许可使用费金额减免{rate}，"
        f"该优惠对所有符合条件的被许可方一律适用。{applies_zh}",
        "en": f"SME discount: for a licensee that is a small or medium-sized enterprise every "
        f"royalty amount in this article is reduced by {rate}, the same for every eligible "
        f"licensee. {applies_en}".rstrip(),
    }


def _payment_method() -> Clause:
    return {
        "zh": "被许可方以银行转账方式将许可使用费支付至许可方书面指定的账户；许可方收款后应"
        "向被许可方开具合法有效的发票。",
        "en": "The licensee pays by bank transfer to the account the licensor designates in "
        "writing; on receipt the licensor issues the licensee a valid invoice (fapiao).",
    }


def _late_payment(rate: str | None) -> Clause:
    if rate is None:
        return {
            "zh": "被许可方逾期支付许可使用费的，应当补交并按照"
            "《中华人民共和国民法典》第八百七十三条"
            "承担违约责任。",
            "en": "A licensee that pays late must pay the arrears and is liable for breach under "
            "Article 873 of the Civil Code of the PRC.",
        }
    shown = percent(rate)
    return {
        "zh": f"被许可方逾期支付许可使用费的，应按逾期金额每年{shown}的利率支付逾期利息，自到期日"
        "次日起计算至实际付清之日；并按照《中华人民共和国民法典》第八百七十三条承担违约责任。",
        "en": f"Late payments bear interest at {shown} a year on the overdue amount from the day "
        "after the due date until paid, and the licensee is liable for breach under Article 873 "
        "of the Civil Code of the PRC.",
    }
