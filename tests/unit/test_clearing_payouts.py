"""Minimum payout with carry-forward, and reversing runs (registry.clearing.payouts).

Money is conserved for every payee and every run: paid + carried forward == carried in + new
(reliability.md §0 rule 2, T11's conservation applied to the pure arithmetic).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.clearing.payouts import PayeeKey, Payout, plan_payouts, reverse_lines, totals_by_payee
from registry.clearing.splitting import InventorShare, OwnerShare, PayeeLine, split_payment

PROPERTY = settings(database=None, deadline=None, max_examples=300)
MINIMUM = 10_000  # RMB 100.00

INV = PayeeKey("inventor", "inv-5")
UNI = PayeeKey("organisation", "org-a")
FEE = PayeeKey("platform", "platform")


def _line(key: PayeeKey, fen: int) -> PayeeLine:
    role = "fee" if key.payee_type == "platform" else "inventor_reward"
    return PayeeLine(key.payee_type, key.payee_id, key.payee_id, fen, role)  # type: ignore[arg-type]


def test_small_balances_roll_forward_until_they_reach_the_minimum() -> None:
    # Minimum payout RMB 100.00. The inventor earns RMB 60.00, then 30.00, then 20.00.
    run1 = plan_payouts([_line(INV, 6_000)], {}, minimum_fen=MINIMUM)
    assert run1 == [Payout("inventor", "inv-5", 0, 6_000, 0, 6_000)]
    run2 = plan_payouts([_line(INV, 3_000)], {INV: 6_000}, minimum_fen=MINIMUM)
    assert run2 == [Payout("inventor", "inv-5", 6_000, 3_000, 0, 9_000)]  # RMB 90.00 carried
    run3 = plan_payouts([_line(INV, 1_000), _line(INV, 1_000)], {INV: 9_000}, minimum_fen=MINIMUM)
    assert run3 == [Payout("inventor", "inv-5", 9_000, 2_000, 11_000, 0)]  # RMB 110.00 paid


def test_exactly_the_minimum_is_paid_and_a_zero_minimum_pays_any_positive_balance() -> None:
    assert plan_payouts([_line(INV, MINIMUM)], {}, minimum_fen=MINIMUM)[0].paid_fen == MINIMUM
    assert plan_payouts([_line(INV, MINIMUM - 1)], {}, minimum_fen=MINIMUM)[0].paid_fen == 0
    assert plan_payouts([_line(INV, 1)], {}, minimum_fen=0)[0].paid_fen == 1


def test_a_debt_or_nothing_is_never_paid_out_even_with_no_minimum() -> None:
    payouts = plan_payouts([_line(INV, -700), _line(UNI, 0)], {}, minimum_fen=0)
    assert payouts == [
        Payout("inventor", "inv-5", 0, -700, 0, -700),
        Payout("organisation", "org-a", 0, 0, 0, 0),
    ]


def test_the_platform_fee_is_settled_every_run_whatever_its_size() -> None:
    payouts = plan_payouts([_line(FEE, 3), _line(INV, 3)], {}, minimum_fen=MINIMUM)
    assert payouts == [
        Payout("inventor", "inv-5", 0, 3, 0, 3),
        Payout("platform", "platform", 0, 3, 3, 0),
    ]


def test_a_payee_with_only_a_carried_balance_is_listed_and_zero_balances_are_not() -> None:
    payouts = plan_payouts([], {INV: 500, UNI: 0}, minimum_fen=MINIMUM)
    assert payouts == [Payout("inventor", "inv-5", 500, 0, 0, 500)]
    # A lowered minimum for one run (CCC's once-a-year $50) releases it.
    assert plan_payouts([], {INV: 500}, minimum_fen=500)[0].paid_fen == 500


def test_a_reversal_beyond_the_balance_is_carried_as_a_debt_and_offset_later() -> None:
    # RMB 300.00 was paid to the university last run; the correcting run reverses it and
    # settles the corrected RMB 250.00: the university owes RMB 50.00, carried, not paid.
    paid_before = [_line(UNI, 30_000)]
    corrected = [*reverse_lines(paid_before), _line(UNI, 25_000)]
    run = plan_payouts(corrected, {}, minimum_fen=MINIMUM)
    assert run == [Payout("organisation", "org-a", 0, -5_000, 0, -5_000)]
    # Next run it earns RMB 120.00: 120 - 50 = 70 < 100, still carried; then 40 more: paid 110.
    run = plan_payouts([_line(UNI, 12_000)], {UNI: -5_000}, minimum_fen=MINIMUM)
    assert run == [Payout("organisation", "org-a", -5_000, 12_000, 0, 7_000)]
    run = plan_payouts([_line(UNI, 4_000)], {UNI: 7_000}, minimum_fen=MINIMUM)
    assert run == [Payout("organisation", "org-a", 7_000, 4_000, 11_000, 0)]


def test_reverse_lines_negates_amounts_and_keeps_everything_else() -> None:
    owner = OwnerShare(
        "org-a", "示范大学", 10000, "university", inventors=[InventorShare("inv-1", "张三", 1)]
    )
    lines = split_payment(1_234_567, owners=[owner], fee_rate=100).lines
    reversed_ = reverse_lines(lines)
    assert [r.amount_fen for r in reversed_] == [-ln.amount_fen for ln in lines]
    assert [(r.payee_id, r.role, r.detail, r.owner_organisation_id) for r in reversed_] == [
        (ln.payee_id, ln.role, ln.detail, ln.owner_organisation_id) for ln in lines
    ]
    assert reverse_lines(reversed_) == list(lines)
    assert set(totals_by_payee([*lines, *reversed_]).values()) == {0}


def test_totals_by_payee_merges_roles_of_the_same_payee() -> None:
    lines = [
        PayeeLine("organisation", "u", "大学", 300, "deduction", "u", detail="taxes"),
        PayeeLine("inventor", "i", "甲", 500, "inventor_reward", "u"),
        PayeeLine("organisation", "u", "大学", 200, "institution", "u"),
    ]
    assert totals_by_payee(lines) == {
        PayeeKey("organisation", "u"): 500,
        PayeeKey("inventor", "i"): 500,
    }


@pytest.mark.parametrize("minimum", [-1, True, "100"])
def test_a_bad_minimum_is_refused(minimum: object) -> None:
    with pytest.raises(ValueError, match="minimum payout"):
        plan_payouts([_line(INV, 1)], {}, minimum_fen=minimum)  # type: ignore[arg-type]


def test_a_non_int_carried_balance_is_refused() -> None:
    with pytest.raises(ValueError, match="ints of fen"):
        plan_payouts([], {INV: 1.5}, minimum_fen=0)  # type: ignore[dict-item]


_KEYS = st.sampled_from(
    [
        PayeeKey(t, f"{t[0]}{n}")
        for t in ("organisation", "inventor", "beneficiary")
        for n in range(4)
    ]
    + [FEE]
)
_FEN = st.integers(-(10**9), 10**9)


@PROPERTY
@given(
    st.lists(st.tuples(_KEYS, _FEN), max_size=30),
    st.dictionaries(_KEYS, _FEN, max_size=8),
    st.just(0) | st.integers(0, 10**6),
)
def test_every_payee_conserves_money_and_only_balances_at_the_minimum_are_paid(
    new: list[tuple[PayeeKey, int]], carried: dict[PayeeKey, int], minimum: int
) -> None:
    payouts = plan_payouts([_line(k, f) for k, f in new], carried, minimum_fen=minimum)
    totals = totals_by_payee(_line(k, f) for k, f in new)
    assert [p.key for p in payouts] == sorted(p.key for p in payouts)
    assert {p.key for p in payouts} == set(totals) | {k for k, f in carried.items() if f}
    for p in payouts:
        assert (p.carried_in_fen, p.new_fen) == (carried.get(p.key, 0), totals.get(p.key, 0))
        assert p.paid_fen + p.carried_out_fen == p.carried_in_fen + p.new_fen
        if p.payee_type == "platform":
            assert p.carried_out_fen == 0
        elif p.paid_fen:
            assert p.paid_fen >= max(minimum, 1)
            assert p.carried_out_fen == 0
        else:
            assert p.carried_out_fen < max(minimum, 1)  # nothing payable is held back
    total_in = sum(carried.values()) + sum(f for _, f in new)
    assert sum(p.paid_fen + p.carried_out_fen for p in payouts) == total_in


@PROPERTY
@given(st.lists(st.lists(st.tuples(_KEYS, st.integers(0, 50_000)), max_size=10), max_size=8))
def test_over_many_runs_everything_received_is_paid_or_still_carried(
    runs: list[list[tuple[PayeeKey, int]]],
) -> None:
    carried: dict[PayeeKey, int] = {}
    paid = 0
    for run in runs:
        payouts = plan_payouts([_line(k, f) for k, f in run], carried, minimum_fen=MINIMUM)
        paid += sum(p.paid_fen for p in payouts)
        carried = {p.key: p.carried_out_fen for p in payouts if p.carried_out_fen}
    assert paid + sum(carried.values()) == sum(f for run in runs for _, f in run)
    assert all(0 < fen < MINIMUM for fen in carried.values())
