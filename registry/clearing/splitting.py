"""How one received payment is shared out, exact to the fen (DESIGN.md §2 Clearing, issue 5 §5).

Pure arithmetic: fen and hundredths of a percent in, payee lines out. Each level sums to its
whole exactly, each part within one fen of its exact pro-rata value (reliability.md §0 rule 3):

1. **Platform fee** at ``fee_rate``, **rounded down**: the rate is the most the clearing house
   may charge, so rounding never takes it above the rate (a 1 fen payment pays no fee).
2. **Income holders**: the rest goes to co-owners and income beneficiaries (收益权让渡, 赋权) by
   **income share**, which may differ from title share and totals 100 % (Patent Law Art. 14:
   co-owners share the royalty as agreed; reference/law.md A5).
3. **Reward policy** of each co-owner that has one recorded, or for a university or institute
   without one the statutory 50 % (STL Art. 45(1)); an enterprise without one keeps its whole
   part (it rewards its inventors as employer, Patent Law Art. 15). First the **deductions** the
   policy allows (RewardPolicy.deductions names only the kinds; amounts come with each payment),
   in kind order and never beyond the part, the excess reported in ``unrecovered_deductions`` to
   be carried forward; with no recorded policy nothing is deducted, as the law does not define
   "net income" (law.md §5, [U]). Then the **inventors' pool**, **rounded up** because Art. 45
   says "not less than", split among the inventors by contribution; the rest to the institution,
   by the policy's ``remainder_split`` if it has one.

**Tie-break.** Every largest-remainder split (registry.core.shares.allocate: equal remainders go
to the lower index) runs over parties sorted by a stable key, never input order: co-owners by
organisation id, then beneficiaries by beneficiary id; inventors by inventor id; remainder
recipients by label. Ids compare as strings (``str(uuid)``): the same data gives the same lines
in the same order on every run. Lines of 0 fen are left out. A correction is never split again:
the lines it corrects are negated (registry.clearing.payouts.reverse_lines).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Literal, Protocol

from registry.core.shares import ShareError, allocate, parse_percent, percent_to_hundredths

PayeeType = Literal["organisation", "inventor", "beneficiary", "platform"]
Role = Literal[
    "fee", "owner_income", "beneficiary_income", "deduction", "inventor_reward", "institution"
]

WHOLE: Final = 10000  # 100 % in hundredths of a percent
#: STL Art. 45(1): at least 50 % of net licence income to contributors, absent the unit's rules.
STATUTORY_INVENTOR_SHARE: Final = 5000
#: Organisation kinds that get the Art. 45 default when they have recorded no policy.
REWARDING_KINDS: Final = frozenset({"university", "institute"})
PLATFORM_ID: Final = "platform"


class SplitError(ShareError):
    """The split's inputs are inconsistent; ``str(error)`` is English, ``message_zh`` Chinese."""


@dataclass(frozen=True, slots=True)
class PolicyTerms:
    """An organisation's reward policy as the split needs it (accounts.models.RewardPolicy)."""

    inventor_share_hundredths: int
    policy_reference: str | None = None
    #: the kinds of cost that may be deducted before the split (e.g. "maintenance_fees")
    deductions: frozenset[str] = frozenset()
    #: the institution's part among internal recipients: (label, hundredths), summing to 10000
    remainder_split: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_policy(cls, policy: _PolicyRecord) -> PolicyTerms:
        """Terms from a RewardPolicy row (or anything with its four attributes)."""
        return cls(
            inventor_share_hundredths=percent_to_hundredths(policy.inventor_share),
            policy_reference=policy.policy_reference,
            deductions=frozenset(policy.deductions),
            remainder_split=tuple(
                (str(part["recipient"]), percent_to_hundredths(parse_percent(part["share"])))
                for part in policy.remainder_split
            ),
        )


class _PolicyRecord(Protocol):
    inventor_share: Decimal
    policy_reference: str | None
    deductions: list[str]
    remainder_split: list[dict[str, Any]]


#: What a university or institute without a recorded policy gives its inventors (STL Art. 45).
STATUTORY_DEFAULT: Final = PolicyTerms(STATUTORY_INVENTOR_SHARE)


@dataclass(frozen=True, slots=True)
class InventorShare:
    inventor_id: str
    name: str
    #: contribution weight; within one owner's list they need not sum to 10000
    contribution_hundredths: int


