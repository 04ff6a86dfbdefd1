"""Royalty arithmetic of the clearing house (registry.clearing.royalties).

Worked examples are done by hand in the comments (amounts in fen unless they say CNY); the
property tests check the rounding rule (exact value, rounded once, half up), the breakdown
adding up, the cap never being exceeded and the minimum always being reached.
"""

from __future__ import annotations

import copy
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.clearing.royalties import (
    ClearingInputError,
    NotReportable,
    RoyaltyComputation,
    annual_cap,
    annual_minimum,
    annual_minimum_true_up,
    days_late,
    late_interest,
    rate_for_year,
    round_half_up,
    royalty_for_report,
)
from registry.core.errors import FieldError
from registry.offers.royalty import RoyaltySchema, royalty_document

PROPERTY = settings(database=None, deadline=None, max_examples=300)
Q1 = (date(2026, 1, 1), date(2026, 3, 31))


def terms(**royalty: Any) -> dict[str, Any]:
    """A terms snapshot as a licence stores it (canonical royalty document inside)."""
    return {"royalty": royalty_document(RoyaltySchema().load(royalty)), "term_years": 5}


def report(
    t: dict[str, Any], base_amount: int, *, year: int = 1, sme: bool = False, charged: int = 0
) -> RoyaltyComputation:
    return royalty_for_report(
        t,
        period_start=Q1[0],
        period_end=Q1[1],
        base_amount=base_amount,
        licence_year=year,
        is_sme=sme,
        charged_in_year=charged,
    )


def breakdown(c: RoyaltyComputation) -> tuple[int, int, int, int]:
    return c.gross, c.discount, c.cap_reduction, c.due


NET_3 = terms(kind="running", base="net_sales", rate="3")


# --- worked examples -------------------------------------------------------------------------


def test_a_fixed_rate_on_net_sales() -> None:
    # 1,234,567.89 CNY x 3 % = 37,037.0367 CNY: 3,703,703.67 fen, half up 3,703,704.
    c = report(NET_3, 123_456_789)
    assert breakdown(c) == (3_703_704, 0, 0, 3_703_704)
    assert c.rate == Decimal("3.00")
    assert c.exact_due == Fraction(370_370_367, 100)
    assert (c.period_start, c.period_end, c.licence_year) == (*Q1, 1)


def test_the_sme_discount_comes_off_before_the_single_rounding() -> None:
    t = terms(kind="entry_plus_running", entry_fee="1000", base="net_sales", rate="3")
    t["royalty"]["sme_discount"] = "30.00"
    # exact 3,703,703.67 x 0.7 = 2,592,592.569, half up 2,592,593; gross rounds to 3,703,704,
    # so the discount line is the difference 1,111,111 (30 % of the exact 3,703,703.67 is
    # 1,111,111.101).
    c = report(t, 123_456_789, sme=True)
    assert breakdown(c) == (3_703_704, 1_111_111, 0, 2_592_593)
    assert c.discount_rate == Decimal("30.00")
    # A licensee that is not an SME pays the full royalty.
    assert report(t, 123_456_789, sme=False).due == 3_703_704
    assert report(t, 123_456_789, sme=False).discount_rate is None


def test_rounding_happens_once_not_per_step() -> None:
    t = terms(kind="running", base="net_sales", rate="1", sme_discount="10")
    # 10.50 CNY at 1 % = 10.5 fen; less 10 % = 9.45 fen, half up 9. Rounding the royalty first
    # (11 fen) and then discounting (9.9) would give 10.
    c = report(t, 1050, sme=True)
    assert breakdown(c) == (11, 2, 0, 9)


@pytest.mark.parametrize(
    ("sales", "due"),
    [
        (50, 1),  # 0.5 fen: half up to 1 (banker's rounding would give 0)
        (150, 2),  # 1.5 -> 2
        (250, 3),  # 2.5 -> 3 (banker's: 2)
        (249, 2),  # 2.49 -> 2
        (0, 0),  # no sales, no royalty
    ],
)
def test_halves_round_up(sales: int, due: int) -> None:
    one_percent = terms(kind="running", base="net_sales", rate="1")
    assert report(one_percent, sales).due == due


def test_zero_sales_owe_nothing_and_the_breakdown_is_all_zero() -> None:
    assert breakdown(report(NET_3, 0)) == (0, 0, 0, 0)


def test_stepped_rates_on_profit_follow_the_licence_year() -> None:
    t = terms(
        kind="running",
        base="profit",
        steps=[{"from_year": 1, "rate": "10"}, {"from_year": 3, "rate": "15.5"}],
    )
    # profit 200,000.00 CNY = 20,000,000 fen: 10 % in years 1-2, 15.5 % from year 3 on.
    assert report(t, 20_000_000, year=1).due == 2_000_000
    assert report(t, 20_000_000, year=2).due == 2_000_000
    assert report(t, 20_000_000, year=3).due == 3_100_000
    assert report(t, 20_000_000, year=7).due == 3_100_000
    assert report(t, 20_000_000, year=3).rate == Decimal("15.50")
    assert rate_for_year(t, 2) == Decimal("10.00")


