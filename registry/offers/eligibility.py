"""Eligibility of an open-licence declaration: rules E1–E13 of reference/law.md A1.

Each rule is a named check with its legal basis, a severity and a message in Chinese and
English. Publishing refuses while any hard check fails and lists all of them; failed warnings
are recorded on the offer. Checks that the publish request itself completes (the attestation,
E13) are reported as ``pending`` by a read, and ``eligible`` then says whether publishing with
them would pass.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Final

from registry.core.actor import Actor, Role
from registry.offers.lifecycle import term_end
from registry.offers.models import Offer, OfferConsent
from registry.offers.royalty import check_royalty, guide_rail_excesses
from registry.offers.terms import TERRITORY, load_document, term_months, term_years_span
from registry.patents.models import (
    ConsentRule,
    EncumbranceKind,
    EvaluationConclusion,
    LegalStatus,
    Patent,
    PatentOwner,
    PatentType,
)

HARD: Final = "hard"
WARNING: Final = "warning"
EXCLUSIVE_KINDS = frozenset({EncumbranceKind.EXCLUSIVE_LICENCE, EncumbranceKind.SOLE_LICENCE})
SUSPENSION_KINDS = frozenset(
    {EncumbranceKind.DISPUTE_SUSPENSION, EncumbranceKind.PRESERVATION_ORDER}
)
HALF: Final = Decimal("50.00")

# IR Art. 85: no commercial advertising language. The words are those the Advertising Law
# Art. 9(3) forbids (国家级、最高级、最佳 and the like) and common superlatives; a warning,
# because a technical text may use them plainly ("最高温度").
ADVERTISING_ZH: Final = (
    "国家级", "世界级", "最高级", "最佳", "最优", "最好", "最先进", "最低价", "第一", "首选",
    "顶级", "极品", "独家", "唯一", "绝对", "万能", "领先", "王牌", "冠军", "史无前例",
    "革命性", "百分之百", "100%", "稳赚", "包赚", "零风险",
)  # fmt: skip
ADVERTISING_EN: Final = re.compile(
    r"\b(best|number one|no\.\s?1|world[- ]class|leading|unbeatable|unrivalled|unrivaled|"
    r"revolutionary|guaranteed|cheapest|risk[- ]free)\b",
    re.IGNORECASE,
)
# PL Art. 50: the declaration licenses *any* entity or individual, on the same terms. Free
# text that limits who may take a licence contradicts it (E11).
EXCLUSION_ZH: Final = ("仅限", "仅向", "只向", "不向", "不许可给", "谢绝", "除外的企业")
EXCLUSION_EN: Final = re.compile(
    r"\b(only (?:to|for) (?:companies|enterprises|firms|entities|members|partners)|"
    r"not (?:licensed|available) to|excluding (?:companies|enterprises|firms|entities))\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Check:
    code: str
    name: str
    basis: str
    severity: str
    passed: bool
    message_en: str
    message_zh: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "name": self.name,
            "passed": self.passed,
            "severity": self.severity,
            "basis": self.basis,
            "message": self.message_en,
            "message_en": self.message_en,
            "message_zh": self.message_zh,
        }


@dataclass
class Report:
    checks: list[Check]
    pending: list[str] = field(default_factory=list)

    @property
    def failed_hard(self) -> list[Check]:
        return [c for c in self.checks if c.severity == HARD and not c.passed]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.severity == WARNING and not c.passed]

    @property
    def eligible(self) -> bool:
        return all(c.code in self.pending for c in self.failed_hard)

    def as_dict(self) -> dict[str, Any]:
        return {
            "eligible": self.eligible,
            "pending": self.pending,
            "checks": [c.as_dict() for c in self.checks],
        }


@dataclass(frozen=True)
class Context:
    offer: Offer
    patent: Patent
    owners: Sequence[PatentOwner]
    today: date
    declarant: Actor | None
    attested: bool | None  # None: not asked yet (a read)
    consenting: frozenset[uuid.UUID]  # owner organisations consenting to the current terms


@dataclass(frozen=True)
class Outcome:
    passed: bool
    en: str
    zh: str


def ok(en: str, zh: str) -> Outcome:
    return Outcome(True, en, zh)


def fail(en: str, zh: str) -> Outcome:
    return Outcome(False, en, zh)


Rule = Callable[[Context], Outcome]
RULES: list[tuple[str, str, str, str, Rule]] = []


def rule(code: str, name: str, severity: str, basis: str) -> Callable[[Rule], Rule]:
    def register(function: Rule) -> Rule:
        RULES.append((code, name, severity, basis, function))
        return function

    return register


@rule("E1", "granted_in_force", HARD, "Implementing Regulations Art. 85(1); Patent Law Art. 42")
def _granted(ctx: Context) -> Outcome:
    # IR Art. 85: a declaration may be filed only after the grant is announced; it needs a
    # patent in force (CNIPA FAQ on declarations), so not past its term (PL Art. 42).
    patent = ctx.patent
    if patent.grant_date is None:
        return fail("the grant of the patent has not been announced", "专利授权尚未公告")
    if patent.legal_status is not LegalStatus.VALID:
        return fail(
            f"the patent is not in force (legal status {patent.legal_status.value})",
            f"专利权未处于有效状态（法律状态：{patent.legal_status.value}）",
        )
    if ctx.today > patent.expiry_date:
        return fail(
            f"the patent expired on {patent.expiry_date.isoformat()}",
            f"专利权已于 {patent.expiry_date.isoformat()} 期限届满",
        )
    return ok("granted, announced and in force", "已授权公告且有效")


@rule("E2", "evaluation_report", HARD, "Patent Law Art. 50(1); Implementing Regulations Art. 62")
def _evaluation_report(ctx: Context) -> Outcome:
    # PL Art. 50(1): a utility model or design declaration comes with the evaluation report.
    patent = ctx.patent
    if patent.patent_type is PatentType.INVENTION:
        return ok("not required for an invention patent", "发明专利无需专利权评价报告")
    if not patent.evaluation_report_number or patent.evaluation_report_date is None:
        return fail(
            f"a {patent.patent_type.value.replace('_', ' ')} needs its patent right evaluation "
            "report (number and date)",
            "实用新型或外观设计专利须提交专利权评价报告（编号和日期）",
        )
    return ok(
        f"evaluation report {patent.evaluation_report_number} is on record",
        f"专利权评价报告 {patent.evaluation_report_number} 已登记",
    )


@rule("E2b", "evaluation_conclusion", WARNING, "Patent Law Art. 50(1); CNIPA practice [S]")
def _evaluation_conclusion(ctx: Context) -> Outcome:
    # CNIPA practice guides (law.md §3.1 [S]) want a favourable conclusion; law.md A1 makes
    # the conclusion a warning since only the report itself is statutory.
    patent = ctx.patent
    if patent.patent_type is PatentType.INVENTION or not patent.evaluation_report_number:
        return ok("no evaluation report conclusion to weigh", "无需评价报告结论")
    if patent.evaluation_report_conclusion is not EvaluationConclusion.NO_DEFECT:
        return fail(
            "the evaluation report found defects (or records no conclusion)",
            "专利权评价报告结论存在缺陷（或未登记结论）",
        )
    return ok("the evaluation report found no defect", "专利权评价报告未发现缺陷")


def _in_force(ctx: Context, kinds: frozenset[EncumbranceKind]) -> list[str]:
    return [
        f"{e.kind.value} {e.reference}"
        for e in ctx.patent.encumbrances
        if e.kind in kinds and e.in_force_on(ctx.today)
    ]


@rule("E3", "no_exclusive_licence", HARD, "Implementing Regulations Art. 86(1)")
def _no_exclusive(ctx: Context) -> Outcome:
    found = _in_force(ctx, EXCLUSIVE_KINDS)
    if found:
        listed = "; ".join(found)
        return fail(
            f"an exclusive or sole licence is in force: {listed}",
            f"存在有效的独占或排他许可：{listed}",
        )
    return ok("no exclusive or sole licence in force", "无有效的独占或排他许可")


@rule("E4", "no_suspension", HARD, "Implementing Regulations Art. 86(2), Arts. 103–104")
def _no_suspension(ctx: Context) -> Outcome:
    found = _in_force(ctx, SUSPENSION_KINDS)
    if found:
        listed = "; ".join(found)
        return fail(
            f"an ownership-dispute suspension or preservation order is in force: {listed}",
            f"存在权属纠纷中止或财产保全：{listed}",
        )
    return ok("no dispute suspension or preservation order", "无权属纠纷中止或保全措施")


@rule("E5", "annual_fees_paid", HARD, "Implementing Regulations Art. 86(3), Art. 115")
def _fees(ctx: Context) -> Outcome:
    # IR Art. 86(3): not while annual fees are unpaid. Whether the 6-month late-payment window
    # of IR Art. 115 counts is unsettled (law.md §2 [U]); law.md A1 says treat it as ineligible.
    paid = ctx.patent.annual_fees_paid_through
    if paid is None:
        return fail(
            "record the date the annual fees are paid through",
            "请登记年费缴纳截止日期",
        )
    if paid < ctx.today:
        return fail(
            f"annual fees are paid only through {paid.isoformat()}: the patent is in the "
            "late-payment window",
            f"年费仅缴至 {paid.isoformat()}，专利处于滞纳期",
        )
    return ok(f"annual fees paid through {paid.isoformat()}", f"年费已缴至 {paid.isoformat()}")


@rule("E6", "pledgee_consent", HARD, "Implementing Regulations Art. 86(4); Civil Code Art. 444")
def _pledge(ctx: Context) -> Outcome:
    # CC Art. 444: a pledged IP right is not licensed without the pledgee's consent.
    without = [
        e.reference
        for e in ctx.patent.encumbrances
        if e.kind is EncumbranceKind.PLEDGE and e.in_force_on(ctx.today) and not e.pledgee_consent
    ]
    if without:
        listed = "; ".join(without)
        return fail(
            f"the patent is pledged without the pledgee's consent: {listed}",
            f"专利已质押且质权人未同意：{listed}",
        )
    return ok("no pledge, or the pledgee consents", "无质押，或质权人已同意")


def consent_outcome(
    rule_: ConsentRule, owners: Sequence[PatentOwner], consenting: Iterable[uuid.UUID]
) -> tuple[bool, list[PatentOwner]]:
    """Whether the owners consenting satisfy ``rule_``, and who has not consented.

    Patent Law Art. 14: co-owners follow their agreement, recorded as the patent's decision
    rule; without one, CNIPA practice wants every co-owner for an open licence (law.md §1)."""
    agreed = set(consenting)
    missing = [o for o in owners if o.organisation_id not in agreed]
    present = [o for o in owners if o.organisation_id in agreed]
    if not owners:
        return False, []
    if rule_ is ConsentRule.ANY_OWNER:
        return bool(present), missing
    if rule_ is ConsentRule.MAJORITY_TITLE_SHARE:
        share = sum((o.title_share for o in present), Decimal(0))
        return share > HALF, missing
    return not missing, missing


@rule("E7", "co_owner_consent", HARD, "Patent Law Art. 14; CNIPA FAQ on withdrawal [S]")
def _consent(ctx: Context) -> Outcome:
    satisfied, missing = consent_outcome(
        ctx.patent.consent_open_licence, ctx.owners, ctx.consenting
    )
    rule_ = ctx.patent.consent_open_licence.value
    if satisfied:
        return ok(
            f"the owners consent to these terms ({rule_})", f"权利人已同意本声明条款（{rule_}）"
        )
    names = "、".join(o.organisation.name for o in missing)
    return fail(
        f"consent to these exact terms is missing ({rule_}): {names}",
        f"尚缺以下权利人对本条款的同意（{rule_}）：{names}",
    )


@rule("E8", "content_complete", HARD, "Implementing Regulations Art. 85")
def _complete(ctx: Context) -> Outcome:
    # IR Art. 85: patent number, patentee, royalty method and standard, term, other matters.
    terms = ctx.offer.terms
    problems = []
    if not ctx.owners:
        problems.append("no patentee is recorded")
    if "term_years" not in terms and "term_end_date" not in terms:
        problems.append("no licence term")
    values = load_document(terms)
    problems += [
        f"{e.field}: {'; '.join(e.messages)}"
        for e in check_royalty(
            values["royalty"],
            term_months=term_months(values, ctx.today),
            term_years=term_years_span(values, ctx.today),
        )
    ]
    if problems:
        listed = "; ".join(problems)
        return fail(f"the declaration is incomplete: {listed}", f"声明内容不完整：{listed}")
    return ok(
        "patent, patentees, royalty method and standard and term are stated",
        "专利号、专利权人、许可使用费支付方式和标准及许可期限均已载明",
    )


def _free_text(offer: Offer) -> str:
    terms = offer.terms
    return " ".join(filter(None, [terms.get("field_of_use"), terms.get("other_matters")]))


@rule("E8b", "no_advertising", WARNING, "Implementing Regulations Art. 85; Advertising Law Art. 9")
def _advertising(ctx: Context) -> Outcome:
    text = _free_text(ctx.offer)
    found = [word for word in ADVERTISING_ZH if word in text]
    found += [match.group(0) for match in ADVERTISING_EN.finditer(text)]
    if found:
        listed = "、".join(dict.fromkeys(found))
        return fail(
            f"words that read as advertising: {listed}", f"以下用语可能构成商业广告用语：{listed}"
        )
    return ok("no advertising language found", "未发现商业广告用语")


@rule("E9", "term_within_patent", HARD, "Civil Code Art. 865; Patent Law Art. 42")
def _term(ctx: Context) -> Outcome:
    # CC Art. 865: a patent licence runs only within the patent's term.
    last = term_end(ctx.offer.terms, ctx.today)
    expiry = ctx.patent.expiry_date
    if last is None:
        return fail("no licence term is stated", "未载明许可期限")
    if ctx.offer.term_end_date is not None and ctx.offer.term_end_date <= ctx.today:
        return fail(
            f"the fixed licence term ended on {last.isoformat()}",
            f"许可期限已于 {last.isoformat()} 届满",
        )
    if last > expiry:
        return fail(
            f"a licence taken today would run to {last.isoformat()}, past the patent's expiry "
            f"on {expiry.isoformat()}",
            f"今日取得的许可将至 {last.isoformat()}，晚于专利权届满日 {expiry.isoformat()}",
        )
    return ok(
        f"the licence term ends by the patent's expiry ({expiry.isoformat()})",
        f"许可期限不超过专利权届满日（{expiry.isoformat()}）",
    )


@rule("E10", "royalty_guide_rails", WARNING, "CNIPA notice 国知发运字〔2024〕19号 [S]")
def _guide_rails(ctx: Context) -> Outcome:
    found = guide_rail_excesses(ctx.offer.terms["royalty"])
    if found:
        listed = "; ".join(found)
        return fail(
            f"above the 2024 CNIPA guide-rails: {listed}",
            f"超出 2024 年国家知识产权局指导标准：{listed}",
        )
    return ok("within the 2024 CNIPA guide-rails", "符合 2024 年国家知识产权局指导标准")


@rule("E11", "open_to_all", HARD, "Patent Law Art. 50(1); CNIPA practice (一视同仁) [S]")
def _open_to_all(ctx: Context) -> Outcome:
    # PL Art. 50: willing to license *any* entity or individual; within China (CNIPA FAQ).
    if ctx.offer.terms.get("territory") != TERRITORY:
        return fail("the territory must be mainland China", "许可地域须为中国大陆")
    text = _free_text(ctx.offer)
    found = [word for word in EXCLUSION_ZH if word in text]
    found += [match.group(0) for match in EXCLUSION_EN.finditer(text)]
    if found:
        listed = "、".join(dict.fromkeys(found))
        return fail(
            f"the text limits who may take a licence ({listed}): an open licence is for anyone "
            "on the same terms",
            f"文字限制了被许可人范围（{listed}）：开放许可应对任何单位或个人一视同仁",
        )
    return ok(
        "open to any entity or individual on the same terms, in mainland China",
        "面向任何单位或个人，条件相同，地域为中国大陆",
    )


@rule("E12", "declarant_is_patentee", HARD, "Patent Law Art. 50(1)")
def _declarant(ctx: Context) -> Outcome:
    # PL Art. 50: the patentee declares; the clearing house may act as its authorised agent.
    actor = ctx.declarant
    owner_ids = {o.organisation_id for o in ctx.owners}
    if actor is not None and actor.role is Role.ADMIN:
        return ok(
            "declared by the clearing house as the patentees' agent", "由服务机构代理专利权人声明"
        )
    if actor is not None and actor.role is Role.TTO and actor.organisation_id in owner_ids:
        return ok("declared by a registered patentee", "由登记的专利权人声明")
    return fail(
        "only a registered patentee's TTO (or the clearing house as agent) may declare",
        "仅登记的专利权人（或其代理的服务机构）可以声明",
    )


@rule("E13", "truthful_attestation", HARD, "Implementing Regulations Art. 88, Art. 100")
def _attestation(ctx: Context) -> Outcome:
    # IR Art. 88: no false material; IR Art. 100 fines a breach up to RMB 100,000.
    if ctx.attested:
        return ok("the declarant attests that the material is true", "声明人承诺所提交材料真实")
    if ctx.attested is None:
        return fail(
            'attest in the publish request: {"attest_truthful": true}',
            '请在发布请求中承诺材料真实：{"attest_truthful": true}',
        )
    return fail(
        "the declarant must attest that no false material is included",
        "声明人须承诺未提交虚假材料",
    )


def evaluate(ctx: Context) -> Report:
    """Run every rule, in order; none stops the others (all violations at once)."""
    checks = []
    for code, name, severity, basis, function in RULES:
        outcome = function(ctx)
        checks.append(Check(code, name, basis, severity, outcome.passed, outcome.en, outcome.zh))
    pending = ["E13"] if ctx.attested is None else []
    return Report(checks, pending)


def consenting_organisations(
    offer: Offer, *, purpose: str, implied: uuid.UUID | None = None
) -> frozenset[uuid.UUID]:
    """Organisations whose consent of ``purpose`` binds the offer's current terms hash."""
    found = {
        c.organisation_id
        for c in offer.consents
        if c.purpose == purpose and c.terms_sha256 == offer.terms_sha256
    }
    if implied is not None:
        found.add(implied)
    return frozenset(found)


def current_consents(offer: Offer, purpose: str) -> list[OfferConsent]:
    return [
        c for c in offer.consents if c.purpose == purpose and c.terms_sha256 == offer.terms_sha256
    ]