@dataclass(frozen=True)
class OwnerShare:
    """A co-owner's income share and what its part is subject to.

    ``kind``: an OrganisationKind value; ``policy``: its recorded reward policy, or None;
    ``inventors``: those rewarded from this owner's pool (the caller chooses them, usually the
    patent's inventors employed by this owner); ``deductions``: allowed cost kind -> fen.
    """

    organisation_id: str
    name: str
    income_share_hundredths: int
    kind: str
    policy: PolicyTerms | None = None
    inventors: Sequence[InventorShare] = ()
    deductions: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BeneficiaryShare:
    """An income-right holder without title (patents.models.IncomeBeneficiary)."""

    beneficiary_id: str
    name: str
    income_share_hundredths: int
    #: paid as that organisation when set; else as a "beneficiary" payee under beneficiary_id
    organisation_id: str | None = None


@dataclass(frozen=True, slots=True)
class PayeeLine:
    payee_type: PayeeType
    payee_id: str
    payee_name: str
    amount_fen: int
    role: Role
    #: the co-owner whose income part this line comes from (None for the fee and beneficiaries)
    owner_organisation_id: str | None = None
    #: the beneficiary whose income part this line is (beneficiary_income lines only)
    beneficiary_id: str | None = None
    #: the deduction kind, or the remainder_split recipient of an institution line
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class SplitResult:
    amount_fen: int
    fee_fen: int
    lines: tuple[PayeeLine, ...]
    #: owner organisation id -> deductions asked for but larger than the owner's part
    unrecovered_deductions: Mapping[str, int]


def _require(condition: bool, en: str, zh: str) -> None:
    if not condition:
        raise SplitError(en, zh)


def _hundredths(value: object, what: str, *, low: int = 0) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= WHOLE:
        return value
    raise SplitError(
        f"{what} must be an int of hundredths of a percent, {low}..10000, not {value!r}",
        f"{what} 应为 {low}..10000 之间的整数（0.01%），实际为 {value!r}",
    )


def _effective_policy(owner: OwnerShare) -> PolicyTerms | None:
    default = STATUTORY_DEFAULT if owner.kind in REWARDING_KINDS else None
    return owner.policy if owner.policy is not None else default


def _unique(ids: Sequence[str], what: str, zh: str) -> None:
    _require(len(set(ids)) == len(ids), f"{what} is listed twice", f"{zh}重复")


def _validate(owners: Sequence[OwnerShare], beneficiaries: Sequence[BeneficiaryShare]) -> None:
    _require(bool(owners), "a payment needs at least one co-owner", "至少需要一个专利权人")
    _unique([o.organisation_id for o in owners], "a co-owner", "专利权人")
    _unique([b.beneficiary_id for b in beneficiaries], "a beneficiary", "收益人")
    holders: list[OwnerShare | BeneficiaryShare] = [*owners, *beneficiaries]
    total = sum(_hundredths(h.income_share_hundredths, "income share") for h in holders)
    _require(
        total == WHOLE,
        f"income shares of owners and beneficiaries sum to {total}/10000, not 100 %",
        f"专利权人与收益人的收益份额合计为 {total}/10000，应为 100%",
    )
    for owner in owners:
        _validate_owner(owner)


def _validate_owner(owner: OwnerShare) -> None:
    policy, org = _effective_policy(owner), owner.organisation_id
    allowed = policy.deductions if policy is not None else frozenset()
    for kind, fen in owner.deductions.items():
        _require(
            kind in allowed and not isinstance(fen, bool) and isinstance(fen, int) and fen >= 0,
            f"{org}: deduction {kind!r} must be a kind its policy allows, of int fen >= 0",
            f"{org}：扣除项 {kind!r} 须为其奖励办法允许的项目，金额为非负整数（分）",
        )
    if policy is None:
        _require(
            not owner.inventors,
            f"{org}: without a reward policy its inventors are not paid by the clearing house",
            f"{org}：无奖励办法，其发明人不通过结算中心支付",
        )
        return
    share = _hundredths(policy.inventor_share_hundredths, "inventor share")
    _require(
        share >= STATUTORY_INVENTOR_SHARE or bool(policy.policy_reference),
        f"{org}: an inventor share below 50 % needs its published policy (STL Art. 45)",
        f"{org}：发明人比例低于 50% 须有已公布的奖励办法（促进科技成果转化法第四十五条）",
    )
    _unique([i.inventor_id for i in owner.inventors], f"{org}: an inventor", f"{org}：发明人")
    for inventor in owner.inventors:
        _hundredths(inventor.contribution_hundredths, "contribution", low=1)
    _require(
        share == 0 or bool(owner.inventors),
        f"{org}: its reward policy gives inventors a share but no inventor was given",
        f"{org}：奖励办法规定了发明人份额，但未提供发明人",
    )
    _unique([r for r, _ in policy.remainder_split], f"{org}: a recipient", f"{org}：余额分配对象")
    parts = [_hundredths(s, "remainder share", low=1) for _, s in policy.remainder_split]
    total = sum(parts) if parts else WHOLE
    _require(total == WHOLE, f"{org}: remainder split is not 100 %", f"{org}：余额分配合计非 100%")