def test_a_royalty_per_unit() -> None:
    t = terms(kind="running", base="units", unit_amount="1.50")
    # 1,250 units x 1.50 CNY = 1,875.00 CNY
    c = report(t, 1250)
    assert breakdown(c) == (187_500, 0, 0, 187_500)
    assert (c.rate, c.unit_amount) == (None, 150)


def test_the_cap_reduces_the_report_that_crosses_it() -> None:
    t = terms(kind="running", base="net_sales", rate="10", cap="50000")
    # 45,000.00 CNY already due this licence year; 80,000.00 of sales -> 8,000.00 gross, but
    # only 5,000.00 remains under the 50,000.00 cap: 3,000.00 is not payable.
    c = report(t, 8_000_000, charged=4_500_000)
    assert breakdown(c) == (800_000, 0, 300_000, 500_000)
    assert c.cap == 5_000_000
    # Once the cap is reached the year owes nothing more.
    assert breakdown(report(t, 8_000_000, charged=5_000_000)) == (800_000, 0, 800_000, 0)


def test_a_cap_reached_mid_year_over_four_quarters() -> None:
    t = terms(kind="running", base="net_sales", rate="5", cap="10000")
    # Q1 60,000 -> 3,000; Q2 80,000 -> 4,000 (7,000 so far); Q3 100,000 -> 5,000 gross but
    # only 3,000 left; Q4 50,000 -> 2,500 gross, nothing left. The year totals the cap.
    charged, dues = 0, []
    for sales in (6_000_000, 8_000_000, 10_000_000, 5_000_000):
        due = report(t, sales, charged=charged).due
        dues.append(due)
        charged += due
    assert dues == [300_000, 400_000, 300_000, 0]
    assert charged == 1_000_000


def test_an_sme_cap_is_discounted_like_every_royalty_amount() -> None:
    t = terms(kind="running", base="net_sales", rate="10", cap="50000", sme_discount="30")
    # cap 50,000.00 less 30 % = 35,000.00; 30,000.00 already due; 100,000.00 of sales ->
    # 10,000.00 gross, 7,000.00 after the discount, 5,000.00 under the cap.
    c = report(t, 10_000_000, sme=True, charged=3_000_000)
    assert breakdown(c) == (1_000_000, 300_000, 200_000, 500_000)
    assert annual_cap(t, is_sme=True) == 3_500_000
    assert annual_cap(t, is_sme=False) == 5_000_000


def test_the_annual_minimum_true_up() -> None:
    t = terms(kind="running", base="net_sales", rate="3", annual_minimum="10000")
    # 10,000.00 minimum, 7,345.67 due from the year's reports: 2,654.33 tops it up.
    assert annual_minimum_true_up(t, 734_567, is_sme=False) == 265_433
    assert annual_minimum_true_up(t, 1_000_000, is_sme=False) == 0
    assert annual_minimum_true_up(t, 1_200_000, is_sme=False) == 0  # never negative
    # An SME's minimum is discounted too: 10,000.00 less 25 % = 7,500.00.
    t["royalty"]["sme_discount"] = "25.00"
    assert annual_minimum_true_up(t, 700_000, is_sme=True) == 50_000
    # Without a minimum there is nothing to top up.
    assert annual_minimum_true_up(NET_3, 0, is_sme=False) == 0


def test_a_pro_rated_minimum() -> None:
    t = terms(kind="running", base="net_sales", rate="3", annual_minimum="10000")
    # a 3-month free period in a 365-day licence year leaves 275 days:
    # 1,000,000 x 275 / 365 = 753,424.657..., half up 753,425 (7,534.25 CNY).
    assert annual_minimum(t, is_sme=False, payable_days=275, year_days=365) == 753_425
    assert annual_minimum_true_up(t, 3, is_sme=False, payable_days=275, year_days=365) == (753_422)
    assert annual_minimum(t, is_sme=False, payable_days=0, year_days=366) == 0
    with pytest.raises(ValueError, match="both"):
        annual_minimum(t, is_sme=False, payable_days=10)
    with pytest.raises(ValueError, match="do not fit"):
        annual_minimum(t, is_sme=False, payable_days=366, year_days=365)


