"""Settlement split of one payment (registry.clearing.splitting), exact to the fen.

Worked examples from issue 5 computed by hand in the comments (yuan, then fen), and the T10
properties of reliability.md §8 at every level of the split: the lines add up to the payment,
each part is within one fen of its exact pro-rata value, and the same data in any order gives
the same lines.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Iterable
from dataclasses import replace
from decimal import Decimal
from fractions import Fraction
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.accounts.models import RewardPolicy
from registry.clearing.splitting import (
    STATUTORY_DEFAULT,
    BeneficiaryShare,
    InventorShare,
    OwnerShare,
    PolicyTerms,
    SplitError,
    SplitResult,
    split_payment,
)
from registry.core.shares import allocate

T = TypeVar("T")
PROPERTY = settings(database=None, deadline=None, max_examples=400)

# Demo University: a recorded 70 % policy that lets maintenance fees be deducted and splits the
# institution's part 60 % to the school, 40 % to the university.
POLICY_70 = PolicyTerms(
    7000,
    policy_reference="示范大学科技成果转化收益分配办法（2021）",
    deductions=frozenset({"maintenance_fees"}),
    remainder_split=(("school", 6000), ("university", 4000)),
)


def _issue_owners(deduction_fen: int = 0) -> list[OwnerShare]:
    """Three co-owners whose income shares differ from their title shares, five inventors."""
    return [
        # title 50 %, income 45 %, 70 % policy; inventors 40 / 35 / 25
        OwnerShare(
            "org-a",
            "示范大学 Demo University",
            4500,
            "university",
            POLICY_70,
            inventors=[
                InventorShare("inv-1", "张三 Zhang San", 4000),
                InventorShare("inv-2", "李四 Li Si", 3500),
                InventorShare("inv-3", "王五 Wang Wu", 2500),
            ],
            deductions={"maintenance_fees": deduction_fen} if deduction_fen else {},
        ),
        # title 30 %, income 35 %, no recorded policy: the statutory 50 % (STL Art. 45)
        OwnerShare(
            "org-b",
            "示范研究所 Demo Institute",
            3500,
            "institute",
            inventors=[
                InventorShare("inv-4", "赵六 Zhao Liu", 6000),
                InventorShare("inv-5", "钱七 Qian Qi", 4000),
            ],
        ),
        # title 20 %, income 20 %, an enterprise: keeps its whole part
        OwnerShare("org-c", "示范科技有限公司 Demo Tech Co.", 2000, "enterprise"),
    ]


def _summary(result: SplitResult) -> list[tuple[str, str, int, str | None]]:
    return [(ln.payee_id, ln.role, ln.amount_fen, ln.detail) for ln in result.lines]


def test_issue_worked_example() -> None:
    # Received RMB 12,345.67 = 1,234,567 fen; platform fee 2.50 %; Demo University deducts
    # RMB 900.00 = 90,000 fen of maintenance fees its policy allows.
    result = split_payment(1_234_567, owners=_issue_owners(90_000), fee_rate=250)
    assert _summary(result) == [
        # fee: 1,234,567 x 2.5 % = 30,864.175 fen, rounded down: RMB 308.64. Net 1,203,703.
        ("platform", "fee", 30_864, None),
        # income shares 45 / 35 / 20 of 1,203,703: 541,666.35 / 421,296.05 / 240,740.60; the
        # floors leave 1 fen, which goes to the largest remainder (.60, Demo Tech).
        # Demo University's 541,666 (RMB 5,416.66): 90,000 deducted, base 451,666.
        ("org-a", "deduction", 90_000, "maintenance_fees"),
        # pool 70 % of 451,666 = 316,166.2, rounded up (Art. 45 "not less than"): 316,167.
        # 40 / 35 / 25 %: 126,466.8 / 110,658.45 / 79,041.75; 2 fen left go to .8 and .75.
        ("inv-1", "inventor_reward", 126_467, None),  # RMB 1,264.67
        ("inv-2", "inventor_reward", 110_658, None),  # RMB 1,106.58
        ("inv-3", "inventor_reward", 79_042, None),  # RMB 790.42
        # rest 451,666 - 316,167 = 135,499, by label: school 60 % = 81,299.4, university 40 %
        # = 54,199.6; the fen left goes to .6.
        ("org-a", "institution", 81_299, "school"),
        ("org-a", "institution", 54_200, "university"),
        # Demo Institute's 421,296 (RMB 4,212.96): statutory 50 %, pool 210,648, split 60 / 40:
        # 126,388.8 / 84,259.2, the fen left to .8.
        ("inv-4", "inventor_reward", 126_389, None),  # RMB 1,263.89
        ("inv-5", "inventor_reward", 84_259, None),  # RMB 842.59
        ("org-b", "institution", 210_648, None),  # RMB 2,106.48
        # Demo Tech keeps 240,741 (RMB 2,407.41).
        ("org-c", "owner_income", 240_741, None),
    ]
    assert result.fee_fen == 30_864
    assert sum(ln.amount_fen for ln in result.lines) == 1_234_567
    assert result.unrecovered_deductions == {}
    # Title shares (50 / 30 / 20) would have given other parts: income shares decide.
    assert allocate(1_203_703, [5000, 3000, 2000]) != [541_666, 421_296, 240_741]
    by_owner = {
        org: sum(ln.amount_fen for ln in result.lines if ln.owner_organisation_id == org)
        for org in ("org-a", "org-b", "org-c")
    }
    assert by_owner == {"org-a": 541_666, "org-b": 421_296, "org-c": 240_741}
    names = {ln.payee_id: ln.payee_name for ln in result.lines}
    assert names["inv-1"] == "张三 Zhang San"
    assert names["org-c"] == "示范科技有限公司 Demo Tech Co."


def test_issue_example_five_fen_without_fee() -> None:
    # RMB 0.05 = 5 fen, no fee. 45 / 35 / 20 %: 2.25 / 1.75 / 1.00: floors 2 + 1 + 1, the fen
    # left to .75 (Demo Institute): 2 / 2 / 1.
    result = split_payment(5, owners=_issue_owners())
    assert _summary(result) == [
        # Demo University 2 fen: 70 % = 1.4, rounded up to 2, institution 0 (left out);
        # 40 / 35 / 25 % of 2 = .8 / .7 / .5: the 2 fen go to .8 and .7.
        ("inv-1", "inventor_reward", 1, None),
        ("inv-2", "inventor_reward", 1, None),
        # Demo Institute 2 fen: 50 % = 1 each; 60 / 40 % of 1 = .6 / .4: inv-4.
        ("inv-4", "inventor_reward", 1, None),
        ("org-b", "institution", 1, None),
        ("org-c", "owner_income", 1, None),
    ]
    assert result.fee_fen == 0


def test_input_order_does_not_matter_and_ties_go_to_the_lower_id() -> None:
    # 1 fen between two owners at 50 % each is a tie; the lower organisation id wins, whichever
    # was listed first.
    b = OwnerShare("org-b", "B", 5000, "enterprise")
    a = OwnerShare("org-a", "A", 5000, "enterprise")
    assert _summary(split_payment(1, owners=[b, a])) == [("org-a", "owner_income", 1, None)]
    assert split_payment(1, owners=[b, a]) == split_payment(1, owners=[a, b])
    # Same for inventors: 1 fen pool between equal contributors goes to the lower inventor id.
    owner = OwnerShare(
        "org-a",
        "A",
        10000,
        "university",
        inventors=[InventorShare("inv-9", "九", 5000), InventorShare("inv-1", "一", 5000)],
    )
    assert _summary(split_payment(1, owners=[owner])) == [("inv-1", "inventor_reward", 1, None)]


def test_one_fen_goes_to_the_inventors_and_pays_no_fee() -> None:
    # Art. 45 is a floor: 50 % of 1 fen is 0.5, rounded up for the inventors. A fee of 99.99 % of
    # 1 fen is 0.9999, rounded down to nothing.
    owner = OwnerShare(
        "u", "大学", 10000, "university", inventors=[InventorShare("i", "甲", 10000)]
    )
    result = split_payment(1, owners=[owner], fee_rate=9999)
    assert result.fee_fen == 0
    assert _summary(result) == [("i", "inventor_reward", 1, None)]


def test_enterprise_keeps_its_whole_part_but_a_recorded_policy_applies() -> None:
    plain = OwnerShare("e", "企业", 10000, "enterprise")
    assert _summary(split_payment(10_001, owners=[plain])) == [("e", "owner_income", 10_001, None)]
    with_policy = replace(
        plain, policy=PolicyTerms(6000), inventors=[InventorShare("i", "甲", 10000)]
    )
    # 60 % of 100.01 yuan = 60.006 yuan, rounded up to 60.01 for the inventor.
    assert _summary(split_payment(10_001, owners=[with_policy])) == [
        ("i", "inventor_reward", 6_001, None),
        ("e", "institution", 4_000, None),
    ]


def test_policy_share_of_zero_with_reference_pays_the_institution() -> None:
    policy = PolicyTerms(0, policy_reference="某研究所股权激励办法")
    owner = OwnerShare("u", "研究所", 10000, "institute", policy)
    assert _summary(split_payment(500, owners=[owner])) == [("u", "institution", 500, None)]


def test_deductions_never_exceed_the_part_and_the_excess_is_reported() -> None:
    policy = PolicyTerms(5000, deductions=frozenset({"maintenance_fees", "transfer_costs"}))
    owner = OwnerShare(
        "u",
        "大学",
        5000,
        "university",
        policy,
        inventors=[InventorShare("i", "甲", 10000)],
        deductions={"transfer_costs": 400, "maintenance_fees": 300},
    )
    other = OwnerShare("e", "企业", 5000, "enterprise")
    # 1,000 fen: 500 each. Deductions in kind order: maintenance 300, then transfer 200 of 400.
    result = split_payment(1_000, owners=[owner, other])
    assert _summary(result) == [
        ("e", "owner_income", 500, None),  # "e" sorts before "u"
        ("u", "deduction", 300, "maintenance_fees"),
        ("u", "deduction", 200, "transfer_costs"),
    ]
    assert result.unrecovered_deductions == {"u": 200}


def test_beneficiaries_share_income_without_title() -> None:
    owner = OwnerShare("u", "大学", 9000, "university", inventors=[InventorShare("i", "甲", 1)])
    team = BeneficiaryShare("ben-1", "电池课题组 Battery team", 1000)
    bank = BeneficiaryShare("ben-2", "某基金会", 0, organisation_id="org-f")
    result = split_payment(10_000, owners=[owner], beneficiaries=[bank, team])
    assert [(ln.payee_type, ln.payee_id, ln.role, ln.amount_fen) for ln in result.lines] == [
        ("inventor", "i", "inventor_reward", 4_500),
        ("organisation", "u", "institution", 4_500),
        ("beneficiary", "ben-1", "beneficiary_income", 1_000),
    ]
    assert result.lines[-1].beneficiary_id == "ben-1"
    assert result.lines[-1].owner_organisation_id is None
    foundation = BeneficiaryShare("ben-2", "某基金会", 1000, organisation_id="org-f")
    line = split_payment(10_000, owners=[owner], beneficiaries=[foundation]).lines[-1]
    assert (line.payee_type, line.payee_id, line.beneficiary_id) == (
        "organisation",
        "org-f",
        "ben-2",
    )


def test_zero_amount_gives_no_lines() -> None:
    result = split_payment(0, owners=_issue_owners(), fee_rate=500)
    assert (result.lines, result.fee_fen) == ((), 0)


def test_policy_terms_from_a_reward_policy_row() -> None:
    row = RewardPolicy(
        organisation_id=uuid.uuid4(),
        inventor_share=Decimal("70.00"),
        policy_reference="示范大学科技成果转化收益分配办法（2021）",
        deductions=["maintenance_fees"],
        # stored as the service stores it: shares as percent strings
        remainder_split=[
            {"recipient": "school", "share": "60.00"},
            {"recipient": "university", "share": "40.00"},
        ],
    )
    assert PolicyTerms.from_policy(row) == POLICY_70
    assert PolicyTerms(5000) == STATUTORY_DEFAULT


def _owner(**changes: object) -> OwnerShare:
    base = OwnerShare("u", "大学", 10000, "university", inventors=[InventorShare("i", "甲", 1)])
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"amount_fen": -1}, "non-negative int of fen"),
        ({"amount_fen": True}, "non-negative int of fen"),
        ({"fee_rate": 10001}, "fee rate"),
        ({"fee_rate": -1}, "fee rate"),
        ({"owners": []}, "at least one co-owner"),
        ({"owners": [_owner(income_share_hundredths=9999)]}, "sum to 9999/10000"),
        ({"owners": [_owner(), _owner(income_share_hundredths=0)]}, "co-owner is listed twice"),
        ({"owners": [_owner(inventors=[])]}, "no inventor was given"),
        (
            {"owners": [_owner(inventors=[InventorShare("i", "甲", 1)] * 2)]},
            "inventor is listed twice",
        ),
        ({"owners": [_owner(inventors=[InventorShare("i", "甲", 0)])]}, "contribution"),
        ({"owners": [_owner(policy=PolicyTerms(4999))]}, r"below 50 % .*STL Art\. 45"),
        ({"owners": [_owner(deductions={"maintenance_fees": 1})]}, "deduction 'maintenance_fees'"),
        (
            {
                "owners": [
                    _owner(
                        policy=replace(POLICY_70, deductions=frozenset({"x"})), deductions={"x": -1}
                    )
                ]
            },
            "deduction 'x'",
        ),
        (
            {"owners": [_owner(kind="enterprise", inventors=[InventorShare("i", "甲", 1)])]},
            "without a reward policy",
        ),
        (
            {"owners": [_owner(policy=replace(POLICY_70, remainder_split=(("a", 5000),)))]},
            "remainder split is not 100 %",
        ),
        (
            {"owners": [_owner(policy=replace(POLICY_70, remainder_split=(("a", 5000),) * 2))]},
            "recipient is listed twice",
        ),
        (
            {"beneficiaries": [BeneficiaryShare("b", "乙", 0), BeneficiaryShare("b", "乙", 0)]},
            "beneficiary is listed twice",
        ),
    ],
)
def test_inconsistent_inputs_are_refused(kwargs: dict[str, object], message: str) -> None:
    call: dict[str, object] = {"amount_fen": 100, "owners": [_owner()], **kwargs}
    with pytest.raises(SplitError, match=message) as info:
        split_payment(**call)  # type: ignore[arg-type]
    assert info.value.message_zh  # every refusal is explained in Chinese too


# ---------------------------------------------------------------------------------------------
# Properties (reliability.md T10) at every level of the split
# ---------------------------------------------------------------------------------------------


@st.composite
def _shares(draw: st.DrawFn, parties: int, *, low: int = 0) -> list[int]:
    """``parties`` ints >= low summing to 10000."""
    cuts = sorted(
        draw(
            st.lists(
                st.integers(0, 10000 - low * parties), min_size=parties - 1, max_size=parties - 1
            )
        )
    )
    bounds = [0, *cuts, 10000 - low * parties]
    return [b - a + low for a, b in itertools.pairwise(bounds)]


@st.composite
def _payments(draw: st.DrawFn) -> tuple[int, int, list[OwnerShare], list[BeneficiaryShare]]:
    n_owners, n_benefs = draw(st.integers(1, 4)), draw(st.integers(0, 2))
    shares = draw(_shares(n_owners + n_benefs))
    ids = draw(
        st.lists(
            st.uuids().map(str),
            min_size=n_owners + n_benefs,
            unique=True,
            max_size=n_owners + n_benefs,
        )
    )
    owners = []
    for k in range(n_owners):
        kind = draw(st.sampled_from(["university", "institute", "enterprise"]))
        policy = None
        if draw(st.booleans()):
            recipients = draw(st.integers(0, 3))
            policy = PolicyTerms(
                draw(st.integers(0, 10000)),
                policy_reference="办法",
                deductions=frozenset({"maintenance_fees", "taxes"}),
                remainder_split=tuple(
                    zip(["学院", "学校", "基金"], draw(_shares(recipients, low=1)), strict=False)
                )
                if recipients
                else (),
            )
        inventors: list[InventorShare] = []
        deductions: dict[str, int] = {}
        if policy is not None or kind != "enterprise":
            count = draw(st.integers(1, 5))
            inventors = [
                InventorShare(f"{ids[k]}-{n}", f"发明人{n}", draw(st.integers(1, 10000)))
                for n in draw(
                    st.lists(st.integers(0, 99), min_size=count, max_size=count, unique=True)
                )
            ]
        if policy is not None:
            for kind_ in draw(st.sets(st.sampled_from(sorted(policy.deductions)))):
                deductions[kind_] = draw(st.integers(0, 10**9))
        owners.append(
            OwnerShare(ids[k], f"单位{k}", shares[k], kind, policy, inventors, deductions)
        )
    benefs = [
        BeneficiaryShare(
            ids[n_owners + j],
            f"收益人{j}",
            shares[n_owners + j],
            draw(st.none() | st.just(f"org-{j}")),
        )
        for j in range(n_benefs)
    ]
    amount = draw(st.integers(0, 10**12) | st.integers(0, 1000))
    return amount, draw(st.integers(0, 10000)), owners, benefs


def _shuffled(rnd: random.Random, items: Iterable[T]) -> list[T]:
    copy = list(items)
    rnd.shuffle(copy)
    return copy


def _within_one_fen(part: int, whole: int, weight: int, weights: int) -> bool:
    return abs(Fraction(part) - Fraction(whole * weight, weights)) < 1


def _check(
    amount: int,
    fee_rate: int,
    owners: list[OwnerShare],
    benefs: list[BeneficiaryShare],
    result: SplitResult,
) -> None:
    lines = result.lines
    assert sum(ln.amount_fen for ln in lines) == amount
    assert all(ln.amount_fen > 0 for ln in lines)
    fee = result.fee_fen
    assert 0 <= Fraction(amount * fee_rate, 10000) - fee < 1  # rounded down
    net = amount - fee
    for benef in benefs:
        part = sum(ln.amount_fen for ln in lines if ln.beneficiary_id == benef.beneficiary_id)
        assert _within_one_fen(part, net, benef.income_share_hundredths, 10000)
    for owner in owners:
        mine = [ln for ln in lines if ln.owner_organisation_id == owner.organisation_id]
        part = sum(ln.amount_fen for ln in mine)
        assert _within_one_fen(part, net, owner.income_share_hundredths, 10000)
        policy = owner.policy or (STATUTORY_DEFAULT if owner.kind != "enterprise" else None)
        if policy is None:
            assert [ln.role for ln in mine] in ([], ["owner_income"])
            continue
        asked = sum(owner.deductions.values())
        recovered = sum(ln.amount_fen for ln in mine if ln.role == "deduction")
        assert recovered == min(asked, part)
        assert result.unrecovered_deductions.get(owner.organisation_id, 0) == asked - recovered
        base = part - recovered
        rewards = {ln.payee_id: ln.amount_fen for ln in mine if ln.role == "inventor_reward"}
        pool = sum(rewards.values())
        assert 0 <= pool - Fraction(base * policy.inventor_share_hundredths, 10000) < 1
        weights = sum(i.contribution_hundredths for i in owner.inventors)
        for inventor in owner.inventors:
            reward = rewards.get(inventor.inventor_id, 0)
            assert _within_one_fen(reward, pool, inventor.contribution_hundredths, weights)
        rest = base - pool
        institution = {ln.detail: ln.amount_fen for ln in mine if ln.role == "institution"}
        assert sum(institution.values()) == rest
        for label, share in policy.remainder_split:
            assert _within_one_fen(institution.get(label, 0), rest, share, 10000)


@PROPERTY
@given(_payments())
def test_any_split_sums_exactly_and_stays_within_one_fen(
    payment: tuple[int, int, list[OwnerShare], list[BeneficiaryShare]],
) -> None:
    amount, fee_rate, owners, benefs = payment
    result = split_payment(amount, owners=owners, beneficiaries=benefs, fee_rate=fee_rate)
    _check(amount, fee_rate, owners, benefs, result)


@PROPERTY
@given(_payments(), st.randoms(use_true_random=False))
def test_same_data_in_any_order_gives_identical_lines(
    payment: tuple[int, int, list[OwnerShare], list[BeneficiaryShare]], rnd: random.Random
) -> None:
    amount, fee_rate, owners, benefs = payment
    expected = split_payment(amount, owners=owners, beneficiaries=benefs, fee_rate=fee_rate)
    reordered = []
    for owner in _shuffled(rnd, owners):
        policy = owner.policy
        if policy is not None:
            policy = replace(policy, remainder_split=tuple(_shuffled(rnd, policy.remainder_split)))
        reordered.append(
            replace(
                owner,
                policy=policy,
                inventors=_shuffled(rnd, owner.inventors),
                deductions=dict(_shuffled(rnd, owner.deductions.items())),
            )
        )
    benefs = _shuffled(rnd, benefs)
    again = split_payment(amount, owners=reordered, beneficiaries=benefs, fee_rate=fee_rate)
    assert again == expected