def split_payment(
    amount_fen: int,
    *,
    owners: Sequence[OwnerShare],
    beneficiaries: Sequence[BeneficiaryShare] = (),
    fee_rate: int = 0,
) -> SplitResult:
    """Split ``amount_fen`` received on one payment; see the module docstring for the rules.

    The lines sum to ``amount_fen`` exactly; reordering any input list changes nothing. Raises
    :class:`SplitError` (all inputs are checked before anything is computed) for a negative
    amount, a rate or share out of range, income shares not totalling 10000, a duplicate id, a
    deduction the policy does not allow, an inventor share below 50 % without a policy reference
    (STL Art. 45), inventors given for an owner without a policy, or a pool with nobody to pay.
    """
    _require(
        not isinstance(amount_fen, bool) and isinstance(amount_fen, int) and amount_fen >= 0,
        "the amount must be a non-negative int of fen; a correction reverses its lines instead",
        "金额应为非负整数（分）；更正应冲销原分配行",
    )
    _hundredths(fee_rate, "fee rate")
    _validate(owners, beneficiaries)

    fee = amount_fen * fee_rate // WHOLE  # rounded down: never above the rate
    lines: list[PayeeLine] = []
    if fee:
        lines.append(PayeeLine("platform", PLATFORM_ID, "clearing house", fee, "fee"))
    sorted_owners = sorted(owners, key=lambda o: o.organisation_id)
    sorted_benefs = sorted(beneficiaries, key=lambda b: b.beneficiary_id)
    weights = [h.income_share_hundredths for h in sorted_owners]
    weights += [h.income_share_hundredths for h in sorted_benefs]
    parts = allocate(amount_fen - fee, weights)
    unrecovered: dict[str, int] = {}
    for owner, part in zip(sorted_owners, parts[: len(sorted_owners)], strict=True):
        lines += _owner_lines(owner, part, unrecovered)
    for benef, part in zip(sorted_benefs, parts[len(sorted_owners) :], strict=True):
        payee_type: PayeeType = "organisation" if benef.organisation_id else "beneficiary"
        payee_id = benef.organisation_id or benef.beneficiary_id
        role: Role = "beneficiary_income"
        line = PayeeLine(payee_type, payee_id, benef.name, part, role, None, benef.beneficiary_id)
        lines.append(line)
    kept = tuple(line for line in lines if line.amount_fen != 0)
    return SplitResult(amount_fen, fee, kept, unrecovered)


def _owner_lines(owner: OwnerShare, part: int, unrecovered: dict[str, int]) -> list[PayeeLine]:
    org, name = owner.organisation_id, owner.name
    policy = _effective_policy(owner)
    if policy is None:
        return [PayeeLine("organisation", org, name, part, "owner_income", org)]
    lines: list[PayeeLine] = []
    base = part
    for kind in sorted(owner.deductions):
        recovered = min(owner.deductions[kind], base)
        base -= recovered
        if owner.deductions[kind] > recovered:
            unrecovered[org] = unrecovered.get(org, 0) + owner.deductions[kind] - recovered
        lines.append(PayeeLine("organisation", org, name, recovered, "deduction", org, detail=kind))
    # Rounded up (ceiling): STL Art. 45 sets a floor ("not less than"), so the inventors' pool is
    # never below its percentage of the net; it is still less than one fen above it.
    pool = -(-base * policy.inventor_share_hundredths // WHOLE)
    inventors = sorted(owner.inventors, key=lambda i: i.inventor_id)
    if inventors:  # none only when the policy's inventor share is 0
        rewards = allocate(pool, [i.contribution_hundredths for i in inventors])
        for i, reward in zip(inventors, rewards, strict=True):
            lines.append(
                PayeeLine("inventor", i.inventor_id, i.name, reward, "inventor_reward", org)
            )
    rest = base - pool
    split: list[tuple[str | None, int]] = [*sorted(policy.remainder_split)] or [(None, WHOLE)]
    for (label, _), amount in zip(split, allocate(rest, [s for _, s in split]), strict=True):
        lines.append(PayeeLine("organisation", org, name, amount, "institution", org, detail=label))
    return lines