def test_late_interest_is_simple_actual_over_365() -> None:
    t = terms(kind="lump_sum", amount="10000", late_interest_rate="3.65")
    # 3.65 % a year is 0.01 % a day: 10,000.00 CNY 30 days late = 30.00 CNY.
    assert late_interest(1_000_000, 30, t) == 3_000
    # A whole leap year late is 366 days, still over 365: 100,000.00 x 3.65 % x 366/365 =
    # 3,660.00 CNY.
    assert late_interest(10_000_000, 366, t) == 366_000
    # 12,345.67 CNY at 4.35 % for 17 days = 25.0126... CNY, 2,501 fen.
    t["royalty"]["late_interest_rate"] = "4.35"
    assert late_interest(1_234_567, 17, t) == 2_501
    assert late_interest(1_234_567, 0, t) == 0
    # Terms without a rate: no interest is computed (CC Art. 873 applies case by case).
    assert late_interest(1_000_000, 30, terms(kind="lump_sum", amount="1")) == 0


def test_days_late_run_from_the_day_after_the_due_date_until_paid() -> None:
    due = date(2028, 2, 28)
    assert days_late(due, date(2028, 2, 27)) == 0  # early
    assert days_late(due, due) == 0  # on time
    assert days_late(due, date(2028, 2, 29)) == 1
    assert days_late(due, date(2028, 3, 1)) == 2  # 29 February counts
    assert days_late(date(2027, 2, 28), date(2027, 3, 1)) == 1


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("royalty", "base_amount", "field"),
    [
        ({"kind": "running", "base": "net_sales", "rate": "3"}, -1, "net_sales"),
        ({"kind": "running", "base": "profit", "rate": "3"}, -500, "profit"),
        ({"kind": "running", "base": "units", "unit_amount": "2"}, -3, "units"),
        ({"kind": "running", "base": "net_sales", "rate": "3"}, 10**14 + 1, "net_sales"),
        ({"kind": "running", "base": "units", "unit_amount": "2"}, 10**12 + 1, "units"),
        ({"kind": "running", "base": "units", "unit_amount": "20000"}, 10**12, "units"),
        ({"kind": "running", "base": "net_sales", "rate": "3"}, 12.5, "net_sales"),
        ({"kind": "running", "base": "units", "unit_amount": "2"}, True, "units"),
    ],
)
def test_a_bad_base_names_its_field(royalty: dict[str, Any], base_amount: Any, field: str) -> None:
    with pytest.raises(ClearingInputError) as caught:
        report(terms(**royalty), base_amount)
    error = caught.value
    assert isinstance(error, ValueError)
    assert error.status == 422
    assert error.field == field
    assert [e.field for e in error.errors] == [field]
    assert isinstance(error.errors[0], FieldError)


def test_a_bad_period_or_licence_year_names_its_field() -> None:
    with pytest.raises(ClearingInputError) as caught:
        royalty_for_report(
            NET_3,
            period_start=date(2026, 4, 1),
            period_end=date(2026, 3, 31),
            base_amount=1,
            licence_year=1,
            is_sme=False,
        )
    assert caught.value.field == "period_end"
    with pytest.raises(ClearingInputError) as caught:
        report(NET_3, 1, year=0)
    assert caught.value.field == "licence_year"
    with pytest.raises(ValueError, match="negative"):
        report(NET_3, 1, charged=-1)


@pytest.mark.parametrize("royalty", [{"kind": "free"}, {"kind": "lump_sum", "amount": "5000"}])
def test_there_is_no_report_on_free_or_lump_sum_terms(royalty: dict[str, Any]) -> None:
    with pytest.raises(NotReportable) as caught:
        report(terms(**royalty), 100)
    assert caught.value.status == 409
    assert isinstance(caught.value, ValueError)


def test_late_interest_refuses_negatives() -> None:
    t = terms(kind="lump_sum", amount="1", late_interest_rate="5")
    with pytest.raises(ClearingInputError) as caught:
        late_interest(-1, 3, t)
    assert caught.value.field == "amount"
    with pytest.raises(ClearingInputError) as caught:
        late_interest(100, -3, t)
    assert caught.value.field == "paid_date"


def test_the_input_error_survives_copying() -> None:
    # (copy and pickle both rebuild an exception from __reduce__)
    error = copy.deepcopy(ClearingInputError("units", "units cannot be negative"))
    assert (error.field, error.message, error.errors[0].field) == (
        "units",
        "units cannot be negative",
        "units",
    )


def test_terms_without_a_royalty_are_refused() -> None:
    with pytest.raises(ValueError, match="royalty"):
        report({"term_years": 1}, 1)


# --- properties ------------------------------------------------------------------------------

hundredths = st.integers(min_value=1, max_value=10_000)  # 0.01 % .. 100.00 %


def percent(n: int) -> str:
    return f"{n // 100}.{n % 100:02d}"


@st.composite
def running_terms(draw: st.DrawFn) -> dict[str, Any]:
    royalty: dict[str, Any] = {
        "kind": "running",
        "base": "net_sales",
        "rate": percent(draw(hundredths)),
    }
    if draw(st.booleans()):
        royalty["sme_discount"] = percent(draw(hundredths))
    if draw(st.booleans()):
        royalty["cap"] = percent(draw(st.integers(min_value=1, max_value=10**12)))
    return terms(**royalty)


@PROPERTY
@given(
    running_terms(),
    st.integers(min_value=0, max_value=10**14),
    st.booleans(),
    st.integers(min_value=0, max_value=10**13),
)
def test_the_due_royalty_is_the_exact_value_rounded_once(
    t: dict[str, Any], sales: int, sme: bool, charged: int
) -> None:
    c = report(t, sales, sme=sme, charged=charged)
    royalty = t["royalty"]
    exact = sales * Fraction(Decimal(royalty["rate"])) / 100
    if sme and "sme_discount" in royalty:
        exact *= 1 - Fraction(Decimal(royalty["sme_discount"])) / 100
    if c.cap is not None:
        exact = min(exact, Fraction(max(0, c.cap - charged)))
        assert c.due <= max(0, c.cap - charged)  # never above what the cap leaves
    assert c.exact_due == exact
    assert c.due == round_half_up(exact)
    assert abs(c.due - exact) <= Fraction(1, 2)
    assert min(c.due, c.discount, c.cap_reduction) >= 0
    assert c.gross - c.discount - c.cap_reduction == c.due


@PROPERTY
@given(running_terms(), st.lists(st.integers(min_value=0, max_value=10**12), max_size=12))
def test_a_years_reports_total_the_cap_or_less(t: dict[str, Any], sales: list[int]) -> None:
    charged, uncapped = 0, 0
    for amount in sales:
        c = report(t, amount, sme=True, charged=charged)
        charged += c.due
        uncapped += c.due + c.cap_reduction
    cap = annual_cap(t, is_sme=True)
    assert charged == (uncapped if cap is None else min(cap, uncapped))


@PROPERTY
@given(
    st.integers(min_value=1, max_value=10**12),
    st.one_of(st.none(), hundredths),
    st.integers(min_value=0, max_value=10**13),
    st.integers(min_value=1, max_value=366).flatmap(
        lambda days: st.tuples(st.integers(min_value=0, max_value=days), st.just(days))
    ),
)
def test_the_true_up_brings_the_year_to_its_minimum(
    minimum: int, discount: int | None, charged: int, share: tuple[int, int]
) -> None:
    royalty: dict[str, Any] = {"kind": "running", "base": "net_sales", "rate": "1"}
    royalty["annual_minimum"] = percent(minimum)
    if discount is not None:
        royalty["sme_discount"] = percent(discount)
    t = terms(**royalty)
    payable, year = share
    floor = annual_minimum(t, is_sme=True, payable_days=payable, year_days=year)
    true_up = annual_minimum_true_up(t, charged, is_sme=True, payable_days=payable, year_days=year)
    assert true_up >= 0
    assert charged + true_up >= floor
    assert true_up == 0 or charged + true_up == floor
    assert floor <= annual_minimum(t, is_sme=True) <= annual_minimum(t, is_sme=False)


@PROPERTY
@given(st.integers(min_value=-(10**15), max_value=10**15), st.integers(min_value=0, max_value=6))
def test_round_half_up_matches_decimal_half_up(units: int, places: int) -> None:
    value = Fraction(units, 10**places)
    expected = Decimal(units).scaleb(-places).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert round_half_up(value) == int(expected)


@PROPERTY
@given(st.integers(), st.integers(min_value=1, max_value=10**9))
def test_round_half_up_is_nearest_with_halves_away_from_zero(n: int, d: int) -> None:
    value = Fraction(n, d)
    rounded = round_half_up(value)
    assert abs(rounded - value) <= Fraction(1, 2)
    if abs(rounded - value) == Fraction(1, 2):
        assert abs(rounded) > abs(value)


@PROPERTY
@given(
    st.integers(min_value=0, max_value=10**12),
    st.integers(min_value=0, max_value=3650),
    st.integers(min_value=0, max_value=3650),
    hundredths,
)
def test_late_interest_grows_with_time_and_adds_up_within_a_fen(
    amount: int, first: int, second: int, rate: int
) -> None:
    t = terms(kind="lump_sum", amount="1", late_interest_rate=percent(rate))
    both = late_interest(amount, first + second, t)
    assert late_interest(amount, first, t) <= both
    assert abs(late_interest(amount, first, t) + late_interest(amount, second, t) - both) <= 1
    assert both == round_half_up(amount * Fraction(rate, 10_000) * (first + second) / 365)
